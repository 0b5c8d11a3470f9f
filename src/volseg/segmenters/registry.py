"""Backends by name, imported lazily, and the one function that turns a model name into a Segmenter.

A backend is a factory ``(entry, *, device) -> Segmenter`` named ``"module:attribute"`` so that
nothing heavy (torch, onnxruntime, nnunetv2) is imported until a model of that backend is loaded.
"""
from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from volseg.segmenters.base import Segmenter
    from volseg.segmenters.catalogue import ModelEntry

log = logging.getLogger(__name__)

#: backend name → "module:factory"
BACKENDS: dict[str, str] = {
    "classic": "volseg.segmenters.classic_ct:load",
}


def backend_factory(name: str):
    module_name, _, attr = BACKENDS[name].partition(":")
    return getattr(importlib.import_module(module_name), attr)


def load_segmenter(model: str | None = None, *, device: str = "auto") -> "Segmenter":
    """Load a catalogued model by name (default: the built-in CT segmenter), once.

    ``model`` may also be the path of a user's nnU-Net trained-model folder (plans.json + dataset.json).
    """
    from pathlib import Path

    from volseg.segmenters.catalogue import DEFAULT_MODEL, get_entry

    if model and (Path(model) / "plans.json").is_file() and (Path(model) / "dataset.json").is_file():
        from volseg.segmenters.backends.nnunet import load_folder

        log.info("loading the nnU-Net trained-model folder %s", Path(model).name)
        return load_folder(model, device=device)

    entry: ModelEntry = get_entry(model or DEFAULT_MODEL)
    log.info("loading model %s %s (backend %s)", entry.name, entry.version, entry.backend)
    return backend_factory(entry.backend)(entry, device=device)
