"""The model catalogue: one declarative, validated entry per model, stored as JSON data.

Entries live in ``segmenters/models/*.json`` (package data). They are the single source of truth
for ``volseg models list/show``, CLI choices, the README table and the catalogue tests. Every
entry is validated strictly (unknown fields are errors) when the catalogue is loaded, and the JSON
Schema of an entry is committed next to this module (``catalogue.schema.json``).

Facts in an entry (URLs, dataset ids, class maps, spacings) come from the publisher's own files,
listed in ``sources``; what could not be found is left empty and said so in ``notes``.
"""
from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, TypeAdapter, ValidationError, field_validator, model_serializer, model_validator

from volseg.errors import ModelError, unknown_choice_hint
from volseg.labels import LabelInfo, LabelTable, default_color, display_name
from volseg.segmenters.backend_options import BackendName, BackendOptions, ClassicOptions, backend_options
from volseg.segmenters.intensity import FROM_MODEL, Preset, PresetKind
from volseg.segmenters.intensity import Intensity as _PresetUnion
from volseg.strict import StrictModel

CATALOGUE_SCHEMA_VERSION = "2.0.0"
SCHEMA_PATH = Path(__file__).with_name("catalogue.schema.json")
TaskGroup = Literal["organs", "tumours", "airways", "lymph_nodes", "other"]
TASK_GROUPS: tuple[str, ...] = ("organs", "tumours", "airways", "lymph_nodes", "other")
#: the body region a model was made for; ``segmenters/applicability.py`` holds each one's input checks
Region = Literal["head", "brain", "neck", "thorax", "abdomen", "pelvis", "thorax and abdomen",
                 "thorax, abdomen and pelvis", "whole body"]
_SHA256 = r"^[0-9a-f]{64}$"
_CODE = r"^[A-Z][A-Z0-9-]*:[0-9A-Za-z.\-]+$"  # "SCT:123037004"
_FILE_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$"


class ClassEntry(StrictModel):
    """One output class: index in the label map, name, colour and the codes the publisher gives."""

    index: int = Field(ge=1)
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
    display_name: str | None = None
    color: tuple[int, int, int] | None = None
    snomed_category: str | None = Field(None, pattern=_CODE, description="Segmented property category")
    snomed_type: str | None = Field(None, pattern=_CODE, description="Segmented property type")
    snomed_type_modifier: str | None = Field(None, pattern=_CODE, description="e.g. SCT:7771000 left")
    snomed_region: str | None = Field(None, pattern=_CODE, description="Anatomic region (lesions)")
    snomed_region_modifier: str | None = Field(None, pattern=_CODE)

    @field_validator("color")
    @classmethod
    def _rgb(cls, color):
        if color is not None and not all(0 <= c <= 255 for c in color):
            raise ValueError("colour components must be 0-255")
        return color


_PRESETS: TypeAdapter = TypeAdapter(_PresetUnion)


class Intensity(StrictModel):
    """How intensities are normalised before the network: a preset of the one vocabulary
    (:mod:`volseg.segmenters.intensity`, same kind names and fields), or ``from_model``: the model's own
    files say (nnU-Net plans, a Raidionics or MONAI bundle configuration)."""

    kind: Literal[PresetKind, "from_model"]
    window: tuple[float, float] | None = Field(None, description="window: [lower, upper] clip, in input units")
    output_range: tuple[float, float] | None = Field(None, description="window, zscore_then_scale: output range")
    nonzero: bool = Field(False, description="zscore, zscore_then_scale: statistics over non-zero voxels only")
    fill_holes: bool | None = Field(None, description="zscore: the non-zero mask with its holes filled")
    clip: tuple[float, float] | None = Field(None, description="clip_zscore: [lower, upper] clip")
    mean: float | None = Field(None, description="clip_zscore: mean subtracted after clipping")
    std: float | None = Field(None, description="clip_zscore: standard deviation divided by")
    description: str = ""

    @model_validator(mode="after")
    def _valid_preset(self) -> Intensity:
        try:
            self.preset()
        except ValidationError as exc:
            problem = exc.errors()[0]
            where = ".".join(str(p) for p in problem["loc"][1:])
            message = problem["msg"].removeprefix("Value error, ")
            raise ValueError(f"{self.kind} preset: {message}" + (f" at {where}" if where else "")) from None
        return self

    @model_serializer(mode="wrap")
    def _without_unused(self, handler) -> dict[str, Any]:
        """Leave out the clip_zscore / zscore-only fields when unset (``models show --json`` stays short)."""
        return {k: v for k, v in handler(self).items()
                if not (k in ("fill_holes", "clip", "mean", "std") and v is None)}

    def preset(self) -> Preset | None:
        """The pipeline's preset these fields describe; None for ``from_model``."""
        if self.kind == FROM_MODEL:
            return None
        # fields left at their defaults say nothing (a dumped entry sets them all, e.g. window=None)
        defaults = {name: info.default for name, info in type(self).model_fields.items()}
        fields = {k: v for k, v in self.model_dump(mode="python").items()
                  if k == "kind" or (k != "description" and v != defaults.get(k))}
        return _PRESETS.validate_python(fields)


