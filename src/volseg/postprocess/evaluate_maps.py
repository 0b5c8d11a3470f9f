"""Scores of a predicted label map against a reference label map on one grid, structure by structure.

Structures are matched by name when both maps have names (a structure missing from the
prediction scores as empty there), else by label index. Lesion classes (the naming rule of
:func:`volseg.postprocess.instances.default_instance_classes`, or those named) also get lesion-wise
detection, airway classes (:data:`volseg.postprocess.clinical.AIRWAY_NAME`) tree detection.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from volseg.postprocess.evaluate import (
    DEFAULT_MIN_OVERLAP,
    LesionDetection,
    detect_lesions,
    overlap,
    spacing_of,
)
from volseg.postprocess.evaluate_airway import AirwayDetection, detect_airway
from volseg.postprocess.instances import default_instance_classes


@dataclass(frozen=True)
class StructurePair:
    name: str
    pred_label: int | None  # None: the prediction has no such structure (scored as empty)
    ref_label: int | None


@dataclass(frozen=True)
class StructureScore:
    structure: str
    pred_label: int | None
    ref_label: int | None
    pred_volume_ml: float
    ref_volume_ml: float
    dice: float
    hd95_mm: float  # NaN when exactly one mask is empty
    assd_mm: float
    lesions: LesionDetection | None = None
    airway: AirwayDetection | None = None


def pair_structures(pred_names: Mapping[int, str] | None, ref_names: Mapping[int, str] | None,
                    pred_present: Sequence[int], ref_present: Sequence[int]) -> list[StructurePair]:
    """Reference structures (by name when both tables exist, else by index) with their predicted labels."""
    if pred_names and ref_names:
        by_name = {n: i for i, n in pred_names.items()}
        pairs = [StructurePair(n, by_name.get(n), i) for i, n in sorted(ref_names.items())]
        extra = [StructurePair(n, i, None) for i, n in sorted(pred_names.items())
                 if n not in set(ref_names.values()) and i in set(pred_present)]
        return pairs + extra
    table = ref_names or pred_names or {}
    indices = sorted(set(table) | set(pred_present) | set(ref_present))
    return [StructurePair(table.get(i, f"label_{i}"), i, i) for i in indices if i != 0]


def score_maps(pred: np.ndarray, ref: np.ndarray, affine: np.ndarray, pairs: Sequence[StructurePair], *,
               lesion_classes: Sequence[str] | None = None, min_overlap: float = DEFAULT_MIN_OVERLAP,
               ) -> list[StructureScore]:
    """One :class:`StructureScore` per pair; lesion and airway classes get their detection scores."""
    from volseg.postprocess.clinical import AIRWAY_NAME

    spacing = spacing_of(affine)
    voxel_ml = abs(float(np.linalg.det(np.asarray(affine, dtype=np.float64)[:3, :3]))) / 1000.0
    names = [p.name for p in pairs]
    lesions = set(lesion_classes if lesion_classes is not None else default_instance_classes(names))
    out = []
    for pair in pairs:
        p = pred == pair.pred_label if pair.pred_label is not None else np.zeros(pred.shape, bool)
        r = ref == pair.ref_label if pair.ref_label is not None else np.zeros(ref.shape, bool)
        o = overlap(p, r, spacing)
        lesion = detect_lesions(p, r, min_overlap=min_overlap) if pair.name in lesions else None
        airway = detect_airway(p, r, affine) if AIRWAY_NAME.match(pair.name) and r.any() else None
        out.append(StructureScore(pair.name, pair.pred_label, pair.ref_label, o.pred_voxels * voxel_ml,
                                  o.ref_voxels * voxel_ml, o.dice, o.hd95_mm, o.assd_mm, lesion, airway))
    return out
