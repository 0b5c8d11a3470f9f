"""Real, validated catalogue entries for backend tests (no SimpleNamespace stand-ins)."""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from volseg.segmenters.catalogue import ModelEntry, parse_entry


def make_entry(*, classes: Mapping[int, str], name: str = "phantom", backend: str = "nnunet",
               backend_options: Mapping[str, Any] | None = None, parts: Sequence[Mapping[str, Any]] = (),
               orientation: str | None = None, sliding_window: Mapping[str, Any] | None = None) -> ModelEntry:
    """A catalogue entry validated exactly as ``segmenters/models/*.json`` are (ModelError if invalid).

    ``parts``: ``{"name", "labels": {index: class name}, "model_folder"}`` each.
    """
    raw = {
        "name": name, "version": "1", "title": f"{name} (test)", "task": "other", "modality": "CT",
        "region": "whole body",
        "classes": [{"index": i, "name": n} for i, n in sorted(classes.items())],
        "input": {"orientation": orientation, "intensity": {"kind": "from_model"}},
        "backend": backend, "backend_options": dict(backend_options or {}),
        "parts": [{"name": p["name"], "weights": [], "labels": {str(k): v for k, v in p["labels"].items()},
                   "options": {"model_folder": p.get("model_folder")}} for p in parts],
        "sliding_window": dict(sliding_window) if sliding_window is not None else None,
        "licence": "test only", "commercial_use": None, "citation": "test",
    }
    return parse_entry(json.dumps(raw), source=f"{name} (test)")
