"""MONAI bundles: the bundle's network and weights, run the way the bundle's own config runs them.

Around the network of a catalogued bundle, :mod:`.monai_steps` reproduces the bundle's transforms (Spacingd's grid,
intensity after resampling, ``SlidingWindowInferer`` with Gaussian blending, argmax and
``Invertd(nearest)``); the window step (overlap) and window batch come from the engine settings, the
network runs in fp32 (benchmarks/parity/monai.py: 99.9997 % of the head CT's voxels as MONAI).
A bundle folder given by path still runs through volseg's window pipeline (nnU-Net-style windows and
linear score export; tests/backends/test_monai_bundle.py holds it to nnU-Net's labels).

A bundle's ``configs/inference.json`` (or ``.yaml``) can run arbitrary Python: ``_target_`` imports
any class and ``$`` expressions are evaluated. volseg therefore instantiates ``network_def`` only

* for a catalogued bundle whose installed files the weights manager has verified (sha256), or
* for a bundle folder given by path when the user says they trust it (``--trust-bundle`` /
  ``trust=True``); otherwise loading is a :class:`~volseg.errors.ModelError` saying why.

Nothing else of the config is evaluated. The weights (``models/model.pt``) load with
``torch.load(weights_only=True)``. Preprocessing and sliding-window settings come from the catalogue
entry, or, for a custom bundle, are read as plain values from the config's ``preprocessing``
transforms (Orientationd, Spacingd, ScaleIntensityRanged, NormalizeIntensityd, ScaleIntensityd,
Transposed) and its SlidingWindowInferer (roi_size, overlap, sw_batch_size). Class names come from
``configs/metadata.json`` (``network_data_format.outputs.pred.channel_def``).
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from volseg.errors import DependencyError, ModelError
from volseg.labels import LabelTable
from volseg.segmenters.backends.window_pipeline import (
    NetworkInput,
    WindowPreset,
    ZScore,
    ZScoreThenScale,
    run_pipeline,
)
from volseg.segmenters.base import ProgressCallback, check_on_grid, no_progress
from volseg.segmenters.provenance import ModelProvenance
from volseg.volume import Volume

if TYPE_CHECKING:
    from volseg.segmenters.catalogue import ModelEntry
    from volseg.segmenters.engine.settings import EngineOverrides

log = logging.getLogger(__name__)

CONFIG_NAMES = ("configs/inference.json", "configs/inference.yaml", "configs/inference.yml")
TRUST_HINT = "MONAI bundle configs can run arbitrary Python code; pass --trust-bundle (API: trust=True) " \
             "only for a bundle whose author you trust"


def is_bundle(path: str | Path) -> bool:
    """A folder with ``configs/inference.json`` (or ``.yaml``)."""
    p = Path(path)
    return p.is_dir() and any((p / name).is_file() for name in CONFIG_NAMES)


def load(entry: ModelEntry, *, device: str = "auto",
         engine: EngineOverrides | None = None) -> MonaiBundleSegmenter:
    """Factory for catalogued bundles: instantiated only after their files verify."""
    from volseg.segmenters.backend_options import MonaiBundleOptions
    from volseg.segmenters.device import resolve_device
    from volseg.segmenters.engine_settings import engine_settings
    from volseg.segmenters.weights import require_installed, verify

    folder = require_installed(entry.name, check_hashes=False)  # verify() below hashes every file
    report = verify(entry.name)
    if not report.ok:
        raise ModelError(f"installed files of {entry.name!r} fail verification; the bundle config is not run",
                         hint="; ".join(report.problems[:3]))
    options = entry.backend_options
    if not isinstance(options, MonaiBundleOptions):
        raise ModelError(f"model {entry.name!r} is not a MONAI bundle (backend {entry.backend!r})")
    root = folder / options.bundle_folder
    nested = [p.parent.parent for p in root.glob("*/configs/inference.json")]
    if not is_bundle(root) and len(nested) == 1:  # zips usually hold one top-level bundle folder
        root = nested[0]
    checkpoint = folder / options.checkpoint if options.checkpoint else None
    sw = entry.sliding_window
    if entry.input.spacing_mm is None or sw is None or sw.patch_size is None:
        raise ModelError(f"catalogue entry {entry.name!r} lacks the spacing or sliding-window settings")
    spec = NetworkInput(orientation=entry.input.orientation, spacing_mm=entry.input.spacing_mm,
                        intensity=_catalogue_intensity(entry.input.intensity), patch_size=sw.patch_size,
                        step=1.0 - (sw.overlap or 0.5))
    return MonaiBundleSegmenter(root, spec=spec, labels=entry.label_table(), name=entry.name,
                                version=entry.version, device=device, checkpoint=checkpoint,
                                channels=options.out_channels, entry=entry, monai_pipeline=True,
                                settings=engine_settings(entry, engine, device_type=resolve_device(device).type))


def load_bundle(path: str | Path, *, device: str = "auto", trust: bool = False,
                settings=None, engine: EngineOverrides | None = None) -> MonaiBundleSegmenter:
    """A user's own bundle folder; its config is instantiated only with ``trust=True``."""
    root = Path(path)
    if not is_bundle(root):
        raise ModelError("not a MONAI bundle (no configs/inference.json)", path=root)
    if not trust:
        raise ModelError("refusing to run an untrusted MONAI bundle config", path=root, hint=TRUST_HINT)
    config = read_config(root)
    spec, window_batch = spec_from_config(config, root)
    labels = labels_from_metadata(root)
    return MonaiBundleSegmenter(root, spec=spec, labels=labels, name=root.name, version=_bundle_version(root),
                                device=device, settings=_settings(spec, window_batch, engine, settings, model=root.name))


