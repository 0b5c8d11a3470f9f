"""Does an input fit a model? Cheap checks, driven by a catalogue entry's ``modality`` and ``region``.

Before weights are loaded (or, for a loaded model, before it predicts) :func:`check_applicable`
surveys the input once on a ~4 mm subsample (pure numpy + cc3d, well under a second on a
512×512×141 CT) and refuses, with a :class:`~volseg.errors.ModelError` naming the file, the model
and the reason, an input the model was not made for:

* **modality**: the DICOM Modality tag when the file has one; without it, the intensities
  (a CT model needs CT in HU; an MR model refuses an image that looks like CT in HU);
* **HU units** (CT models): CT in HU, or CT stored without RescaleIntercept (HU+1024), said so;
* **body region** (:data:`REGION_RULES`): head and brain models need a skull (a closed ring of
  dense bone around brain-density tissue) and a body narrower than a trunk; thorax models need
  lungs; abdomen, pelvis and trunk models refuse a head. Whole-body models take any part of the
  body (their classes include skull and brain), so does the built-in classic-ct.

Models given by path (no catalogue entry) are checked only for the modality they declare.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np

from volseg.errors import ModelError
from volseg.segmenters.units import HU_SHIFT, classify_units
from volseg.volume import Volume, reorient

log = logging.getLogger(__name__)

SURVEY_SPACING_MM = 4.0  # the subsample's voxel size (integer strides, no interpolation)
BODY_HU = -300  # denser than this: body tissue (CT)
BONE_HU = 300  # denser than this: bone
BRAIN_HU = (0.0, 80.0)  # median inside a skull ring
LUNG_HU = (-950.0, -600.0)  # lung parenchyma (bowel gas is mostly below)
MIN_SKULL_HOLE_CM2 = 30.0  # cross-section inside the skull ring on one axial slice
MIN_SKULL_SLICES = 3
MIN_LUNG_ML = 250.0
MAX_HEAD_WIDTH_MM = 300.0  # a body wider than this (R-L) is a trunk, not a head
HEAD_WIDTH_MM = 250.0  # a skull in a body narrower than this: a head
FORCE_HINT = "add --force (SegmentOptions(force=True)) to run it anyway"

#: region → the checks it needs ("skull", "lungs", "not_head", "not_trunk")
REGION_RULES: dict[str, tuple[str, ...]] = {
    "head": ("skull", "not_trunk"),
    "brain": ("skull", "not_trunk"),
    "neck": (),
    "thorax": ("lungs", "not_head"),
    "abdomen": ("not_head",),
    "pelvis": ("not_head",),
    "thorax and abdomen": ("not_head",),
    "thorax, abdomen and pelvis": ("not_head",),
    "whole body": (),
}


@dataclass(frozen=True)
class ModelScope:
    """What a model was made for: modality ("CT", "MR", "PET" or None) and body region (or None)."""

    name: str
    modality: str | None = None
    region: str | None = None

    @classmethod
    def of_entry(cls, entry) -> "ModelScope":
        return cls(entry.name, entry.modality, entry.region)


@dataclass(frozen=True)
class InputSurvey:
    """What the checks found in an image (no patient data: sizes and intensity statistics)."""

    modality: str | None  # the file's Modality tag, if any
    units: str  # "hu", "hu+1024" (CT without RescaleIntercept) or "other"
    p1: float
    p99: float
    fov_mm: tuple[float, float, float]  # extent along R-L, A-P, S-I
    body_mm: tuple[float, float] | None  # body width (R-L) and depth (A-P); None: no body found
    skull_slices: int  # axial slices with a skull ring (CT in HU only)
    lung_ml: float  # lung-density air inside the body (CT in HU only)
    seconds: float

    @property
    def skull(self) -> bool:
        return self.skull_slices >= MIN_SKULL_SLICES


def scope_of_name(model: str | None) -> ModelScope | None:
    """The scope of the model :func:`~volseg.segmenters.registry.load_segmenter` would load for
    ``model`` (None: the default one), or None for a model given by path (known once loaded)."""
    from volseg.segmenters.catalogue import get_entry
    from volseg.segmenters.registry import default_model, is_model_path

    if model is not None and is_model_path(model):
        return None
    return ModelScope.of_entry(get_entry(model or default_model()))


def scope_of_segmenter(segmenter) -> ModelScope:
    """A loaded segmenter's scope: its catalogue entry's, else the modality it declares (if any)."""
    from volseg.segmenters.catalogue import ModelEntry, load_catalogue

    name = str(getattr(segmenter, "name", "model"))
    entry = getattr(segmenter, "entry", None)
    entry = entry if isinstance(entry, ModelEntry) else load_catalogue().get(name)
    if entry is not None:
        return ModelScope.of_entry(entry)
    return ModelScope(name, declared_modality(segmenter))


def declared_modality(segmenter) -> str | None:
    """The modality a model given by path declares: an ONNX sidecar's ``modality``, or CT for an
    nnU-Net folder whose every part normalises as CT (its dataset.json names the channel "CT")."""
    meta = getattr(segmenter, "meta", None)
    declared = getattr(segmenter, "modality", None) or getattr(meta, "modality", None)
    if isinstance(declared, str):
        return _modality_name(declared)
    schemes = {getattr(part, "scheme", None) for part in getattr(segmenter, "parts", ())}
    return "CT" if schemes == {"CTNormalization"} else None


def check_applicable(volume: Volume, scope: ModelScope, *, modality: str | None = None,
                     path: str | None = None) -> InputSurvey:
    """Survey ``volume`` and raise ModelError (naming ``path`` and the model) when ``scope`` does not fit."""
    if scope.modality is None and scope.region is None:
        return survey(volume, modality=modality, anatomy=False)
    found = survey(volume, modality=modality, anatomy=bool(REGION_RULES.get(scope.region or "")))
    reason = refusal(scope, found)
    log.debug("applicability of %s: %s (%.2f s)", scope.name, reason or "fits", found.seconds)
    if reason:
        raise ModelError(f"model {scope.name!r} not run: {reason}", path=path, hint=FORCE_HINT)
    return found


def refusal(scope: ModelScope, found: InputSurvey) -> str | None:
    """Why ``scope``'s model should not run on the surveyed input, or None when it fits."""
    made_for = f"{scope.name} is made for {scope.modality or 'any modality'}"
    tag = _modality_name(found.modality)
    if scope.modality and tag and tag != scope.modality:
        return f"this image is {tag} (DICOM Modality); {made_for}"
    if scope.modality == "CT" and found.units == "hu+1024":
        return (f"values do not look like CT in HU: they look like CT stored without RescaleIntercept "
                f"(HU+1024); {made_for} in HU")
    if scope.modality == "CT" and found.units != "hu":
        return (f"values do not look like CT in HU (1st/99th percentile {found.p1:.0f}/{found.p99:.0f}); "
                f"{made_for} in HU")
    if scope.modality in ("MR", "PET") and not tag and found.units == "hu":
        return f"values look like CT in HU; {made_for}"
    ct = found.units == "hu"
    for rule in REGION_RULES.get(scope.region or "", ()):
        reason = _region_refusal(rule, scope, found, ct=ct)
        if reason:
            return reason
    return None


