"""RECIST 1.1 response over time points (Eisenhauer et al., Eur J Cancer 2009;45:228-247).

* **Targets** are the baseline report's RECIST targets (:mod:`volseg.postprocess.burden`: measurable,
  at most 5, at most 2 per organ, largest first); the other baseline lesions are non-targets.
* A lesion is **followed** through the matches of consecutive time points: at each time it is the set of
  lesions its group leads to. A split lesion counts as the sum of its pieces; lesions that merged give
  the merged lesion's diameter to the first target (largest at baseline) and 0 to the others; a lesion
  gone counts 0 mm. Lymph nodes count by their short axis.
* **Sums and nadir**: the target sum at each time; the nadir is the smallest sum before that time
  (baseline included).
* **Category** at each follow-up, the first rule that applies: PD when a new lesion appeared (since the
  baseline), or the sum grew by >= 20 % and >= 5 mm over the nadir; CR when every non-nodal target is
  gone and every target node is < 10 mm short axis (with non-target lesions still present: PR, "non-CR/
  non-PD" non-targets); PR when the sum fell by >= 30 % from the baseline; else SD. Without targets at
  baseline the non-targets decide (PD by a new lesion; CR when all are gone; else SD, "non-CR/non-PD");
  without any lesion at baseline: NE unless a new lesion appears.
* Not judged: unequivocal progression of non-target disease and lesions too small to measure; a new
  lesion is any new connected component of a lesion class (no minimum size), as the label map says.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from volseg.compare.matching import Group, LesionSet
from volseg.compare.results import (
    Category,
    RecistAssessment,
    RecistNode,
    RecistTarget,
    RecistTimepoint,
)
from volseg.postprocess.burden import organ_key, recist_diameter_mm
from volseg.postprocess.lymph_nodes import ENLARGED_MM as NORMAL_MM

PD_PERCENT = 20.0
PD_MM = 5.0
PR_PERCENT = 30.0


@dataclass(frozen=True)
class Track:
    """One lesion followed over time: its id (baseline id, or 'T<n>:<id>' when new) and ids per time."""

    track_id: str
    role: str  # target | non_target | new
    ids: tuple[tuple[str, ...], ...]  # per time point (empty before it appeared and when gone)
    start: int


def follow(sets: Sequence[LesionSet], groups: Sequence[Sequence[Group]]) -> list[Track]:
    """Tracks of every baseline lesion (targets first, largest first) and of every new lesion."""
    base = sets[0]
    targets = [i for i in base.ids if base.rows[i].recist_target]
    targets.sort(key=lambda i: -recist_diameter_mm(base.rows[i]))
    others = [i for i in base.ids if i not in set(targets)]
    tracks = [_track(i, "target" if i in targets else "non_target", 0, groups, len(sets))
              for i in (*targets, *others)]
    for t, interval in enumerate(groups, start=1):
        for group in interval:
            if group.status == "new":
                tracks.extend(_track(i, "new", t, groups, len(sets)) for i in group.after)
    return tracks


def _track(lesion_id: str, role: str, start: int, groups: Sequence[Sequence[Group]], n: int) -> Track:
    ids: list[tuple[str, ...]] = [()] * start + [(lesion_id,)]
    for t in range(start + 1, n):
        now = set(ids[-1])
        ids.append(tuple(i for g in groups[t - 1] if now & set(g.before) for i in g.after))
    name = lesion_id if start == 0 else f"T{start}:{lesion_id}"
    return Track(name, role, tuple(ids), start)


def assess(sets: Sequence[LesionSet], tracks: Sequence[Track]) -> RecistAssessment:
    """The RECIST 1.1 assessment over all time points."""
    n = len(sets)
    targets = [tr for tr in tracks if tr.role == "target"]
    diameters = _target_diameters(sets, targets)
    sums = [sum(d[t] for d in diameters) for t in range(n)]
    points = [RecistTimepoint(timepoint=0, sum_mm=sums[0])]
    for t in range(1, n):
        points.append(_timepoint(t, sums, sets, tracks, diameters))
    last = points[-1]
    nadir = min(range(n - 1), key=lambda t: (sums[t], t))
    base = sets[0]
    return RecistAssessment(
        targets=[_target(tr, base, sets, d) for tr, d in zip(targets, diameters)],
        non_target_ids=[tr.track_id for tr in tracks if tr.role == "non_target"],
        new_lesion_ids=[tr.track_id for tr in tracks if tr.role == "new"],
        lymph_nodes=_nodes(sets, tracks),
        timepoints=points, baseline_sum_mm=sums[0], nadir_sum_mm=sums[nadir], nadir_timepoint=nadir,
        category=last.category or "NE", rule=last.rule or "",
        notes=["unequivocal progression of non-target disease is not judged automatically; a new lesion is "
               "any new connected component of a lesion class"],
    )


def _target_diameters(sets: Sequence[LesionSet], targets: Sequence[Track]) -> list[list[float]]:
    """Each target's RECIST diameter per time point; a lesion claimed by several targets (merged) counts
    for the first one only."""
    out = [[0.0] * len(sets) for _ in targets]
    for t, lesions in enumerate(sets):
        claimed: set[str] = set()
        for k, track in enumerate(targets):
            mine = [i for i in track.ids[t] if i not in claimed]
            claimed.update(mine)
            out[k][t] = float(sum(recist_diameter_mm(lesions.rows[i]) for i in mine))
    return out


def _timepoint(t: int, sums: Sequence[float], sets, tracks: Sequence[Track], diameters) -> RecistTimepoint:
    nadir_t = min(range(t), key=lambda s: (sums[s], s))
    nadir = sums[nadir_t]
    new_now = [tr.track_id for tr in tracks if tr.role == "new" and tr.start == t]
    new_since = [tr.track_id for tr in tracks if tr.role == "new" and tr.start <= t]
    category, rule = _category(t, sums, nadir, new_since, sets, tracks, diameters)
    return RecistTimepoint(
        timepoint=t, sum_mm=sums[t], change_from_baseline_percent=_pct(sums[0], sums[t]), nadir_sum_mm=nadir,
        nadir_timepoint=nadir_t, change_from_nadir_percent=_pct(nadir, sums[t]), change_from_nadir_mm=sums[t] - nadir,
        new_lesion_ids=new_now, category=category, rule=rule,
    )


def _category(t, sums, nadir, new_since, sets, tracks, diameters) -> tuple[Category, str]:
    targets = [tr for tr in tracks if tr.role == "target"]
    non_targets = [tr for tr in tracks if tr.role == "non_target"]
    if new_since:
        return "PD", f"new lesion(s) since the baseline: {', '.join(new_since)}"
    if not targets and not non_targets:
        return "NE", "no lesion at baseline and none new: no response to assess"
    non_target_gone = all(_gone(tr, t, sets) for tr in non_targets)
    if not targets:
        if non_target_gone:
            return "CR", "no target lesions; every non-target lesion gone (nodes < 10 mm short axis)"
        return "SD", "no target lesions; non-target lesions persist (non-CR/non-PD)"
    grown = sums[t] - nadir
    if grown >= PD_MM and (nadir == 0 or 100.0 * grown / nadir >= PD_PERCENT):
        return "PD", (f"sum {sums[t]:.1f} mm is {grown:.1f} mm (>= {PD_MM:g} mm) and "
                      f"{_fmt_pct(nadir, sums[t])} (>= {PD_PERCENT:g} %) over the nadir {nadir:.1f} mm")
    if all(_gone(tr, t, sets, diameter=d[t]) for tr, d in zip(targets, diameters)):
        if non_target_gone:
            return "CR", "every target lesion gone and every target node < 10 mm short axis; no non-target left"
        return "PR", "target lesions in complete response but non-target lesions persist (non-CR/non-PD)"
    if sums[0] > 0 and 100.0 * (sums[0] - sums[t]) / sums[0] >= PR_PERCENT:
        return "PR", (f"sum {sums[t]:.1f} mm is {100.0 * (sums[0] - sums[t]) / sums[0]:.1f} % (>= {PR_PERCENT:g} %) "
                      f"below the baseline sum {sums[0]:.1f} mm")
    return "SD", (f"sum {sums[t]:.1f} mm: {_fmt_pct(sums[0], sums[t])} from the baseline, {_fmt_pct(nadir, sums[t])} "
                  f"from the nadir {nadir:.1f} mm (neither PR nor PD)")


def _gone(track: Track, t: int, sets, *, diameter: float | None = None) -> bool:
    """A lesion gone (0 mm) or a lymph node < 10 mm short axis at time ``t``."""
    rows = [sets[t].rows[i] for i in track.ids[t]]
    if not rows:
        return True
    if all(r.kind == "lymph_node" for r in rows):
        return max(r.short_axis_mm for r in rows) < NORMAL_MM
    return diameter == 0.0 if diameter is not None else False


def _target(track: Track, base: LesionSet, sets, diameters: list[float]) -> RecistTarget:
    row = base.rows[track.track_id]
    return RecistTarget(
        lesion_id=track.track_id, class_name=row.class_name, kind=row.kind, organ=organ_key(row),
        measure="short_axis" if row.kind == "lymph_node" else "long_axis", diameters_mm=list(diameters),
        ids_by_timepoint=[list(ids) for ids in track.ids],
    )


def _nodes(sets: Sequence[LesionSet], tracks: Sequence[Track]) -> list[RecistNode]:
    out = []
    for tr in tracks:
        first = sets[tr.start].rows[tr.ids[tr.start][0]]
        if first.kind != "lymph_node":
            continue
        axes: list[float | None] = [None if t < tr.start else
                                    max((sets[t].rows[i].short_axis_mm for i in tr.ids[t]), default=0.0)
                                    for t in range(len(sets))]
        out.append(RecistNode(lesion_id=tr.track_id, role=tr.role,
                              short_axis_mm=axes, normal_at_last=(axes[-1] or 0.0) < NORMAL_MM))
    return out


def _pct(before: float, after: float) -> float | None:
    return None if before <= 0 else 100.0 * (after - before) / before


def _fmt_pct(before: float, after: float) -> str:
    value = _pct(before, after)
    return "n/a %" if value is None else f"{value:+.1f} %"
