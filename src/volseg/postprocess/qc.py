"""Quality-control flags for every structure of a label map.

Flags (``QC_FLAGS``):

* ``empty``: the structure has no voxel.
* ``truncated``: it reaches the edge of the scanned field of view (array boundary or the padding
  outside a CT's reconstruction circle): its volume is a lower bound. Never for the body and
  leftover-tissue classes (:data:`FOV_EXEMPT_CLASSES`): a scan is a slab of the body, so they
  always reach the edge and the flag would say nothing.
* ``fragmented``: more connected components than the structure has anatomically
  (:func:`expected_max_components`; unlimited for bowel, lesions, nodes, tissue classes, ...).
* ``laterality_mismatch``: a paired structure named left (right) whose centroid lies on the
  patient's right (left) of the midline (RAS: +x is the patient's right). See :func:`midline`.
* ``volume_out_of_range``: the volume lies outside the cited adult reference range of that organ
  (:data:`REFERENCE_VOLUMES_ML`). A truncated structure is only flagged when too large (its volume
  is a lower bound). Organs without a cited range are never flagged.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from volseg.postprocess.measure import StructureMeasurement

QC_FLAGS = ("truncated", "empty", "fragmented", "laterality_mismatch", "volume_out_of_range")
ANATOMICAL_MARGIN_MM = 5.0  # a centroid must lie this far across an anatomical midline to be flagged
FOV_MARGIN_MM = 20.0  # ... and this far across the field-of-view centre (a cruder reference)

#: the body and leftover-tissue classes (TotalSegmentator's body and tissue_types tasks, volseg's
#: classic-ct): they always reach the edge of a scan, so touching it does not make them truncated
FOV_EXEMPT_CLASSES: frozenset[str] = frozenset({
    "body", "body_trunc", "body_extremities", "body_outline", "skin", "subcutaneous_fat", "torso_fat",
    "intermuscular_fat", "skeletal_muscle",
})


def is_fov_exempt(name: str) -> bool:
    """True for a class whose touching the field of view is no truncation (see FOV_EXEMPT_CLASSES)."""
    return name.lower() in FOV_EXEMPT_CLASSES


# (name pattern, expected maximum number of connected components); first match wins; None =
# any number. Names follow TotalSegmentator v2 and volseg's built-in classes.
_EXPECTED_COMPONENTS: tuple[tuple[str, int | None], ...] = (
    (r"tumou?r|lesion|nodul|metasta|cyst|lymph|^ln($|_)|_ln$", None),
    (r"^(colon|small_bowel|duodenum|bowel|intestin\w*)$", None),
    (r"pulmonary_vein|lung_vessels|lung_arter|lung_vein|airway|bronch", None),
    # classic-ct's "body" is the tissue left over once the other classes are taken: many pieces
    (r"fat|muscle|^bone$|costal_cartilages|^body_extremities$|^body$", None),
    (r"^thyroid(_gland)?$", 2),  # two lobes; the isthmus may be thin or absent
    ((r"^(liver|spleen|pancreas|gallbladder|stomach|heart|brain|urinary_bladder|prostate|"
      r"esophagus|trachea|spinal_cord|sternum|sacrum|skull|body_trunc)$"), 1),
    ((r"^(kidney|adrenal_gland|lung|humerus|femur|hip|scapula|clavicula|gluteus_\w+|iliopsoas|"
      r"autochthon)_(left|right)$"), 1),
    (r"^lung_(upper|middle|lower)_lobe_(left|right)$", 1),
    (r"^(vertebrae_\w+|rib_(left|right)_\d+)$", 1),
    ((r"^(aorta|inferior_vena_cava|superior_vena_cava|portal_vein_and_splenic_vein|"
      r"pulmonary_artery|brachiocephalic_trunk|atrial_appendage_left)$"), 1),
    ((r"^(iliac_artery|iliac_vena|brachiocephalic_vein|subclavian_artery|"
      r"common_carotid_artery)_(left|right)$"), 1),
)


@dataclass(frozen=True)
class ReferenceRange:
    low_ml: float | None
    high_ml: float | None
    source: str


# Adult reference volumes (mL) with their sources. Only organs with a citable range are listed.
REFERENCE_VOLUMES_ML: dict[str, ReferenceRange] = {
    # Kim DW, Ha J, Lee SS et al., "Population-based and personalized reference intervals for liver
    # and spleen volumes in healthy individuals and those with viral hepatitis", Radiology: central
    # 95% of 2,989 healthy adult liver donors (CT volumetry): liver 824.5-1700.0 cm3, spleen
    # 81.1-322.0 cm3. (Young donors, mean age 30: older or larger adults may exceed the top.)
    "liver": ReferenceRange(824.5, 1700.0, "Kim et al., Radiology (central 95% of healthy donors, CT)"),
    "spleen": ReferenceRange(81.1, 322.0, "Kim et al., Radiology (central 95% of healthy donors, CT)"),
    # Saisho Y et al., "Pancreas volumes in humans from birth to age one hundred taking into account
    # sex, obesity, and presence of type-2 diabetes", Clin Anat 2007;20(8):933-942: age 20-60
    # plateau 72.4 +/- 25.8 cm3 (CT, 1,721 non-diabetic adults); range = mean +/- 2 SD.
    "pancreas": ReferenceRange(20.8, 124.0, "Saisho et al., Clin Anat 2007 (mean ± 2 SD, CT)"),
    # Lower limit only: 5th percentile of right kidney volume, women (the lower sex), 99 mL, in the
    # population-based MRI study "Age- and sex-specific reference values for renal volume and
    # association with risk factors for chronic kidney disease in a general population",
    # J Clin Med 2024;13(3):769 (SHIP, 1,815 adults). No upper limit is cited.
    "kidney_right": ReferenceRange(99.0, None, "J Clin Med 2024;13:769 (5th percentile, MRI)"),
    "kidney_left": ReferenceRange(99.0, None, "J Clin Med 2024;13:769 (5th percentile, MRI)"),
}


@dataclass(frozen=True)
class QCResult:
    flags: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Midline:
    x_mm: float
    source: str
    margin_mm: float


def expected_max_components(name: str) -> int | None:
    """Anatomically expected maximum number of components (None: any number or unknown)."""
    for pattern, limit in _EXPECTED_COMPONENTS:
        if re.search(pattern, name, re.IGNORECASE):
            return limit
    return None


def side_of(name: str) -> str | None:
    """'left' or 'right' when the name says so as a word (kidney_left, rib_left_3), else None."""
    words = re.split(r"[_\-. ]+", name.lower())
    sides = {w for w in words if w in ("left", "right")}
    return sides.pop() if len(sides) == 1 else None


_SPINE = re.compile(r"^(vertebrae_\w+|spinal_cord|sacrum|spine|vertebra\w*)$", re.IGNORECASE)
_BODY = re.compile(r"^(body|body_trunc|skin|body_outline)$", re.IGNORECASE)


def midline(measurements: Sequence[StructureMeasurement], *,
            fov_centre_ras_mm: Sequence[float] | None = None) -> Midline | None:
    """The patient's sagittal midline x (RAS mm), from the best reference present.

    In order: the spine (volume-weighted centroid of vertebrae, spinal cord, sacrum); the body
    outline; the mean of the midpoints between paired left/right structures (a systematic L/R swap
    still shows: each side lands on the wrong side of the pairs' midpoint); the centre of the field
    of view (scanners centre the patient; a cruder reference, so a larger margin applies). x = 0 is
    never assumed: scanner coordinates need not place the patient there.
    """
    present = [m for m in measurements if not m.empty and m.centroid_ras_mm is not None]
    for pattern, source in ((_SPINE, "spine"), (_BODY, "body")):
        chosen = [m for m in present if pattern.match(m.name)]
        if chosen:
            weights = np.array([m.volume_ml for m in chosen])
            xs = np.array([_centroid_x(m) for m in chosen])
            return Midline(float(xs @ weights / weights.sum()), source, ANATOMICAL_MARGIN_MM)
    pairs = _pair_midpoints(present)
    if pairs:
        return Midline(float(np.mean(pairs)), "paired structures", ANATOMICAL_MARGIN_MM)
    if fov_centre_ras_mm is not None:
        return Midline(float(fov_centre_ras_mm[0]), "field-of-view centre", FOV_MARGIN_MM)
    return None


def _pair_midpoints(present: Sequence[StructureMeasurement]) -> list[float]:
    by_name = {m.name.lower(): m for m in present}
    mids = []
    for name, m in by_name.items():
        if side_of(name) != "left":
            continue
        other = by_name.get(re.sub(r"(^|[_\-. ])left($|[_\-. ])", r"\1right\2", name))
        if other is not None:
            mids.append(0.5 * (_centroid_x(m) + _centroid_x(other)))
    return mids


def _centroid_x(m: StructureMeasurement) -> float:
    """The centroid's R coordinate of a structure already filtered to have one."""
    if m.centroid_ras_mm is None:
        raise RuntimeError(f"midline: structure {m.name!r} has no centroid")
    return m.centroid_ras_mm[0]


def qc_structures(measurements: Sequence[StructureMeasurement], *,
                  fov_centre_ras_mm: Sequence[float] | None = None) -> dict[int, QCResult]:
    """QC flags and human-readable notes for every measured structure, by label."""
    line = midline(measurements, fov_centre_ras_mm=fov_centre_ras_mm)
    return {m.label: qc_structure(m, line) for m in measurements}


def qc_structure(m: StructureMeasurement, line: Midline | None) -> QCResult:
    flags: list[str] = []
    notes: list[str] = []
    if m.empty:
        return QCResult(("empty",), (f"{m.name}: no voxel in this label map",))
    if m.touches_fov and not is_fov_exempt(m.name):
        flags.append("truncated")
        notes.append(f"{m.name} reaches the edge of the field of view; volume_ml is a lower bound")
    limit = expected_max_components(m.name)
    if limit is not None and m.n_components > limit:
        flags.append("fragmented")
        share = 100.0 * m.largest_component_ml / m.volume_ml if m.volume_ml > 0 else 0.0
        notes.append(f"{m.name} has {m.n_components} connected components (expected at most {limit}); "
                     f"the largest holds {share:.0f}% of the volume")
    mismatch = _laterality(m, line)
    if mismatch:
        flags.append("laterality_mismatch")
        notes.append(mismatch)
    out_of_range = _volume_check(m)
    if out_of_range:
        flags.append("volume_out_of_range")
        notes.append(out_of_range)
    return QCResult(tuple(flags), tuple(notes))


def _laterality(m: StructureMeasurement, line: Midline | None) -> str | None:
    side = side_of(m.name)
    if side is None or line is None or m.centroid_ras_mm is None:
        return None
    offset = m.centroid_ras_mm[0] - line.x_mm  # > 0: patient's right
    wrong = offset > line.margin_mm if side == "left" else offset < -line.margin_mm
    if not wrong:
        return None
    other = "right" if side == "left" else "left"
    return (f"{m.name}: centroid {abs(offset):.0f} mm to the patient's {other} of the midline "
            f"(from the {line.source})")


def _volume_check(m: StructureMeasurement) -> str | None:
    ref = REFERENCE_VOLUMES_ML.get(m.name.lower())
    if ref is None:
        return None
    if ref.high_ml is not None and m.volume_ml > ref.high_ml:
        return f"{m.name}: {m.volume_ml:.1f} mL above the adult reference {_range(ref)} ({ref.source})"
    if ref.low_ml is not None and m.volume_ml < ref.low_ml and not m.touches_fov:
        return f"{m.name}: {m.volume_ml:.1f} mL below the adult reference {_range(ref)} ({ref.source})"
    return None


def _range(ref: ReferenceRange) -> str:
    if ref.low_ml is not None and ref.high_ml is not None:
        return f"{ref.low_ml:g}-{ref.high_ml:g} mL"
    return f">= {ref.low_ml:g} mL" if ref.low_ml is not None else f"<= {ref.high_ml:g} mL"
