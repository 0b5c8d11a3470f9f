"""A Raidionics model's ``pre_processing.ini``, read strictly, and where its files lie.

Raidionics models (github.com/raidionics/Raidionics-models) ship as zips holding a folder per model:
``pre_processing.ini`` (how the network was trained: modality, spacing, crop, intensity, input
size or patch, thresholds) and the ONNX network one folder down. The keys and their meaning follow
the publisher's reader (``raidionicsseg/Utils/configuration_parser.py`` of raidionics_seg_lib);
values after ``#`` are comments, as there. Unlike the publisher's reader, a key this backend does not
know, or a value it cannot honour (N4 bias correction, several input sequences, ...), is a one-line
:class:`~volseg.errors.ModelError` naming the key: a model never runs with part of its
preprocessing silently skipped.
"""
from __future__ import annotations

import configparser
from dataclasses import dataclass
from pathlib import Path
from typing import overload

from volseg.errors import ModelError

INI_NAME = "pre_processing.ini"

#: section → keys the publisher's reader knows (configparser lower-cases keys)
KNOWN_KEYS: dict[str, frozenset[str]] = {
    "default": frozenset({"imaging_modality", "training_backend", "task"}),
    "preprocessing": frozenset({
        "library", "output_spacing", "intensity_clipping_values", "intensity_clipping_range",
        "intensity_final_range", "background_cropping", "new_axial_size", "slicing_plane",
        "swap_training_input", "normalization_method", "number_inputs", "diffloader_pairs", "channels_order"}),
    "training": frozenset({
        "nb_classes", "classes", "slab_size", "patch_size", "patch_offset", "optimal_thresholds",
        "deep_supervision", "activation_layer_included", "activation_layer_type", "softmax_layer_included"}),
    "mri": frozenset({"perform_bias_correction"}),
    "ct": frozenset({"fix_orientation"}),
}
SECTION_NAMES = {"default": "Default", "preprocessing": "PreProcessing", "training": "Training", "mri": "MRI",
                 "ct": "CT"}
MR_CROPS = ("minimum", "brain_clip", "brain_mask")
NORMALISATIONS = ("default", "zeromean", "zeromean_nonzero")


@dataclass(frozen=True)
class RaidionicsConfig:
    """What ``pre_processing.ini`` says, with the publisher's defaults for absent keys."""

    modality: str  # "CT" | "MRI"
    backend: str  # "TF" | "Torch": which framework trained it (Torch graphs: first output is the map)
    output_spacing: tuple[float, float, float] | None  # None: the input's finest spacing, isotropic
    crop: str | None  # CT: any value but "false" crops around the lungs ("invert": below them); MR: MR_CROPS
    clip_values: tuple[float, float] | None  # parsed; the publisher's clipping never applies them (see steps)
    clip_percentiles: tuple[float, float]
    normalisation: str | None
    new_axial_size: tuple[int, ...] | None  # 3 values: whole volume; 2: axial slabs; None: patches
    slicing_plane: str
    swap_input: bool
    channels_first: bool
    nb_classes: int
    class_names: tuple[str, ...]
    slab_size: int | None
    patch_size: tuple[int, int, int] | None
    patch_offset: tuple[int, int, int] | None
    thresholds: tuple[float, ...] | None
    deep_supervision: bool
    activation_included: bool
    activation: str  # "softmax" | "sigmoid"

    @property
    def mode(self) -> str:
        if self.new_axial_size is None:
            return "patch"
        return "whole" if len(self.new_axial_size) == 3 else "slab"

    def first_label_channel(self) -> int:
        """Channel of label 1: softmax maps carry background in channel 0, sigmoid maps do not."""
        return 0 if self.activation == "sigmoid" else 1


