"""Lymph-node size classes by short axis, and a per-class nodal summary.

Short-axis thresholds (RECIST 1.1, Eisenhauer et al., Eur J Cancer 2009;45:228-247, section 3.1.2
and Schwartz et al., "Evaluation of lymph nodes with RECIST 1.1", Eur J Cancer 2009;45:261-267):

* short axis < 10 mm: not pathological;
* 10 mm <= short axis < 15 mm: pathological (enlarged), non-measurable (non-target);
* short axis >= 15 mm: pathological and measurable (may be a target lesion).
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

SHORT_AXIS_CLASSES = ("<10 mm", "10-<15 mm", ">=15 mm")
ENLARGED_MM = 10.0
MEASURABLE_MM = 15.0


def short_axis_class(short_axis_mm: float | None) -> str | None:
    """'<10 mm', '10-<15 mm' or '>=15 mm' (None when no short axis was measured)."""
    if short_axis_mm is None:
        return None
    if short_axis_mm < ENLARGED_MM:
        return SHORT_AXIS_CLASSES[0]
    if short_axis_mm < MEASURABLE_MM:
        return SHORT_AXIS_CLASSES[1]
    return SHORT_AXIS_CLASSES[2]


@dataclass(frozen=True)
class NodalSummary:
    node_count: int
    total_volume_ml: float
    counts_by_class: dict[str, int] = field(default_factory=dict)


def nodal_summary(nodes: Iterable[tuple[float | None, float]]) -> NodalSummary:
    """Counts per short-axis class and total volume of nodes given as (short_axis_mm, volume_ml)."""
    counts = {c: 0 for c in SHORT_AXIS_CLASSES}
    total = 0.0
    n = 0
    for short_axis_mm, volume_ml in nodes:
        n += 1
        total += float(volume_ml)
        cls = short_axis_class(short_axis_mm)
        if cls is not None:
            counts[cls] += 1
    return NodalSummary(node_count=n, total_volume_ml=total, counts_by_class=counts)
