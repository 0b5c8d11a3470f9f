"""Backends by name, imported lazily, and the one function that turns a model name into a Segmenter.

A backend is a factory ``(entry, *, device, engine) -> Segmenter`` (``engine``: the user's
:class:`EngineOverrides`, applied over the catalogue's settings by
:func:`volseg.segmenters.engine_settings.engine_settings`) named ``"module:attribute"`` so that
nothing heavy (torch, onnxruntime, nnunetv2) is imported until a model of that backend is loaded.
Backends find their verified weights with ``volseg.segmenters.weights.require_installed(name)``.

When no model is named, :func:`default_model` picks one: the first of ``PREFERRED_MODELS`` that
:func:`is_installed`, else the built-in ``classic-ct``, which needs no weights.
"""
from __future__ import annotations

import importlib
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from volseg.errors import DependencyError, ModelError
from volseg.segmenters.base import accepting_images

if TYPE_CHECKING:
    from volseg.segmenters.base import Segmenter
    from volseg.segmenters.catalogue import ModelEntry
    from volseg.segmenters.engine.settings import EngineOverrides

log = logging.getLogger(__name__)

#: backend name → "module:factory"
BACKENDS: dict[str, str] = {
    "classic": "volseg.segmenters.classic:load",
    "nnunet": "volseg.segmenters.backends.nnunet:load",
    "monai_bundle": "volseg.segmenters.backends.monai_bundle:load",
    "onnx": "volseg.segmenters.backends.onnx:load",
    "raidionics": "volseg.segmenters.backends.raidionics:load",
    "blast_ct": "volseg.segmenters.backends.blast_ct:load",
}

#: backend name → the pip extra that installs its third-party dependencies
BACKEND_EXTRAS: dict[str, str] = {"nnunet": "nnunet", "monai_bundle": "monai", "onnx": "onnx", "raidionics": "onnx"}

#: the built-in model used when nothing better is installed
BUILTIN_MODEL = "classic-ct"

#: pretrained models preferred, in order, over the built-in one when they are installed (a
#: general-purpose CT model would go first here, e.g. "total-fast"); empty: classic-ct is the
#: default until the project decides which pretrained model should replace it
PREFERRED_MODELS: tuple[str, ...] = ()


def backend_factory(name: str):
    """Import a backend's factory; a missing backend or dependency is a one-line error."""
    try:
        target = BACKENDS[name]
    except KeyError:
        raise ModelError(f"unknown backend {name!r}",
                         hint=f"registered: {', '.join(sorted(BACKENDS))}") from None
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        ours = module_name == missing or module_name.startswith(missing + ".")
        if ours or missing.split(".")[0] == "volseg":
            raise ModelError(f"backend {name!r} is not available in this volseg build "
                             f"(module {exc.name} is missing)",
                             hint="upgrade volseg, or choose another model (`volseg models list`)") from exc
        extra = BACKEND_EXTRAS.get(name)
        hint = f"pip install 'volseg[{extra}]'" if extra else None
        raise DependencyError(f"backend {name!r} needs the Python package {exc.name!r}", hint=hint) from exc
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ModelError(f"backend {name!r}: {module_name} has no factory {attr!r}") from None


def is_installed(name: str) -> bool:
    """True when catalogued model ``name`` can run now: it needs no weights, or they are installed.

    Cheap (reads the install manifest, does not re-hash); False for names not in the catalogue.
    """
    from volseg.segmenters.catalogue import load_catalogue
    from volseg.segmenters.weights.install import installed_path

    entry = load_catalogue().get(name)
    if entry is None:
        return False
    return not entry.needs_weights or installed_path(name) is not None


def default_model() -> str:
    """The model used when none is named: the first preferred model installed, else classic-ct."""
    for name in PREFERRED_MODELS:
        if is_installed(name):
            return name
    return BUILTIN_MODEL


