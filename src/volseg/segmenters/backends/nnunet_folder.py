"""Reading an nnU-Net v2 trained-model folder: plans, dataset.json, fold checkpoints, the network.

A trained-model folder (``<Dataset>/<trainer>__<plans>__<configuration>``) holds ``dataset.json``,
``plans.json`` and ``fold_<k>/checkpoint_final.pth`` (or ``checkpoint_best.pth``). Plans are read by
:mod:`.nnunet_plans`; the network is built from the plans' architecture entry with
``dynamic_network_architectures`` and never through nnU-Net's trainer-class lookup (which imports
timm and torchvision). Checkpoints load with ``weights_only=True``; the only non-tensor globals
allowed besides torch's are numpy scalars and dtypes, which nnU-Net stores in its training log.
"""
from __future__ import annotations

import json
import logging
import pickle
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from volseg.errors import DependencyError, ModelError
from volseg.segmenters.backends.nnunet_plans import (
    Configuration,
    LabelSpec,
    check_plans,
    label_spec,
    resolve_configuration,
)
from volseg.segmenters.backends.nnunet_plans import build_network as _build
from volseg.segmenters.weights.cache import sha256_file

log = logging.getLogger(__name__)

CHECKPOINTS = ("checkpoint_final.pth", "checkpoint_best.pth")


def require_network_library() -> None:
    """Import dynamic_network_architectures or say how to install it."""
    try:
        import dynamic_network_architectures  # noqa: F401
    except ImportError as exc:
        raise DependencyError("nnU-Net models need dynamic-network-architectures",
                              hint="pip install 'volseg[nnunet]'") from exc


@dataclass(frozen=True)
class FoldWeights:
    fold: str
    path: Path
    state_dict: dict
    sha256: str
    trainer: str
    configuration: str | None
    mirror_axes: tuple[int, ...] | None


@dataclass(frozen=True)
class ModelFolder:
    """The parsed folder: JSON documents, the chosen configuration and every fold's weights."""

    path: Path
    dataset_json: dict
    plans: dict
    configuration: str
    folds: tuple[FoldWeights, ...]

    @property
    def mirror_axes(self) -> tuple[int, ...]:
        axes = self.folds[0].mirror_axes
        return tuple(axes) if axes else ()

    def config(self) -> Configuration:
        return resolve_configuration(self.plans, self.configuration)

    def labels(self) -> LabelSpec:
        return label_spec(self.dataset_json)

    @property
    def transpose_forward(self) -> tuple[int, ...]:
        return tuple(int(t) for t in self.plans.get("transpose_forward", (0, 1, 2)))

    def intensity_properties(self, channel: int = 0) -> dict:
        return dict(self.plans.get("foreground_intensity_properties_per_channel", {}).get(str(channel), {}))


def is_model_folder(path: Path) -> bool:
    return path.is_dir() and (path / "plans.json").is_file() and (path / "dataset.json").is_file()


def read_model_folder(path: str | Path, *, folds: tuple[str | int, ...] | None = None,
                      checkpoint: str | None = None, configuration: str | None = None) -> ModelFolder:
    """Parse ``path`` and load the weights of ``folds`` (default: every fold found)."""
    path = Path(path)
    if not is_model_folder(path):
        raise ModelError("not an nnU-Net trained-model folder (needs plans.json and dataset.json)", path=path)
    dataset_json, plans = _read_json(path / "dataset.json"), _read_json(path / "plans.json")
    chosen = [str(f) for f in folds] if folds else _detect_folds(path, checkpoint)
    if not chosen:
        raise ModelError("no fold_*/checkpoint_final.pth or checkpoint_best.pth in the model folder", path=path)
    weights = tuple(_load_fold(path, fold, checkpoint) for fold in chosen)
    config = configuration or weights[0].configuration or _configuration_from_name(path, plans)
    if config not in plans.get("configurations", {}):
        raise ModelError(f"configuration {config!r} is not in plans.json", path=path,
                         hint=f"plans define: {', '.join(plans.get('configurations', {}))}")
    check_plans(plans, config, path / "plans.json")
    require_network_library()
    return ModelFolder(path, dataset_json, plans, config, weights)


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"unreadable JSON ({exc})", path=path) from exc
    if not isinstance(data, dict):
        raise ModelError(f"expected a JSON object, got {type(data).__name__}", path=path)
    return data