def _region_refusal(rule: str, scope: ModelScope, found: InputSurvey, *, ct: bool) -> str | None:
    width = found.body_mm[0] if found.body_mm else None
    region = f"the {scope.region}"
    if rule == "skull" and ct and not found.skull:
        return f"no skull (ring of bone around brain) in the field of view; {scope.name} is made for {region}"
    if rule == "not_trunk" and width is not None and width > MAX_HEAD_WIDTH_MM:
        return (f"the body is {width / 10:.0f} cm wide (field of view {_cm(found.fov_mm)}): not a head; "
                f"{scope.name} is made for {region}")
    if rule == "lungs" and ct and found.lung_ml < MIN_LUNG_ML:
        return (f"no lungs in the field of view ({found.lung_ml:.0f} mL of lung); "
                f"{scope.name} is made for {region}")
    if rule == "not_head" and ct and found.skull and width is not None and width < HEAD_WIDTH_MM:
        return (f"this looks like a head (skull, body {width / 10:.0f} cm wide); "
                f"{scope.name} is made for {region}")
    return None


def survey(volume: Volume, *, modality: str | None = None, anatomy: bool = True) -> InputSurvey:
    """Intensity units, field of view and (``anatomy``) body size, skull and lungs of ``volume``."""
    t0 = time.perf_counter()
    small, steps = _subsample(volume)
    units, p1, p99 = classify_units(small.array)
    body_mm, skull_slices, lung_ml = None, 0, 0.0
    if anatomy:
        ras = reorient(small, "RAS")
        hu = ras.array.astype(np.float32) - (HU_SHIFT if units == "hu+1024" else 0)
        body = _body_mask(hu, ct=units != "other", p99=p99)
        body_mm = _body_extent(body, ras.spacing)
        if units == "hu":  # thin bone (temporal squama) survives block-max pooling, not striding
            pooled = _block_any_above(np.asarray(volume.array), BONE_HU, steps)
            bone = reorient(small.with_array(pooled), "RAS")
            skull_slices = _skull_slices(hu, bone.array, ras.spacing)
            lung_ml = _lung_ml(hu, body, ras.spacing)
    return InputSurvey(modality, units, p1, p99, fov_extent_mm(volume), body_mm, skull_slices, lung_ml,
                       time.perf_counter() - t0)