def is_model_path(model: str) -> bool:
    """True when ``model`` names an existing file or folder rather than a catalogue entry (a
    catalogue name wins over a same-named folder in the working directory)."""
    from volseg.segmenters.catalogue import load_catalogue

    return Path(model).expanduser().exists() and model not in load_catalogue()


def load_segmenter(model: str | None = None, *, device: str = "auto", trust: bool = False,
                   engine: EngineOverrides | Mapping[str, object] | None = None) -> Segmenter:
    """Load a model once: a catalogue name (default: :func:`default_model`) or the path of a user's
    own model (see :func:`load_path_model`).

    ``trust`` allows a custom MONAI bundle folder's config to be instantiated (it can run code);
    ``engine``: the user's engine overrides (a model that cannot honour one refuses it).
    """
    from volseg.segmenters.catalogue import get_entry
    from volseg.segmenters.engine_settings import as_overrides

    engine = as_overrides(engine)  # the public API also takes a mapping of override names
    if model is not None and is_model_path(model):
        return accepting_images(load_path_model(Path(model).expanduser(), device=device, trust=trust,
                                                engine=engine))
    if model is not None and ("/" in model or model.endswith(".onnx")):
        raise ModelError("no such model file or folder", path=model)
    if model is None:
        model = default_model()
        if model == BUILTIN_MODEL:
            log.info("no pretrained model installed; using the built-in %s (rule-based, no weights)",
                     BUILTIN_MODEL)
        else:
            log.info("no model named; using %s, the preferred installed model", model)
    entry: ModelEntry = get_entry(model)
    if entry.cascade is not None:
        from volseg.segmenters.cascade import require_crop_model, with_cascade

        require_crop_model(entry, installed=is_installed)
    log.info("loading model %s %s (backend %s)", entry.name, entry.version, entry.backend)
    segmenter = backend_factory(entry.backend)(entry, device=device, engine=engine)
    if entry.cascade is not None:  # the crop model first finds the region (TotalSegmentator's subtasks)
        segmenter = with_cascade(segmenter, entry, lambda name: load_segmenter(name, device=device, engine=engine))
    return accepting_images(segmenter)


def load_path_model(path: Path, *, device: str = "auto", trust: bool = False,
                    engine: EngineOverrides | None = None) -> Segmenter:
    """A user's own model given by path: an nnU-Net v2 trained-model folder (plans.json +
    dataset.json), an ``.onnx`` file with its sidecar, or a MONAI bundle folder (``trust`` needed)."""
    from volseg.segmenters.backends.nnunet_folder import is_model_folder

    _say_which_entry(path)
    if is_model_folder(path):
        from volseg.segmenters.backends.nnunet import load_folder

        log.info("loading the nnU-Net trained-model folder %s", path.name)
        return load_folder(path, device=device, engine=engine)
    if path.suffix.lower() == ".onnx":
        from volseg.segmenters.backends.onnx import load_file

        log.info("loading ONNX model %s", path.name)
        return load_file(path, device=device, engine=engine)
    if path.is_dir():
        from volseg.segmenters.backends.monai_bundle import is_bundle, load_bundle

        if is_bundle(path):
            log.info("loading MONAI bundle %s", path.name)
            return load_bundle(path, device=device, trust=trust, engine=engine)
    raise ModelError("not a model volseg can run", path=path,
                     hint="expected an nnU-Net trained-model folder (plans.json, dataset.json, fold_*), "
                          "a MONAI bundle (configs/inference.json) or an .onnx file with its sidecar")


def _say_which_entry(path: Path) -> None:
    """Log which catalogue entry a publisher's model folder is; what ``--model PATH`` computes is unchanged."""
    from volseg.segmenters.weights.publishers import PATH_REFERENCE, identify_path, publisher

    for entry in identify_path(path):
        log.info("%s is %s's folder for catalogue model %s; given by path it follows %s, while `-m %s` "
                 "follows the %s pipeline", path.name, publisher(entry), entry.name, PATH_REFERENCE,
                 entry.name, publisher(entry))
