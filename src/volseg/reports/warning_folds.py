"""Report warnings folded by kind for reading: "23 structures not found: a, b, c, …".

A report keeps every warning as its own line (report.json is unchanged); the HTML pages show the
per-structure ones folded. A kind is recognised by the exact wording the report builder and the QC
module use (:data:`KINDS`); a kind met only once, and every other warning, stays as written.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

_NAME = r"(?P<name>[A-Za-z0-9][A-Za-z0-9_.\-]*)"

#: kind → (what a folded line says after the count, the wordings that belong to it)
KINDS: dict[str, tuple[str, tuple[re.Pattern[str], ...]]] = {
    "not_found": ("not found (empty)", (
        re.compile(rf"^{_NAME}: empty \(not found in this image\)$"),
        re.compile(rf"^{_NAME}: no voxel in this label map$"),
    )),
    "cut_by_fov": ("cut by the field of view (volumes are lower bounds)", (
        re.compile(rf"^{_NAME}: cut by the field of view; volume_ml is a lower bound$"),
        re.compile(rf"^{_NAME} reaches the edge of the field of view; volume_ml is a lower bound$"),
    )),
    "fragmented": ("in more pieces than expected", (
        re.compile(rf"^{_NAME} has \d+ connected components \(expected at most \d+\)"),
    )),
    "laterality": ("on the wrong side of the midline", (
        re.compile(rf"^{_NAME}: centroid \d+ mm to the patient's (left|right) of the midline"),
    )),
}


@dataclass(frozen=True)
class WarningGroup:
    kind: str  # a key of KINDS, or "other"
    text: str  # the line to show: folded ("23 structures not found …") or the warning as written
    names: tuple[str, ...] = ()  # the structures of a folded kind

    @property
    def folded(self) -> bool:
        return len(self.names) > 1


def fold_warnings(warnings: Sequence[str], *, max_names: int = 8) -> list[WarningGroup]:
    """Folded kinds first (in :data:`KINDS` order), then the other warnings in their order; the
    same structure named twice in one kind (builder and QC wording) counts once."""
    names: dict[str, list[str]] = {kind: [] for kind in KINDS}
    first: dict[str, str] = {}
    other: list[str] = []
    for warning in warnings:
        kind, name = _kind_of(warning)
        if kind is None:
            if warning not in other:
                other.append(warning)
            continue
        first.setdefault(kind, warning)
        if name not in names[kind]:
            names[kind].append(name)
    groups = []
    for kind, found in names.items():
        if len(found) == 1:
            groups.append(WarningGroup(kind, first[kind], tuple(found)))
        elif found:
            groups.append(WarningGroup(kind, folded_line(kind, found, max_names=max_names), tuple(found)))
    return groups + [WarningGroup("other", w) for w in other]


def folded_line(kind: str, names: Sequence[str], *, max_names: int = 8) -> str:
    shown = ", ".join(names[:max_names]) + (", …" if len(names) > max_names else "")
    return f"{len(names)} structures {KINDS[kind][0]}: {shown}"


def summary(warnings: Sequence[str]) -> str:
    """A few words per kind for a table cell, e.g. "23 not found · 4 cut by the field of view · 1 other"."""
    groups = fold_warnings(warnings)
    parts = [f"{len(g.names)} {KINDS[g.kind][0].split(' (')[0]}" for g in groups if g.kind != "other"]
    n_other = sum(1 for g in groups if g.kind == "other")
    if n_other:
        parts.append(f"{n_other} other")
    return " · ".join(parts)


def _kind_of(warning: str) -> tuple[str | None, str]:
    for kind, (_, patterns) in KINDS.items():
        for pattern in patterns:
            match = pattern.match(warning)
            if match:
                return kind, match.group("name")
    return None, ""