class InputSpec(StrictModel):
    """What the model expects: resampling target, orientation, intensity preset."""

    spacing_mm: tuple[float, float, float] | None = Field(
        None, description="target voxel size along x, y, z (RAS) in mm; null = model's own plans")
    orientation: str | None = Field(
        None, pattern=r"^[RLAPSI]{3}$", description="reorient to this before inference; null = as stored")
    intensity: Intensity
    resampling: str | None = Field(None, description="interpolation used to resample the image")
    sequences: tuple[str, ...] = Field((), description="MR sequence(s) expected, e.g. T1-CE")


class PublisherHash(StrictModel):
    """A non-sha256 checksum the publisher gives (verified too, when present)."""

    algorithm: Literal["md5", "sha1"]
    value: str = Field(pattern=r"^[0-9a-f]+$")

    @model_validator(mode="after")
    def _length(self) -> "PublisherHash":
        if len(self.value) != {"md5": 32, "sha1": 40}[self.algorithm]:
            raise ValueError(f"{self.algorithm} digest has the wrong length")
        return self


class WeightFile(StrictModel):
    """One file to download. Archives are kept and extracted safely into ``<model dir>/<extract_to>``
    (the model folder itself when ``extract_to`` is null); ``members`` are relative to that folder."""

    name: str = Field(pattern=_FILE_NAME, description="file name in the model's cache folder")
    url: str = Field(pattern=r"^https://\S+$")
    sha256: str | None = Field(None, pattern=_SHA256, description="publisher's sha256; null: lock it")
    publisher_hash: PublisherHash | None = None
    size_bytes: int | None = Field(None, ge=0)
    archive: Literal["zip", "tar", "tar.gz"] | None = None
    extract_to: str | None = Field(None, pattern=_FILE_NAME)
    members: tuple[str, ...] = Field((), description="archive members known to be inside")

    @model_validator(mode="after")
    def _archive_fields(self) -> "WeightFile":
        if self.archive is None and (self.extract_to or self.members):
            raise ValueError(f"{self.name}: extract_to/members need an archive type")
        return self



class PartFolder(StrictModel):
    """Where one part's network lies in the installed files."""

    dataset_id: int | None = Field(None, description="the publisher's dataset number")
    model_folder: str | None = Field(None, description="trained-model folder, relative to the model's folder")


class ModelPart(StrictModel):
    """One network of a multi-network model and the classes it contributes (local → catalogue)."""

    name: str
    weights: tuple[str, ...] = Field(description="names of the weight files this part uses")
    labels: dict[int, str] = Field(description="the part's own label index → catalogue class name")
    options: PartFolder = PartFolder()


class SlidingWindow(StrictModel):
    patch_size: tuple[int, int, int] | None = Field(None, description="null: from the model's plans")
    overlap: float | None = Field(None, ge=0.0, lt=1.0, description="fraction of the patch")
    blending: Literal["gaussian", "constant"] | None = None
    mirroring: bool | None = None
    batch_size: int | None = Field(None, ge=1)
    padding: str | None = None


class PostStep(StrictModel):
    op: str
    params: dict[str, Any] = Field(default_factory=dict)


