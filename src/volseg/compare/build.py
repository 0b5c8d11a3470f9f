"""Build the :class:`~volseg.compare.results.Comparison` of time points already read."""
from __future__ import annotations

import datetime as _dt
import logging
from collections.abc import Sequence

import numpy as np

from volseg import __version__
from volseg.compare.changes import lesion_match, organ_changes
from volseg.compare.geometry import apply
from volseg.compare.inputs import Timepoint
from volseg.compare.matching import LesionSet, lesion_set, match_lesions
from volseg.compare.options import CompareOptions
from volseg.compare.recist import Track, assess, follow
from volseg.compare.register import register
from volseg.compare.results import CompareSettings, Comparison, LesionMeasurement, Registration, StudyRef
from volseg.postprocess.burden import is_measurable, recist_diameter_mm
from volseg.postprocess.morphology import axial_axis

log = logging.getLogger(__name__)


def build_comparison(points: Sequence[Timepoint], options: CompareOptions, *,
                     days: Sequence[float | None] | None = None, days_source: str | None = None) -> Comparison:
    """Register consecutive time points, match their lesions, measure the changes and assess RECIST.

    ``days``: days from the baseline per time point (None where unknown), when not from the studies' dates.
    """
    from volseg.compare.inputs import check_same_model

    check_same_model(list(points))
    lesion_classes = list(dict.fromkeys(c for p in points for c in p.report.lesion_classes))
    warnings: list[str] = []
    refs = _with_days(points, days, days_source, warnings)
    registrations = [register(a, b, options=options, lesion_classes=lesion_classes)
                     for a, b in zip(points, points[1:])]
    for reg in registrations:
        if reg.warning:
            warnings.append(f"T{reg.from_timepoint}→T{reg.to_timepoint}: {reg.warning}")
    sets = [lesion_set(p) for p in points]
    groups = [match_lesions(sets[t], sets[t + 1], np.asarray(reg.matrix_ras_mm), min_dice=options.min_match_dice,
                            tolerance_mm=options.match_tolerance_mm) for t, reg in enumerate(registrations)]
    matches = [lesion_match(g, sets[t], sets[t + 1], t, t + 1, _interval(refs, t)) for t, gs in enumerate(groups)
               for g in gs]
    organs = [row for a, b in zip(points, points[1:]) for row in organ_changes(a, b, lesion_classes)]
    tracks = follow(sets, groups) if any(s.ids for s in sets) or lesion_classes else []
    recist = assess(sets, tracks) if lesion_classes else None
    return Comparison(
        volseg_version=__version__, created_utc=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        studies=refs, registrations=registrations, organs=organs,
        lesions=_measurements(points, sets, tracks, registrations), matches=matches, recist=recist,
        settings=CompareSettings(match_tolerance_mm=options.match_tolerance_mm, min_match_dice=options.min_match_dice,
                                 poor_residual_mm=options.poor_residual_mm, poor_dice=options.poor_dice,
                                 registration=options.registration),
        warnings=warnings,
    )


def _with_days(points: Sequence[Timepoint], days, source, warnings: list[str]) -> list[StudyRef]:
    """The studies' refs with days_from_baseline: from their DICOM dates, else ``days``."""
    dates = [p.acquired for p in points]
    if all(d is not None for d in dates):
        base = dates[0]
        values: list[float | None] = [float((d - base).days) for d in dates]  # type: ignore[operator]
        src: str | None = "dicom"
        if any(b is not None and a is not None and b <= a for a, b in zip(values, values[1:])):
            warnings.append("the studies' dates are not in time order: intervals left unknown")
            values, src = [None] * len(points), None
    elif days is not None:
        values, src = list(days), source
    else:
        values, src = [None] * len(points), None
        warnings.append("interval between the studies unknown (no dates recorded): doubling times left empty; "
                        "give --interval-days")
    return [p.ref.model_copy(update={"days_from_baseline": v, "days_source": src if v is not None else None})
            for p, v in zip(points, values)]


def _interval(refs: Sequence[StudyRef], t: int) -> float | None:
    a, b = refs[t].days_from_baseline, refs[t + 1].days_from_baseline
    return None if a is None or b is None or b <= a else b - a


def _measurements(points, sets: Sequence[LesionSet], tracks: Sequence[Track],
                  registrations: Sequence[Registration]) -> list[LesionMeasurement]:
    to_baseline = [np.eye(4)]
    for reg in registrations:  # a point of T(t+1) → T(t) → ... → T0
        to_baseline.append(to_baseline[-1] @ np.linalg.inv(np.asarray(reg.matrix_ras_mm)))
    role = {(t, i): (tr.role, tr.track_id) for tr in tracks for t, ids in enumerate(tr.ids) for i in ids}
    out = []
    for t, (point, lesions) in enumerate(zip(points, sets)):
        slice_mm = float(np.linalg.norm(point.labels.affine[:3, axial_axis(point.labels.affine)]))
        for lesion_id in lesions.ids:
            row = lesions.rows[lesion_id]
            kind, track = role.get((t, lesion_id), ("untracked", None))
            out.append(LesionMeasurement(
                timepoint=t, lesion_id=lesion_id, class_name=row.class_name, kind=row.kind, volume_ml=row.volume_ml,
                longest_diameter_mm=row.long_axis_mm, short_axis_mm=row.short_axis_mm,
                recist_diameter_mm=recist_diameter_mm(row), centroid_mm=row.centroid_ras_mm,
                centroid_baseline_mm=tuple(float(v) for v in apply(to_baseline[t], row.centroid_ras_mm)),
                host_organ=row.host_organ, touches_fov=row.touches_fov,
                measurable=is_measurable(row, slice_thickness_mm=slice_mm), recist_role=kind,
                track_id=track,
            ))
    return out