def _settings(spec: NetworkInput, window_batch: int | None, engine: EngineOverrides | None, base=None,
              *, model: str = "this bundle"):
    """A bundle folder's own window step and batch, then the user's overrides (which win)."""
    from volseg.segmenters.engine.settings import EngineSettings
    from volseg.segmenters.engine_settings import engine_settings

    bundle = (base or EngineSettings()).with_options(step=spec.step, window_batch=window_batch)
    return engine_settings(None, engine, base=bundle, model=model)


class MonaiBundleSegmenter:
    def __init__(self, root: Path, *, spec: NetworkInput, labels: LabelTable, name: str, version: str,
                 device: str = "auto", checkpoint: Path | None = None, channels: int | None = None,
                 settings=None, entry: ModelEntry | None = None, monai_pipeline: bool = False):
        import torch

        from volseg.segmenters.device import resolve_device
        from volseg.segmenters.engine.settings import EngineSettings
        from volseg.segmenters.weights import weight_records

        self.root, self.spec, self.labels, self.name, self.version = root, spec, labels, name, version
        self.monai_pipeline = monai_pipeline  # catalogued bundles: MONAI's own pipeline (.monai_steps)
        self.entry = entry  # None: a bundle folder given by path
        self.device = resolve_device(device)
        self.settings = settings or EngineSettings()
        self.checkpoint = checkpoint or root / "models" / "model.pt"
        self.weight_records = weight_records([self.checkpoint])
        self.network = instantiate_network(read_config(root), root)
        try:
            state = torch.load(self.checkpoint, map_location="cpu", weights_only=True)
        except (OSError, RuntimeError, ValueError) as exc:
            raise ModelError(f"cannot load bundle weights: {str(exc).splitlines()[0]}", path=self.checkpoint) from exc
        if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
            state = state["model"]  # some bundles save {"model": state_dict, ...}
        try:
            self.network.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise ModelError(f"bundle weights do not fit its network_def: {str(exc).splitlines()[0][:200]}",
                             path=self.checkpoint) from exc
        self.network.eval().to(self.device)
        self.channels = int(channels or (max(labels, default=0) + 1))
        self._last: dict[str, Any] = {}

    def predict(self, volume: Volume, *, modality: str | None = None,
                progress: ProgressCallback = no_progress) -> Volume:
        """The bundle's own pipeline (:mod:`.monai_steps`): MONAI's grid, intensity after
        resampling, MONAI's sliding window, argmax and nearest inversion onto ``volume``'s grid."""
        import numpy as np

        from volseg.segmenters.backends import monai_steps
        from volseg.volume import reorient, undo_reorient

        t0 = time.perf_counter()
        if not self.monai_pipeline:
            return self._predict_engine(volume, progress)
        spec = self.spec
        work = reorient(volume, spec.orientation) if spec.orientation else volume
        perm = tuple(spec.axes)
        array = np.asarray(work.array).transpose(perm)
        spacing = tuple(float(work.spacing[p]) for p in perm)
        target = tuple(float(spec.spacing_mm[p]) for p in perm) if spec.spacing_mm else None
        progress("sliding_window", 0, 1)
        codes, info = monai_steps.labels_on_input(
            array, spacing, target=target, intensity=spec.intensity, predictor=self.network,
            roi=spec.patch_size, overlap=1.0 - float(self.settings.step),
            window_batch=int(self.settings.window_batch), device=self.device)
        progress("sliding_window", 1, 1)
        codes = codes.transpose(tuple(int(i) for i in np.argsort(perm)))
        if spec.orientation:
            codes = undo_reorient(codes, volume, spec.orientation).array
        dtype = np.uint8 if self.channels <= 256 else np.uint16
        self._last = {**info, "pipeline": "monai (Spacingd grid, SlidingWindowInferer gaussian, Invertd nearest)",
                      "seconds": time.perf_counter() - t0}
        return check_on_grid(volume.with_array(np.asarray(codes).astype(dtype)), volume, self.name)

    def _predict_engine(self, volume: Volume, progress: ProgressCallback) -> Volume:
        """A bundle folder given by path: volseg's window pipeline (nnU-Net-style windows)."""
        import numpy as np

        t0 = time.perf_counter()
        result = run_pipeline(volume, self.network, spec=self.spec, channels=self.channels, settings=self.settings,
                              device=self.device, progress=progress)
        dtype = np.uint8 if self.channels <= 256 else np.uint16
        self._last = {**result.info, "seconds": time.perf_counter() - t0}
        return check_on_grid(volume.with_array(result.labels.astype(dtype)), volume, self.name)

    def provenance(self) -> ModelProvenance:
        from volseg.segmenters.device import describe_device

        return ModelProvenance(name=self.name, version=self.version, backend="monai_bundle",
                               device=describe_device(self.device), weights=tuple(self.weight_records),
                               settings=self.settings.as_dict(),
                               details={"input": self.spec.model_dump(mode="json"), **self._last})