class Cascade(StrictModel):
    """Crop the input to another model's classes before running this one (run by
    :mod:`volseg.segmenters.cascade`): the crop model labels the whole input, the box around its
    ``classes`` (plus ``margin`` per array axis) is cut from the input, this model runs on the cut, and
    its labels go back onto the full grid (zeros outside the box); no crop class found: no labels."""

    model: str = Field(description="catalogue model that finds the region (run on the whole input first)")
    classes: tuple[str, ...] = Field(min_length=1)
    margin: tuple[float, float, float] | None = Field(
        None, description="added on both sides of the box along each array axis; null: none")
    margin_unit: Literal["voxel", "mm"] | None = Field(
        None, description="mm: whole voxels per axis, truncated (TotalSegmentator's crop_to_mask); "
                          "null: voxel")
    robust: bool = Field(False, description="the publisher's robust crop (TotalSegmentator: its 3 mm model "
                                            "rather than the 6 mm one); `model` names the model it picks")
    cast: Literal["int32"] | None = Field(
        None, description="cast the cut image to this type, truncating toward zero (TotalSegmentator "
                          "crops into int32); null: keep the input's values")

    @model_validator(mode="after")
    def _margin_unit_given(self) -> "Cascade":
        if self.margin is not None and self.margin_unit is None:
            raise ValueError("a cascade margin needs its margin_unit ('voxel' or 'mm')")
        if self.margin is not None and min(self.margin) < 0:
            raise ValueError("cascade margins must not be negative")
        return self


class ModelEntry(StrictModel):
    schema_version: str = CATALOGUE_SCHEMA_VERSION
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_\-]*$")
    version: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-+]*$")
    title: str
    description: str = ""
    task: TaskGroup
    modality: Literal["CT", "MR", "PET"]
    region: Region
    classes: tuple[ClassEntry, ...]
    input: InputSpec
    backend: BackendName
    backend_options: BackendOptions = Field(
        default_factory=ClassicOptions,  # replaced by the named backend's defaults (_options_of_backend)
        description="options of the backend named by `backend`, validated by that backend's model")
    parts: tuple[ModelPart, ...] = ()
    weights: tuple[WeightFile, ...] = ()
    sliding_window: SlidingWindow | None = None
    postprocess: tuple[PostStep, ...] = ()
    cascade: Cascade | None = None
    licence: str
    commercial_use: bool | None = Field(description="null: the publisher does not say")
    citation: str
    sources: tuple[str, ...] = ()
    notes: str = ""
    # lesion-type classes split into instances (lesions.csv); empty: the naming rule decides
    instance_classes: tuple[str, ...] = ()
    fast_variant: str | None = Field(
        None, pattern=r"^[a-z0-9][a-z0-9_\-]*$",
        description="catalogue entry run for --fast (a faster, coarser model of the same family)")
    fastest_variant: str | None = Field(
        None, pattern=r"^[a-z0-9][a-z0-9_\-]*$",
        description="catalogue entry run for --fastest (the family's fastest, coarsest model)")

    @model_validator(mode="before")
    @classmethod
    def _options_of_backend(cls, data: Any) -> Any:
        """Validate ``backend_options`` with the model of the named backend (not by trial)."""
        if isinstance(data, dict) and isinstance(data.get("backend"), str):
            data = {**data, "backend_options": backend_options(data["backend"], data.get("backend_options"))}
        return data

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

    @field_validator("sources")
    @classmethod
    def _urls(cls, sources: tuple[str, ...]) -> tuple[str, ...]:
        for s in sources:
            if not s.startswith("https://"):
                raise ValueError(f"source {s!r} must be an https URL")
        return sources

    @model_validator(mode="after")
    def _instance_classes_known(self) -> "ModelEntry":
        names = {c.name for c in self.classes}
        unknown = [n for n in self.instance_classes if n not in names]
        if unknown:
            raise ValueError(f"instance_classes {unknown} are not classes of this model")
        return self

    @model_validator(mode="after")
    def _consistent(self) -> "ModelEntry":
        files = [w.name for w in self.weights]
        if len(set(files)) != len(files):
            raise ValueError("weight file names must be unique within an entry")
        names = {c.name for c in self.classes}
        for part in self.parts:
            missing = [w for w in part.weights if w not in files]
            if missing:
                raise ValueError(f"part {part.name!r} uses unknown weight files {missing}")
            unknown = sorted(set(part.labels.values()) - names)
            if unknown:
                raise ValueError(f"part {part.name!r} maps to unknown classes {unknown[:5]}")
        if self.parts:
            covered = {n for p in self.parts for n in p.labels.values()}
            if covered != names:
                raise ValueError(f"parts leave classes unmapped: {sorted(names - covered)[:5]}")
        if self.cascade is not None and self.cascade.model == self.name:
            raise ValueError("a model cannot crop to its own output")
        if self.fast_variant == self.name:
            raise ValueError("a model cannot be its own fast variant")
        if self.fastest_variant == self.name:
            raise ValueError("a model cannot be its own fastest variant")
        return self

    # ---- derived ------------------------------------------------------------------------
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

    @property
    def needs_weights(self) -> bool:
        return bool(self.weights)

    @property
    def size_bytes(self) -> int | None:
        """Total download size, or None when the publisher gives no size for some file."""
        sizes = [w.size_bytes for w in self.weights]
        return None if any(s is None for s in sizes) else sum(sizes)  # type: ignore[arg-type]

    def weight(self, file_name: str) -> WeightFile:
        for w in self.weights:
            if w.name == file_name:
                return w
        raise KeyError(file_name)


