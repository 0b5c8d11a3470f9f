"""Backends by name, imported lazily, and the one function that turns a model name into a Segmenter.

A backend is a factory ``(entry, *, device) -> Segmenter`` named ``"module:attribute"`` so that
nothing heavy (torch, onnxruntime, nnunetv2) is imported until a model of that backend is loaded.

When no model is named, :func:`default_model` picks one: the first of ``PREFERRED_MODELS`` that
:func:`is_installed`, else the built-in ``classic-ct``, which needs no weights.
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
    "classic": "volseg.segmenters.classic:load",
}

#: backends whose models need no downloaded weights (always installed)
BUILTIN_BACKENDS = frozenset({"classic"})

#: the built-in model used when nothing better is installed
BUILTIN_MODEL = "classic-ct"

#: pretrained models preferred, in order, over the built-in one when installed; the weights
#: manager adds its general-purpose CT models here (e.g. a TotalSegmentator-style organ model)
PREFERRED_MODELS: tuple[str, ...] = ()


def backend_factory(name: str):
    module_name, _, attr = BACKENDS[name].partition(":")
    return getattr(importlib.import_module(module_name), attr)


def is_installed(name: str) -> bool:
    """True when model ``name`` can run now: built-in backends always; weights not yet managed.

    Hook for the weights manager: it will answer for models whose weights it has installed.
    """
    from volseg.segmenters.catalogue import load_catalogue

    entry = load_catalogue().get(name)
    return entry is not None and entry.backend in BUILTIN_BACKENDS


def default_model() -> str:
    """The model used when none is named: the first preferred model installed, else classic-ct."""
    for name in PREFERRED_MODELS:
        if is_installed(name):
            return name
    return BUILTIN_MODEL


def load_segmenter(model: str | None = None, *, device: str = "auto") -> Segmenter:
    """Load a catalogued model by name (default: :func:`default_model`), once."""
    from volseg.segmenters.catalogue import get_entry

    if model is None:
        model = default_model()
        if model == BUILTIN_MODEL:
            log.info("no pretrained model installed; using the built-in %s (rule-based, no weights)",
                     BUILTIN_MODEL)
        else:
            log.info("no model named; using %s, the preferred installed model", model)
    entry: ModelEntry = get_entry(model)
    log.info("loading model %s %s (backend %s)", entry.name, entry.version, entry.backend)
    return backend_factory(entry.backend)(entry, device=device)
