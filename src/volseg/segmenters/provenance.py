"""What produced a label map: :class:`ModelProvenance`, the frozen object every segmenter returns.

Common fields are typed (name, version, backend, device, weights, engine settings); what only one
backend knows (providers, parts, window, crop, timings of the last run) is in ``details``.
:meth:`ModelProvenance.as_dict` gives the mapping the report stores under ``provenance.model``, with
each backend's keys in the order it has always written them (``layout``), so reports stay identical.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ModelProvenance:
    name: str
    version: str
    backend: str
    device: str
    #: one record per weight file (file name and sha256)
    weights: tuple[Mapping[str, Any], ...] = ()
    #: the engine settings the model ran with (a backend with its own pipeline: its own settings)
    settings: Mapping[str, Any] | None = None
    #: what only this backend knows, in the order it is reported
    details: Mapping[str, Any] = field(default_factory=dict)
    #: the order of the report's keys, common and detail ones; details not named follow in order
    layout: tuple[str, ...] = ("model", "version", "backend", "weights", "device", "settings")

    @property
    def fallbacks(self) -> list[str]:
        """Degradations the last run had to make (e.g. a smaller window batch after OOM)."""
        return list(self.details.get("fallbacks", []))

    def as_dict(self) -> dict[str, Any]:
        """The report's ``provenance.model`` mapping, exactly as this backend has always written it."""
        common = {"model": self.name, "version": self.version, "backend": self.backend, "device": self.device,
                  "weights": list(self.weights),
                  "settings": dict(self.settings) if self.settings is not None else None}
        out: dict[str, Any] = {key: common[key] if key in common else self.details[key] for key in self.layout}
        for key, value in self.details.items():
            out.setdefault(key, value)
        return out