@lru_cache(maxsize=1)
def load_catalogue() -> dict[str, ModelEntry]:
    """All catalogue entries by name (validated once per process)."""
    entries: dict[str, ModelEntry] = {}
    folder = resources.files("volseg.segmenters") / "models"
    for item in sorted(folder.iterdir(), key=lambda p: p.name):
        if not item.name.endswith(".json"):
            continue
        entry = parse_entry(item.read_text(encoding="utf-8"), source=item.name)
        if entry.name in entries:
            raise ModelError(f"catalogue entry {entry.name!r} is defined twice")
        entries[entry.name] = entry
    _check_cascades(entries)
    _check_fast_variants(entries)
    return entries


def parse_entry(text: str, *, source: str = "<entry>") -> ModelEntry:
    try:
        return ModelEntry.model_validate(json.loads(text))
    except (ValidationError, json.JSONDecodeError) as exc:
        raise ModelError(f"invalid catalogue entry {source}: {exc}") from exc


def _check_cascades(entries: dict[str, ModelEntry]) -> None:
    for entry in entries.values():
        if entry.cascade is None:
            continue
        parent = entries.get(entry.cascade.model)
        if parent is None:
            raise ModelError(f"{entry.name}: cascade model {entry.cascade.model!r} is not catalogued")
        missing = set(entry.cascade.classes) - {c.name for c in parent.classes}
        if missing:
            raise ModelError(f"{entry.name}: cascade classes {sorted(missing)} not in {parent.name}")


def _check_fast_variants(entries: dict[str, ModelEntry]) -> None:
    for entry in entries.values():
        for kind, variant in (("fast", entry.fast_variant), ("fastest", entry.fastest_variant)):
            if variant is not None and variant not in entries:
                raise ModelError(f"{entry.name}: {kind} variant {variant!r} is not catalogued",
                                 hint=unknown_choice_hint(variant, entries))


def fast_variant(name: str, *, fastest: bool = False) -> str:
    """The catalogue entry ``--fast`` (``fastest``: ``--fastest``) runs instead of model ``name``;
    UsageError when it has none."""
    from volseg.errors import UsageError

    field = "fastest_variant" if fastest else "fast_variant"
    flag = "--fastest" if fastest else "--fast"
    variant = getattr(get_entry(name), field)
    if variant is None:
        having = sorted(e.name for e in load_catalogue().values() if getattr(e, field))
        raise UsageError(f"model {name!r} has no {field.replace('_', ' ')}, so {flag} cannot apply",
                         hint=f"models with one: {', '.join(having)}" if having else None)
    return str(variant)


def get_entry(name: str) -> ModelEntry:
    catalogue = load_catalogue()
    try:
        return catalogue[name]
    except KeyError:
        raise ModelError(f"unknown model {name!r}", hint=unknown_choice_hint(name, catalogue)) from None


def entry_json_schema() -> dict[str, Any]:
    """The JSON Schema of a catalogue entry (committed as ``catalogue.schema.json``)."""
    return ModelEntry.model_json_schema()


def write_schema(path: str | Path = SCHEMA_PATH) -> Path:
    """Regenerate the committed schema file after a deliberate change to :class:`ModelEntry`."""
    from volseg.io.atomic import write_text

    return write_text(path, json.dumps(entry_json_schema(), indent=2, sort_keys=True) + "\n")

