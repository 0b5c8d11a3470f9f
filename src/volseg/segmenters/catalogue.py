"""The model catalogue: one declarative, validated entry per model, stored as JSON data.

Entries live in ``segmenters/models/*.json`` (package data). They are the single source of truth
for ``volseg models list/show``, CLI choices, the README table and the catalogue tests. Every
entry is validated strictly (unknown fields are errors) when the catalogue is loaded.
"""
from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from volseg.errors import ModelError, unknown_choice_hint
from volseg.labels import LabelInfo, LabelTable, default_color, display_name

CATALOGUE_SCHEMA_VERSION = "1.0.0"
TaskGroup = Literal["organs", "tumours", "airways", "lymph_nodes", "other"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ClassEntry(_Strict):
    index: int = Field(ge=1)
    name: str
    display_name: str | None = None
    color: tuple[int, int, int] | None = None
    snomed_category: str | None = None
    snomed_type: str | None = None


class ModelEntry(_Strict):
    schema_version: str = CATALOGUE_SCHEMA_VERSION
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_\-]*$")
    version: str
    title: str
    description: str = ""
    task: TaskGroup
    modality: Literal["CT", "MR", "PET"]
    region: str
    classes: tuple[ClassEntry, ...]
    backend: str
    backend_options: dict = Field(default_factory=dict)
    licence: str
    commercial_use: bool
    citation: str
    sources: tuple[str, ...] = ()
    # lesion-type classes split into instances (lesions.csv); empty: the naming rule decides
    instance_classes: tuple[str, ...] = ()

    @field_validator("classes")
    @classmethod
    def _contiguous(cls, classes: tuple[ClassEntry, ...]) -> tuple[ClassEntry, ...]:
        indices = [c.index for c in classes]
        if indices != list(range(1, len(classes) + 1)):
            raise ValueError("class indices must be 1..N in order, without gaps")
        names = [c.name for c in classes]
        if len(set(names)) != len(names):
            raise ValueError("class names must be unique")
        return classes

    @model_validator(mode="after")
    def _instance_classes_known(self) -> "ModelEntry":
        names = {c.name for c in self.classes}
        unknown = [n for n in self.instance_classes if n not in names]
        if unknown:
            raise ValueError(f"instance_classes {unknown} are not classes of this model")
        return self

    @model_validator(mode="after")
    def _backend_known(self) -> "ModelEntry":
        from volseg.segmenters.registry import BACKENDS

        if self.backend not in BACKENDS:
            raise ValueError(f"backend {self.backend!r} is not registered")
        return self

    def label_table(self) -> LabelTable:
        return LabelTable(
            LabelInfo(
                index=c.index,
                name=c.name,
                display_name=c.display_name or display_name(c.name),
                color=c.color or default_color(c.index),
                snomed_category=c.snomed_category,
                snomed_type=c.snomed_type,
            )
            for c in self.classes
        )


@lru_cache(maxsize=1)
def load_catalogue() -> dict[str, ModelEntry]:
    """All catalogue entries by name (validated once per process)."""
    entries: dict[str, ModelEntry] = {}
    folder = resources.files("volseg.segmenters") / "models"
    for item in sorted(folder.iterdir(), key=lambda p: p.name):
        if not item.name.endswith(".json"):
            continue
        try:
            entry = ModelEntry.model_validate(json.loads(item.read_text(encoding="utf-8")))
        except (ValidationError, json.JSONDecodeError) as exc:
            raise ModelError(f"invalid catalogue entry {item.name}: {exc}") from exc
        if entry.name in entries:
            raise ModelError(f"catalogue entry {entry.name!r} is defined twice")
        entries[entry.name] = entry
    return entries


def get_entry(name: str) -> ModelEntry:
    catalogue = load_catalogue()
    try:
        return catalogue[name]
    except KeyError:
        raise ModelError(f"unknown model {name!r}", hint=unknown_choice_hint(name, catalogue)) from None


DEFAULT_MODEL = "classic-ct"