# ---- reading a bundle ----------------------------------------------------------------------------
def read_config(root: Path) -> dict:
    for name in CONFIG_NAMES:
        path = root / name
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            try:
                if path.suffix == ".json":
                    return json.loads(text)
                import yaml

                return yaml.safe_load(text)
            except Exception as exc:  # json/yaml parse errors
                raise ModelError(f"cannot parse the bundle config: {str(exc).splitlines()[0]}", path=path) from exc
    raise ModelError("not a MONAI bundle (no configs/inference.json)", path=root)


def instantiate_network(config: dict, root: Path):
    """``network_def`` of a trusted config, instantiated by MONAI's ConfigParser."""
    try:
        from monai.bundle import ConfigParser
    except ModuleNotFoundError as exc:
        raise DependencyError("MONAI bundles need the Python package 'monai'", hint="pip install 'volseg[monai]'") from exc
    if "network_def" not in config:
        raise ModelError("bundle config has no network_def", path=root)
    parser = ConfigParser({**config, "bundle_root": str(root)})
    try:
        network = parser.get_parsed_content("network_def", instantiate=True)
    except Exception as exc:  # whatever the bundle's code raises
        raise ModelError(f"cannot instantiate the bundle's network_def: {str(exc).splitlines()[0][:200]}",
                         path=root) from exc
    import torch

    if not isinstance(network, torch.nn.Module):
        raise ModelError(f"the bundle's network_def gave a {type(network).__name__}, not a torch module", path=root)
    return network


def _literal(value, what: str, root: Path):
    if isinstance(value, str) and value[:1] in ("$", "@", "%"):
        raise ModelError(f"bundle config: {what} is an expression ({value!r}); volseg reads plain values only",
                         path=root, hint="write the value itself in configs/inference.json")
    return value


def _transforms(config: dict, root: Path) -> list[dict]:
    pre = config.get("preprocessing", {})
    items = pre.get("transforms", []) if isinstance(pre, dict) else []
    found = []
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("_target_"), str):
            found.append({**item, "_target_": item["_target_"].rsplit(".", 1)[-1]})
    return found


