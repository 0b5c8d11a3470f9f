"""Change records: organs (volume, mean intensity) and lesion groups (volume, diameter, doubling time)."""
from __future__ import annotations

import math
from collections.abc import Sequence

from volseg.compare.inputs import Timepoint
from volseg.compare.matching import Group, LesionSet
from volseg.compare.results import LesionMatch, OrganChange
from volseg.reports.model import StructureRow


def organ_changes(before: Timepoint, after: Timepoint, lesion_classes: Sequence[str]) -> list[OrganChange]:
    """One row per structure (not a lesion class) present in either report, in the baseline's order."""
    rows_a = {r.name: r for r in before.report.structures if r.name not in set(lesion_classes)}
    rows_b = {r.name: r for r in after.report.structures if r.name not in set(lesion_classes)}
    names = list(dict.fromkeys([*rows_a, *rows_b]))
    return [_organ(name, rows_a.get(name), rows_b.get(name), before.ref.timepoint, after.ref.timepoint)
            for name in names]


def _organ(name: str, a: StructureRow | None, b: StructureRow | None, ta: int, tb: int) -> OrganChange:
    va, vb = _volume(a), _volume(b)
    ia, ib = _intensity(a), _intensity(b)
    notes = []
    if va is None or vb is None:
        notes.append("absent at baseline" if va is None else "absent at follow-up")
    if (a is not None and a.touches_fov) or (b is not None and b.touches_fov):
        notes.append("cut by the field of view: volumes are lower bounds")
    unit = (a.intensity_unit if a is not None else None) or (b.intensity_unit if b is not None else None)
    return OrganChange(
        name=name, from_timepoint=ta, to_timepoint=tb, volume_ml_before=va, volume_ml_after=vb,
        volume_change_ml=None if va is None or vb is None else vb - va,
        volume_change_percent=percent(va, vb), mean_intensity_before=ia, mean_intensity_after=ib,
        mean_intensity_change=None if ia is None or ib is None else ib - ia, intensity_unit=unit,
        touches_fov_before=bool(a and a.touches_fov), touches_fov_after=bool(b and b.touches_fov),
        note="; ".join(notes) or None,
    )


def _volume(row: StructureRow | None) -> float | None:
    return None if row is None or row.empty else row.volume_ml


def _intensity(row: StructureRow | None) -> float | None:
    if row is None or row.empty:
        return None
    return row.mean_intensity if row.mean_intensity is not None else row.mean_hu


def percent(before: float | None, after: float | None) -> float | None:
    """Relative change in percent; None when either is unknown or the start is zero."""
    if before is None or after is None or before <= 0:
        return None
    return 100.0 * (after - before) / before


def doubling_time(before_ml: float | None, after_ml: float | None,
                  interval_days: float | None) -> tuple[float | None, str | None]:
    """(volume doubling time in days, None) or (None, the reason): Td = t ln 2 / ln(V2 / V1); negative
    when the lesion shrinks."""
    if interval_days is None:
        return None, "interval unknown: the studies record no dates; give --interval-days"
    if not before_ml or not after_ml:
        return None, "needs the lesion at both times"
    if math.isclose(before_ml, after_ml, rel_tol=1e-9):
        return None, "no volume change"
    return interval_days * math.log(2.0) / math.log(after_ml / before_ml), None


def lesion_match(group: Group, before: LesionSet, after: LesionSet, ta: int, tb: int,
                 interval_days: float | None) -> LesionMatch:
    """The change record of one group of corresponding lesions."""
    rows_a = [before.rows[i] for i in group.before]
    rows_b = [after.rows[i] for i in group.after]
    first = (rows_a or rows_b)[0]
    va = sum(r.volume_ml for r in rows_a) if rows_a else None
    vb = sum(r.volume_ml for r in rows_b) if rows_b else None
    da = sum(r.long_axis_mm for r in rows_a) if rows_a else None
    db = sum(r.long_axis_mm for r in rows_b) if rows_b else None
    dt, note = doubling_time(va, vb, interval_days) if rows_a and rows_b else (None, f"{group.status} lesion")
    return LesionMatch(
        from_timepoint=ta, to_timepoint=tb, status=group.status,
        before_ids=list(group.before), after_ids=list(group.after), class_name=first.class_name, kind=first.kind,
        method=group.method, dice=group.dice, centroid_distance_mm=group.distance_mm,
        volume_ml_before=va, volume_ml_after=vb,
        volume_change_ml=None if va is None or vb is None else vb - va, volume_change_percent=percent(va, vb),
        longest_diameter_mm_before=da, longest_diameter_mm_after=db, diameter_change_percent=percent(da, db),
        interval_days=interval_days, doubling_time_days=dt, doubling_time_note=note,
    )