def read_config(path: str | Path) -> RaidionicsConfig:
    """Parse ``pre_processing.ini`` strictly; a ModelError names the first offending key."""
    path = Path(path)
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(path.read_text(encoding="utf-8"), source=str(path))
    except FileNotFoundError:
        raise ModelError(f"Raidionics model has no {INI_NAME}", path=path) from None
    except configparser.Error as exc:
        raise ModelError(f"{INI_NAME} is not a valid ini file: {str(exc).splitlines()[0]}", path=path) from exc
    values: dict[str, str] = {}
    for section in parser.sections():
        known = KNOWN_KEYS.get(section.lower())
        if known is None:
            raise ModelError(f"unknown section [{section}]", path=path)
        for key, raw in parser.items(section):
            if key not in known:
                raise ModelError(f"unknown key [{section}] {key}", path=path)
            value = raw.split("#")[0].strip()
            if value:
                values[f"{section.lower()}.{key}"] = value
    try:
        return _build(values)
    except _Bad as exc:
        raise ModelError(str(exc), path=path) from None


class _Bad(ValueError):
    pass


def _name(key: str) -> str:
    section, option = key.split(".")
    return f"[{SECTION_NAMES[section]}] {option}"


def _get(values: dict[str, str], key: str, kind, default=None, *, count: int | tuple[int, ...] | None = None,
         many: bool = False):
    raw = values.get(key)
    if raw is None:
        return default
    name = _name(key)
    try:
        if kind is bool:
            if raw.lower() not in ("true", "false"):
                raise ValueError
            return raw.lower() == "true"
        if kind in (int, float) and count is None and not many:
            return kind(raw)
        items = tuple(kind(x.strip()) for x in raw.split(","))
    except ValueError:
        raise _Bad(f"{name} = {raw!r} is not a valid {getattr(kind, '__name__', kind)} value") from None
    counts = (count,) if isinstance(count, int) else count
    if counts and len(items) not in counts:
        raise _Bad(f"{name} needs {' or '.join(map(str, counts))} values, got {len(items)}")
    return items


@overload
def _choice(values: dict[str, str], key: str, choices: tuple[str, ...], default: str) -> str: ...
@overload
def _choice(values: dict[str, str], key: str, choices: tuple[str, ...], default: None) -> str | None: ...
def _choice(values: dict[str, str], key: str, choices: tuple[str, ...], default: str | None) -> str | None:
    raw = values.get(key)
    if raw is None:
        return default
    if raw.lower() not in choices:
        raise _Bad(f"{_name(key)} = {raw!r} is not supported (expected one of {', '.join(choices)})")
    return raw.lower()


def _refuse(values: dict[str, str], key: str, allowed: str, why: str) -> None:
    raw = values.get(key)
    if raw is not None and raw.lower() != allowed:
        raise _Bad(f"{_name(key)} = {raw!r} is not supported: {why}")


def _build(v: dict[str, str]) -> RaidionicsConfig:
    if "default.imaging_modality" not in v:
        raise _Bad("[Default] imaging_modality is missing")
    modality = _choice(v, "default.imaging_modality", ("ct", "mri"), "").upper()  # present: checked above
    _refuse(v, "default.task", "segmentation", "volseg runs segmentation models only")
    _refuse(v, "preprocessing.library", "nibabel", "only the nibabel resampling is reproduced")
    _refuse(v, "preprocessing.number_inputs", "1", "models needing several input sequences are not supported")
    if "preprocessing.diffloader_pairs" in v:
        raise _Bad("[PreProcessing] diffloader_pairs is not supported: it needs several input sequences")
    _refuse(v, "mri.perform_bias_correction", "false", "N4 bias correction is not reproduced")
    _refuse(v, "ct.fix_orientation", "false", "slab orientation fixing is not reproduced")
    crop = values_crop(v, modality)
    layout = _choice(v, "preprocessing.channels_order", ("channels_first", "channels_last"), "channels_last")
    nb_classes = _get(v, "training.nb_classes", int)
    if nb_classes is None or nb_classes < 1:
        raise _Bad("[Training] nb_classes is missing or not positive")
    names = _get(v, "training.classes", str, (), many=True)
    if names and len(names) != nb_classes:
        raise _Bad(f"[Training] classes names {len(names)} classes but nb_classes is {nb_classes}")
    included = _get(v, "training.activation_layer_included", bool,
                    _get(v, "training.softmax_layer_included", bool, True))
    config = RaidionicsConfig(
        modality=modality,
        backend=_choice(v, "default.training_backend", ("tf", "torch"), "tf").replace("tf", "TF").replace(
            "torch", "Torch"),
        output_spacing=_get(v, "preprocessing.output_spacing", float, count=3),
        crop=crop,
        clip_values=_get(v, "preprocessing.intensity_clipping_values", float, count=2),
        clip_percentiles=_get(v, "preprocessing.intensity_clipping_range", float, (0.0, 100.0), count=2),
        normalisation=_choice(v, "preprocessing.normalization_method", NORMALISATIONS, None),
        new_axial_size=_get(v, "preprocessing.new_axial_size", int, count=(2, 3)),
        slicing_plane=_choice(v, "preprocessing.slicing_plane", ("axial", "sagittal", "coronal"), "axial"),
        swap_input=_get(v, "preprocessing.swap_training_input", bool, False),
        channels_first=layout == "channels_first",
        nb_classes=nb_classes,
        class_names=tuple(names) or tuple(f"class{i}" for i in range(nb_classes)),
        slab_size=_get(v, "training.slab_size", int),
        patch_size=_get(v, "training.patch_size", int, count=3),
        patch_offset=_get(v, "training.patch_offset", int, count=3),
        thresholds=_get(v, "training.optimal_thresholds", float, many=True),
        deep_supervision=_get(v, "training.deep_supervision", bool, False),
        activation_included=included,
        activation=_choice(v, "training.activation_layer_type", ("softmax", "sigmoid"), "softmax"),
    )
    _check_mode(config)
    return config


