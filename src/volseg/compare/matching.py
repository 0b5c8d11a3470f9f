"""Lesion matching between two consecutive time points.

Lesions are the instances (connected components) of the report's lesion classes, numbered as the report
numbers them. The follow-up's instances are mapped into the baseline's grid through the registration;
pairs that overlap (Dice of the aligned masks at least ``min_match_dice``) correspond. Lesions left
without any overlap are paired by nearest centroid (after alignment) within ``match_tolerance_mm``,
one to one, nearest first. Groups of the resulting graph are one to one (matched), one to many (split),
many to one (merged), none to one (new) or one to none (disappeared); a group with several lesions on
both sides keeps for each follow-up lesion only its best-overlapping baseline lesion. Lesions and lymph
nodes are never matched with each other.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from volseg.compare.geometry import apply, resample_labels
from volseg.compare.inputs import Timepoint
from volseg.reports.model import InstanceRow
from volseg.volume import Volume

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LesionSet:
    """One time point's lesions: the report's rows and a map of instance numbers (k ↔ ``ids[k - 1]``)."""

    ids: tuple[str, ...]
    rows: dict[str, InstanceRow]
    index_map: Volume


@dataclass(frozen=True)
class Group:
    """A group of corresponding lesions (baseline side ``before``, follow-up side ``after``)."""

    before: tuple[str, ...]
    after: tuple[str, ...]
    method: str | None  # "overlap" | "centroid" | None
    dice: float | None
    distance_mm: float | None

    @property
    def status(self) -> str:
        if not self.before:
            return "new"
        if not self.after:
            return "disappeared"
        if len(self.before) > 1:
            return "merged"
        return "split" if len(self.after) > 1 else "matched"


def lesion_set(point: Timepoint) -> LesionSet:
    """The instances of the time point's lesion classes, numbered like its report's instance ids."""
    from volseg.postprocess.instances import split_classes

    report = point.report
    options = report.provenance.options
    names = point.table.names()
    classes = {i: n for i, n in names.items() if n in set(report.lesion_classes)}
    instances = split_classes(point.labels.array, classes, voxel_volume_mm3=point.labels.voxel_volume_mm3,
                              connectivity=int(options.get("connectivity") or 26),
                              min_volume_mm3=float(options.get("min_instance_volume_mm3") or 0.0))
    rows = {row.instance_id: row for row in report.instances}
    index = np.zeros(point.labels.shape, dtype=np.int32)
    ids: list[str] = []
    for inst in instances:
        if inst.instance_id not in rows:
            log.warning("%s: lesion %s of the label map is not in report.json; left out",
                        point.ref.name, inst.instance_id)
            continue
        ids.append(inst.instance_id)
        index[inst.box][inst.mask] = len(ids)
    return LesionSet(tuple(ids), {i: rows[i] for i in ids}, point.labels.with_array(index))


def match_lesions(before: LesionSet, after: LesionSet, matrix: np.ndarray, *, min_dice: float,
                  tolerance_mm: float) -> list[Group]:
    """Groups of corresponding lesions; ``matrix`` maps ``before``'s RAS points to ``after``'s."""
    overlap = _overlap_edges(before, after, matrix, min_dice)
    paired_a = {a for a, _ in overlap}
    paired_b = {b for _, b in overlap}
    near = _centroid_edges([i for i in before.ids if i not in paired_a], [i for i in after.ids if i not in paired_b],
                           before, after, matrix, tolerance_mm)
    edges = {**{e: ("overlap", d) for e, d in overlap.items()}, **{e: ("centroid", d) for e, d in near.items()}}
    return _groups(before, after, edges, matrix)


def _overlap_edges(before: LesionSet, after: LesionSet, matrix, min_dice: float) -> dict[tuple[str, str], float]:
    if not before.ids or not after.ids:
        return {}
    mapped = resample_labels(after.index_map, before.index_map, matrix).astype(np.int64)
    a = before.index_map.array.astype(np.int64)
    nb = len(after.ids) + 1
    both = (a > 0) & (mapped > 0)
    pairs = np.bincount(a[both] * nb + mapped[both], minlength=(len(before.ids) + 1) * nb).reshape(-1, nb)
    size_a = np.bincount(a.ravel(), minlength=len(before.ids) + 1)
    size_b = np.bincount(mapped.ravel(), minlength=nb)
    edges = {}
    for i, j in zip(*np.nonzero(pairs)):
        ia, ib = before.ids[i - 1], after.ids[j - 1]
        score = 2.0 * pairs[i, j] / (size_a[i] + size_b[j])
        if score >= min_dice and score > 0 and before.rows[ia].kind == after.rows[ib].kind:
            edges[(ia, ib)] = float(score)
    return edges


def _centroid_edges(free_a: Sequence[str], free_b: Sequence[str], before: LesionSet, after: LesionSet,
                    matrix, tolerance_mm: float) -> dict[tuple[str, str], float]:
    candidates = []
    for ia in free_a:
        moved = apply(matrix, before.rows[ia].centroid_ras_mm)
        for ib in free_b:
            if before.rows[ia].kind != after.rows[ib].kind:
                continue
            distance = float(np.linalg.norm(moved - np.asarray(after.rows[ib].centroid_ras_mm)))
            if distance <= tolerance_mm:
                candidates.append((distance, ia, ib))
    edges: dict[tuple[str, str], float] = {}
    used_a: set[str] = set()
    used_b: set[str] = set()
    for distance, ia, ib in sorted(candidates):
        if ia not in used_a and ib not in used_b:
            used_a.add(ia)
            used_b.add(ib)
            edges[(ia, ib)] = distance
    return edges


def _groups(before: LesionSet, after: LesionSet, edges: dict, matrix) -> list[Group]:
    edges = _untangle(edges)
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    for ia, ib in edges:
        parent[find("a:" + ia)] = find("b:" + ib)
    groups: dict[str, tuple[list[str], list[str]]] = {}
    for ia in before.ids:
        groups.setdefault(find("a:" + ia), ([], []))[0].append(ia)
    for ib in after.ids:
        groups.setdefault(find("b:" + ib), ([], []))[1].append(ib)
    out = []
    for side_a, side_b in groups.values():
        mine = [(e, v) for e, v in edges.items() if e[0] in side_a and e[1] in side_b]
        method = mine[0][1][0] if mine else None
        dice = max((v[1] for _, v in mine if v[0] == "overlap"), default=None)
        out.append(Group(tuple(side_a), tuple(side_b), method, dice,
                         _distance(side_a, side_b, before, after, matrix)))
    order = {i: n for n, i in enumerate((*before.ids, *after.ids))}
    return sorted(out, key=lambda g: order[(g.before or g.after)[0]] + (0 if g.before else len(before.ids)))


def _untangle(edges: dict) -> dict:
    """Where a follow-up lesion has several baseline partners while one of them has several follow-up
    partners (many to many), keep only the follow-up lesion's best edge (highest Dice, then nearest)."""
    by_b: dict[str, list] = {}
    by_a: dict[str, int] = {}
    for (ia, ib), value in edges.items():
        by_b.setdefault(ib, []).append((ia, value))
        by_a[ia] = by_a.get(ia, 0) + 1
    kept = {}
    for ib, partners in by_b.items():
        if len(partners) > 1 and any(by_a[ia] > 1 for ia, _ in partners):
            partners = [max(partners, key=lambda p: (p[1][0] == "overlap", p[1][1] if p[1][0] == "overlap"
                                                     else -p[1][1]))]
        for ia, value in partners:
            kept[(ia, ib)] = value
    return kept


def _distance(side_a, side_b, before: LesionSet, after: LesionSet, matrix) -> float | None:
    """Distance (mm, after alignment) between the volume-weighted centroids of the two sides."""
    if not side_a or not side_b:
        return None
    ca = _weighted([before.rows[i] for i in side_a])
    cb = _weighted([after.rows[i] for i in side_b])
    return float(np.linalg.norm(apply(matrix, ca) - cb))


def _weighted(rows: Sequence[InstanceRow]) -> np.ndarray:
    weights = np.array([r.volume_ml for r in rows])
    points = np.array([r.centroid_ras_mm for r in rows])
    return (weights[:, None] * points).sum(axis=0) / max(weights.sum(), 1e-12)