def spec_from_config(config: dict, root: Path) -> tuple[NetworkInput, int | None]:
    """Preprocessing and window settings read as plain values from a bundle config."""
    spec: dict[str, Any] = {}
    zscore, scale = None, None
    for t in _transforms(config, root):
        name = t["_target_"]
        if name == "Orientationd":
            spec["orientation"] = str(_literal(t.get("axcodes"), "Orientationd.axcodes", root))
        elif name == "Spacingd":
            pixdim = _literal(t.get("pixdim"), "Spacingd.pixdim", root)
            spec["spacing_mm"] = tuple(float(v) for v in (pixdim if isinstance(pixdim, list) else [pixdim] * 3))
            mode = _literal(t.get("mode", "bilinear"), "Spacingd.mode", root)
            if mode not in ("bilinear", 1, 3):
                raise ModelError(f"bundle config: Spacingd mode {mode!r} is not supported (bilinear, 1 or 3)",
                                 path=root)
            spec["resampling"] = "cubic" if mode == 3 else "linear"
        elif name == "ScaleIntensityRanged":
            if not t.get("clip", False):
                raise ModelError("bundle config: ScaleIntensityRanged without clip is not supported", path=root)
            values = [float(_literal(t[k], f"ScaleIntensityRanged.{k}", root)) for k in ("a_min", "a_max", "b_min", "b_max")]
            spec["intensity"] = WindowPreset(kind="window", window=tuple(values[:2]), output_range=tuple(values[2:]))
        elif name == "NormalizeIntensityd":
            zscore = bool(t.get("nonzero", False))
        elif name == "ScaleIntensityd":
            scale = (float(t.get("minv", 0.0)), float(t.get("maxv", 1.0)))
        elif name == "Transposed":
            indices = [int(i) for i in _literal(t.get("indices"), "Transposed.indices", root)]
            if len(indices) != 4 or indices[0] != 0:
                raise ModelError("bundle config: Transposed must keep the channel axis first", path=root)
            spec["axes"] = tuple(i - 1 for i in indices[1:])
    if zscore is not None:
        spec["intensity"] = (ZScoreThenScale(kind="zscore_then_scale", nonzero=zscore, output_range=scale)
                             if scale else ZScore(kind="zscore", nonzero=zscore))
    spec.setdefault("intensity", {"kind": "none"})
    inferer = config.get("inferer", {})
    if not isinstance(inferer, dict) or "roi_size" not in inferer:
        raise ModelError("bundle config has no sliding-window inferer with a roi_size", path=root)
    roi = _literal(inferer["roi_size"], "inferer.roi_size", root)
    spec["patch_size"] = tuple(int(v) for v in roi)
    spec["step"] = 1.0 - float(_literal(inferer.get("overlap", 0.25), "inferer.overlap", root))
    batch = inferer.get("sw_batch_size")
    try:
        return NetworkInput.model_validate(spec), (int(batch) if isinstance(batch, int) else None)
    except Exception as exc:
        raise ModelError(f"bundle config describes an unsupported input: {exc}", path=root) from exc


def labels_from_metadata(root: Path) -> LabelTable:
    path = root / "configs" / "metadata.json"
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
        channels = meta["network_data_format"]["outputs"]["pred"]["channel_def"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelError("bundle metadata lacks network_data_format.outputs.pred.channel_def", path=path) from exc
    names = {int(k): str(v).strip().replace(" ", "_") for k, v in channels.items() if int(k) != 0}
    if sorted(names) != list(range(1, len(names) + 1)):
        raise ModelError("bundle channel_def must name channels 1..N without gaps", path=path)
    return LabelTable.from_names(names)


def _bundle_version(root: Path) -> str:
    try:
        return str(json.loads((root / "configs" / "metadata.json").read_text())["version"])
    except (OSError, ValueError, KeyError):
        return "custom"


def _catalogue_intensity(intensity):
    if intensity.kind == "zscore_then_scale":
        return ZScoreThenScale(kind="zscore_then_scale", nonzero=intensity.nonzero,
                               output_range=intensity.output_range or (-1.0, 1.0))
    if intensity.kind == "window" and intensity.window:
        return WindowPreset(kind="window", window=intensity.window, output_range=intensity.output_range or (0.0, 1.0))
    raise ModelError(f"intensity preset {intensity.kind!r} is not supported for MONAI bundles")