def values_crop(v: dict[str, str], modality: str) -> str | None:
    raw = v.get("preprocessing.background_cropping")
    if raw is None or raw.lower() in ("false", "none"):
        return None
    if modality == "CT":  # the publisher crops around the lungs for any other value
        return "invert" if raw.lower() == "invert" else "lungs"
    return _choice(v, "preprocessing.background_cropping", MR_CROPS, None)


def _check_mode(c: RaidionicsConfig) -> None:
    if c.mode == "slab":
        if c.slab_size is None or c.slab_size < 1:
            raise _Bad("[Training] slab_size is needed when new_axial_size has 2 values")
        if c.slicing_plane != "axial" or c.swap_input:
            raise _Bad("[PreProcessing] slicing_plane: only axial slabs without swap_training_input are supported")
    if c.mode == "patch":
        if c.patch_size is None:
            raise _Bad("[Training] patch_size is needed when new_axial_size is absent")
        offset = c.patch_offset or (0, 0, 0)
        if any(o < 0 or o >= p for o, p in zip(offset, c.patch_size)):
            raise _Bad("[Training] patch_offset must be below patch_size on every axis")
    if c.thresholds is not None and any(not 0.0 <= t <= 1.0 for t in c.thresholds):
        raise _Bad("[Training] optimal_thresholds must lie in [0, 1]")
    lo, hi = c.clip_percentiles
    if not 0.0 <= lo < hi <= 100.0:
        raise _Bad("[PreProcessing] intensity_clipping_range must be two percentiles 0 <= low < high <= 100")


def find_model_folder(root: Path, task: str) -> Path:
    """The folder of ``task`` holding ``pre_processing.ini`` (the folder itself or one below it)."""
    base = root / task
    if (base / INI_NAME).is_file():
        return base
    found = sorted(p.parent for p in base.glob(f"*/{INI_NAME}")) if base.is_dir() else []
    if len(found) == 1:
        return found[0]
    if not found:
        raise ModelError(f"no {INI_NAME} for Raidionics model {task}", path=base,
                         hint="the archive layout differs from what volseg expects; reinstall the model")
    raise ModelError(f"several {INI_NAME} files for Raidionics model {task}: "
                     f"{', '.join(p.name for p in found)}", path=base)


def find_network(folder: Path) -> Path:
    """The model's ONNX file: the publisher loads the files one folder down, sorted by folder name,
    and uses the first unless folds are ensembled (off by default); a file beside the ini is accepted."""
    nested = sorted(folder.glob("*/*.onnx"), key=lambda p: (p.parent.name, p.name))
    found = nested or sorted(folder.glob("*.onnx"))
    if not found:
        raise ModelError("Raidionics model folder holds no .onnx network", path=folder)
    return found[0]