def fov_extent_mm(volume: Volume) -> tuple[float, float, float]:
    """Extent of the grid (voxel centres) along R-L, A-P and S-I in mm."""
    corners = np.array([[i, j, k] for i in (0, volume.shape[0] - 1) for j in (0, volume.shape[1] - 1)
                        for k in (0, volume.shape[2] - 1)], dtype=np.float64)
    xyz = volume.index_to_world(corners)
    return tuple(float(v) for v in xyz.max(axis=0) - xyz.min(axis=0))  # type: ignore[return-value]


# ---- helpers ----------------------------------------------------------------------------------
def _subsample(volume: Volume) -> tuple[Volume, tuple[int, int, int]]:
    """Every n-th voxel along each axis (n: about SURVEY_SPACING_MM), and the steps n."""
    steps = tuple(max(1, int(round(SURVEY_SPACING_MM / s))) for s in volume.spacing)
    array = np.asarray(volume.array)[:: steps[0], :: steps[1], :: steps[2]]
    affine = volume.affine @ np.diag([*steps, 1.0])
    return Volume(array, affine), steps  # type: ignore[return-value]


def _block_any_above(array: np.ndarray, threshold: float, steps) -> np.ndarray:
    """True where any voxel of a steps-sized block exceeds ``threshold`` (the grid of :func:`_subsample`)."""
    mask = array > threshold
    for axis, step in enumerate(steps):
        if step > 1:
            mask = np.logical_or.reduceat(mask, np.arange(0, mask.shape[axis], step), axis=axis)
    return mask


def _body_mask(image: np.ndarray, *, ct: bool, p99: float) -> np.ndarray:
    import cc3d

    mask = image > (BODY_HU if ct else 0.15 * p99)
    if not mask.any():
        return mask
    return cc3d.largest_k(mask, k=1, connectivity=6) > 0


def _body_extent(body: np.ndarray, spacing) -> tuple[float, float] | None:
    if not body.any():
        return None
    extents = []
    for axis in (0, 1):  # RAS: 0 = R-L, 1 = A-P
        others = tuple(a for a in range(3) if a != axis)
        idx = np.flatnonzero(body.any(axis=others))
        extents.append(float((idx[-1] - idx[0] + 1) * spacing[axis]))
    return extents[0], extents[1]


def _skull_slices(hu: np.ndarray, bone: np.ndarray, spacing) -> int:
    """Axial slices where a ring of bone encloses brain-density tissue (a pelvic ring around the
    bladder may count too: the width rules tell a pelvis from a head)."""
    from scipy.ndimage import binary_fill_holes

    pixel_cm2 = spacing[0] * spacing[1] / 100.0
    count = 0
    for k in np.flatnonzero(bone.any(axis=(0, 1))):
        ring = bone[:, :, k]
        inside = binary_fill_holes(ring) & ~ring
        if inside.sum() * pixel_cm2 < MIN_SKULL_HOLE_CM2:
            continue
        median = float(np.median(hu[:, :, k][inside]))
        count += BRAIN_HU[0] <= median <= BRAIN_HU[1]
    return count


def _lung_ml(hu: np.ndarray, body: np.ndarray, spacing) -> float:
    """Lung-density air enclosed by the body on axial slices, in mL."""
    from scipy.ndimage import binary_fill_holes

    lung = np.zeros(body.shape, dtype=bool)
    for k in np.flatnonzero(body.any(axis=(0, 1))):
        inside = binary_fill_holes(body[:, :, k]) & ~body[:, :, k]
        lung[:, :, k] = inside & (hu[:, :, k] >= LUNG_HU[0]) & (hu[:, :, k] <= LUNG_HU[1])
    return float(lung.sum() * np.prod(spacing) / 1000.0)


def _modality_name(tag: str | None) -> str | None:
    """The DICOM Modality as a catalogue modality; None for absent or non-committal tags (OT)."""
    if not tag:
        return None
    tag = tag.upper()
    return {"PT": "PET", "MRI": "MR"}.get(tag, tag) if tag not in ("OT", "") else None


def _cm(extent) -> str:
    return " × ".join(f"{v / 10:.0f}" for v in extent[:2]) + " cm"
