"""Tumour burden: lesion counts, total volume and the RECIST 1.1 baseline target sum.

RECIST 1.1 (Eisenhauer et al., Eur J Cancer 2009;45:228-247), as applied here:

* Measurable non-nodal lesion: longest axial diameter >= 10 mm when the slice thickness is
  <= 5 mm, else >= twice the slice thickness (section 3.1.1). The slice thickness is taken as the
  spacing along the axial array axis.
* Measurable (target-eligible) lymph node: short axis >= 15 mm (section 3.1.1); nodes are
  measured by their short axis in the sum.
* Targets: up to 5 in total, at most 2 per organ (section 4.2), chosen by size: the largest first
  (longest diameter for lesions, short axis for nodes). "Organ" is the host organ when an organ
  segmentation gives it, else the lesion's class; paired organs (lungs, kidneys, ...) and all
  lymph nodes each count as one organ (EORTC RECIST FAQ, "Paired organs", recist.eortc.org).
* Lesions cut by the field of view (``touches_fov``: at the array edge or the CT's padding) are
  not chosen as targets: their diameters are lower bounds, not "accurately measured" (section
  3.1.1); they stay in the lesion counts and volumes, flagged in lesions.csv.
* Target sum = sum of the targets' longest diameters (short axes for nodes).

The selection is the mechanical "largest measurable lesions" rule; a reader also weighs how
reproducibly a lesion can be measured, which no label map encodes.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from volseg.postprocess.lymph_nodes import MEASURABLE_MM

MAX_TARGETS = 5
MAX_PER_ORGAN = 2
MIN_LESION_MM = 10.0
THICK_SLICE_MM = 5.0
ALL = "all"


class _Lesion(Protocol):
    # read-only members, so that frozen dataclasses (InstanceMeasurement) match
    @property
    def instance_id(self) -> str: ...
    @property
    def class_name(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def volume_ml(self) -> float: ...
    @property
    def long_axis_mm(self) -> float: ...
    @property
    def short_axis_mm(self) -> float: ...
    @property
    def host_organ(self) -> str | None: ...


@dataclass(frozen=True)
class Burden:
    class_name: str  # a lesion class, or "all"
    lesion_count: int
    total_volume_ml: float
    recist_target_sum_mm: float
    n_recist_targets: int


def recist_diameter_mm(lesion: _Lesion) -> float:
    """The diameter RECIST sums: short axis for lymph nodes, longest diameter otherwise."""
    return lesion.short_axis_mm if lesion.kind == "lymph_node" else lesion.long_axis_mm


def is_measurable(lesion: _Lesion, *, slice_thickness_mm: float) -> bool:
    if lesion.kind == "lymph_node":
        return lesion.short_axis_mm >= MEASURABLE_MM
    minimum = MIN_LESION_MM if slice_thickness_mm <= THICK_SLICE_MM else 2.0 * slice_thickness_mm
    return lesion.long_axis_mm >= minimum


def organ_key(lesion: _Lesion) -> str:
    """The 'organ' of the two-per-organ rule: lymph nodes are one organ; paired organs are one."""
    if lesion.kind == "lymph_node":
        return "lymph_nodes"
    name = (lesion.host_organ or lesion.class_name).lower()
    if name.startswith("lung"):
        return "lung"
    return re.sub(r"(^|_)(left|right)(?=_|$)", "", name).strip("_") or name


def select_targets(lesions: Sequence[_Lesion], *, slice_thickness_mm: float,
                   max_targets: int = MAX_TARGETS, max_per_organ: int = MAX_PER_ORGAN) -> list[str]:
    """Instance ids of the RECIST target lesions, largest first."""
    candidates = [les for les in lesions if is_measurable(les, slice_thickness_mm=slice_thickness_mm)
                  and not getattr(les, "touches_fov", False)]
    candidates.sort(key=lambda les: (-recist_diameter_mm(les), les.instance_id))
    chosen: list[str] = []
    per_organ: dict[str, int] = {}
    for les in candidates:
        if len(chosen) == max_targets:
            break
        key = organ_key(les)
        if per_organ.get(key, 0) >= max_per_organ:
            continue
        per_organ[key] = per_organ.get(key, 0) + 1
        chosen.append(les.instance_id)
    return chosen


def tumour_burden(lesions: Sequence[_Lesion], targets: Sequence[str],
                  classes: Sequence[str] = ()) -> list[Burden]:
    """One row per lesion class (those in ``classes`` first, even when empty) and one for "all"."""
    names = list(dict.fromkeys([*classes, *(les.class_name for les in lesions)]))
    target_set = set(targets)
    rows = [_burden(name, [les for les in lesions if les.class_name == name], target_set)
            for name in names]
    rows.append(_burden(ALL, list(lesions), target_set))
    return rows


def _burden(name: str, lesions: Sequence[_Lesion], targets: set[str]) -> Burden:
    chosen = [les for les in lesions if les.instance_id in targets]
    return Burden(
        class_name=name,
        lesion_count=len(lesions),
        total_volume_ml=float(sum(les.volume_ml for les in lesions)),
        recist_target_sum_mm=float(sum(recist_diameter_mm(les) for les in chosen)),
        n_recist_targets=len(chosen),
    )