def _detect_folds(path: Path, checkpoint: str | None) -> list[str]:
    names = (checkpoint,) if checkpoint else CHECKPOINTS
    found = []
    for sub in sorted(path.glob("fold_*")):
        if sub.is_dir() and any((sub / n).is_file() for n in names):
            found.append(sub.name[len("fold_"):])
    return sorted(found, key=lambda f: (not f.isdigit(), int(f) if f.isdigit() else 0, f))


def _load_fold(path: Path, fold: str, checkpoint: str | None) -> FoldWeights:
    folder = path / f"fold_{fold}"
    names = (checkpoint,) if checkpoint else CHECKPOINTS
    file = next((folder / n for n in names if (folder / n).is_file()), None)
    if file is None:
        raise ModelError(f"fold {fold} has no {' or '.join(names)}", path=folder)
    ckpt = load_checkpoint(file)
    if "network_weights" not in ckpt:
        raise ModelError("checkpoint has no 'network_weights'", path=file)
    init_args = ckpt.get("init_args") or {}
    axes = ckpt.get("inference_allowed_mirroring_axes")
    return FoldWeights(fold, file, ckpt["network_weights"], sha256_file(file), str(ckpt.get("trainer_name", "")),
                       init_args.get("configuration"), tuple(int(a) for a in axes) if axes else None)


def load_checkpoint(file: Path) -> dict[str, Any]:
    """``torch.load(weights_only=True)``, allowing numpy scalars/dtypes (nnU-Net's training log)."""
    import torch

    try:
        return _load_weights_only(file)
    except pickle.UnpicklingError as exc:
        if "numpy" not in str(exc):
            raise _unpickling_error(exc, file) from exc
    with torch.serialization.safe_globals(_numpy_globals()):
        try:
            return _load_weights_only(file)
        except pickle.UnpicklingError as exc:
            raise _unpickling_error(exc, file) from exc


def _unpickling_error(exc: Exception, file: Path) -> ModelError:
    """What torch's weights-only unpickler objected to, as one line."""
    text = str(exc)
    reason = text.split("WeightsUnpickler error:", 1)[-1].strip().splitlines()[0] if text.strip() else ""
    match = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
    if match:
        return ModelError(f"checkpoint holds objects that are not weights ({match.group(1)}); "
                          "refusing to unpickle it", path=file)
    return ModelError(f"unreadable checkpoint ({reason[:200] or type(exc).__name__})", path=file)


def _load_weights_only(file: Path) -> dict[str, Any]:
    import torch

    try:
        checkpoint = torch.load(file, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError) as exc:
        raise ModelError(f"unreadable checkpoint ({_first_line(exc)})", path=file) from exc
    if not isinstance(checkpoint, dict):
        raise ModelError("checkpoint is not a dictionary of weights", path=file)
    return checkpoint


def _numpy_globals() -> list:
    import numpy as np

    core = getattr(np, "_core", None) or np.core
    allowed: list = [core.multiarray.scalar, np.dtype]
    dtypes = getattr(np, "dtypes", None)
    if dtypes is not None:
        allowed += [getattr(dtypes, n) for n in dir(dtypes) if n.endswith("DType")]
    return allowed


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__


def _configuration_from_name(path: Path, plans: dict) -> str:
    match = re.match(r"^.+__.+__(.+)$", path.name)
    if match:
        return match.group(1)
    configurations = list(plans.get("configurations", {}))
    if len(configurations) == 1:
        return configurations[0]
    raise ModelError("cannot tell which configuration the weights belong to", path=path,
                     hint="name the folder <trainer>__<plans>__<configuration> or pass configuration")


def build_network(folder: ModelFolder):
    """The network of the folder's configuration, as nnU-Net builds it for inference (eval mode)."""
    config = folder.config()
    if config.previous_stage:
        raise ModelError(f"cascade configuration {folder.configuration!r} is not supported", path=folder.path,
                         hint="use a 3d_fullres or 3d_lowres model")
    if len(config.patch_size) != 3:
        raise ModelError(f"only 3-D configurations are supported, not {folder.configuration!r}",
                         path=folder.path)
    channels = folder.dataset_json.get("channel_names") or folder.dataset_json.get("modality") or {}
    try:
        network = _build(config.architecture(), len(channels), folder.labels().heads)
    except (KeyError, ValueError) as exc:
        raise ModelError(f"cannot build the network from plans.json ({_first_line(exc)})",
                         path=folder.path) from exc
    return network.eval()
