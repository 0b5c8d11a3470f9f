"""Side-by-side lesion pictures of comparison.html: for each lesion match (matched, new, disappeared,
split, merged) an axial slice at both time points, drawn like report.html's pictures
(:mod:`volseg.reports.pictures`: RAS display in the radiological convention, CT soft-tissue window,
structures outlined in their colours, the lesion's class drawn thicker).

Where the slices are taken: the lesion's centre at the earlier time point (the volume-weighted mean of
the centroids of its ``before_ids``), and at the later time point **that point mapped through the
registration** (``Registration.matrix_ras_mm``), so a good alignment shows the lesion under the mark on
both sides. A new lesion has no earlier centre: its later centre is mapped back through the inverse.
A magenta ``+`` marks the point on both pictures; both show the same field (same millimetres).
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from volseg.compare.results import Comparison, LesionMatch, LesionMeasurement
from volseg.compare.study_data import StudyData
from volseg.labels import LabelTable
from volseg.reports.picture_outlines import draw_outlines
from volseg.reports.pictures import (
    DisplayVolumes,
    Picture,
    _draw_background,
    _edge_letters,
    _figure,
    _png,
    display_point,
    view_plane,
)

log = logging.getLogger(__name__)

MARK_COLOUR = "#ff40ff"
MIN_HALF_FIELD_MM = 30.0


@dataclass(frozen=True)
class PicturePair:
    """The two pictures of one match; a side is None when its point lies outside that study's slices
    (``before_note`` / ``after_note`` say why)."""

    before: Picture | None
    after: Picture | None
    before_note: str = ""
    after_note: str = ""


def match_points(comparison: Comparison, match: LesionMatch) -> tuple[np.ndarray, np.ndarray]:
    """(point at ``from_timepoint``, point at ``to_timepoint``), RAS mm in each study's own space."""
    matrix = np.asarray(comparison.registrations[match.from_timepoint].matrix_ras_mm, dtype=np.float64)
    if match.before_ids:
        before = lesion_centre([comparison.lesion(match.from_timepoint, i) for i in match.before_ids])
        return before, _apply(matrix, before)
    after = lesion_centre([comparison.lesion(match.to_timepoint, i) for i in match.after_ids])
    return _apply(np.linalg.inv(matrix), after), after


def lesion_centre(lesions: Sequence[LesionMeasurement]) -> np.ndarray:
    """The volume-weighted mean centroid of ``lesions`` (plain mean when their volumes are all 0)."""
    points = np.asarray([row.centroid_mm for row in lesions], dtype=np.float64)
    weights = np.asarray([row.volume_ml for row in lesions], dtype=np.float64)
    if weights.sum() <= 0.0:
        weights = np.ones(len(lesions))
    return (points * weights[:, None]).sum(axis=0) / weights.sum()


def half_field_mm(comparison: Comparison, match: LesionMatch) -> float:
    """Half the side of the field shown: 30 mm, or 1.2 × the largest long axis of the match."""
    sizes = [comparison.lesion(match.from_timepoint, i).longest_diameter_mm for i in match.before_ids]
    sizes += [comparison.lesion(match.to_timepoint, i).longest_diameter_mm for i in match.after_ids]
    return max([MIN_HALF_FIELD_MM] + [1.2 * s for s in sizes])


def pair_pictures(comparison: Comparison, match: LesionMatch, before: StudyData, after: StudyData) -> PicturePair:
    """Both pictures of ``match`` (``before`` / ``after``: the two studies' voxels)."""
    p_before, p_after = match_points(comparison, match)
    half = half_field_mm(comparison, match)
    is_ct = comparison_is_ct(comparison)
    sides = []
    for data, point, timepoint, ids, mapped in (
            (before, p_before, match.from_timepoint, match.before_ids, not match.before_ids),
            (after, p_after, match.to_timepoint, match.after_ids, bool(match.before_ids))):
        display = DisplayVolumes.build(data.labels, data.image, is_ct=is_ct)
        where = "the point mapped through the registration" if mapped else "the lesion's centre"
        title = f"T{timepoint}: " + (", ".join(ids) if ids else "no lesion (" + match.status + ")")
        picture = slice_picture(display, data.table, [float(v) for v in point], half_mm=half,
                                emphasise=_label_of(data.table, match), key=f"T{timepoint}", title=title, where=where)
        note = "" if picture else f"T{timepoint}: {where} lies outside the study's slices"
        sides.append((picture, note))
    return PicturePair(sides[0][0], sides[1][0], sides[0][1], sides[1][1])


def slice_picture(display: DisplayVolumes, table: LabelTable, point_mm: Sequence[float], *, half_mm: float,
                  emphasise: int, key: str, title: str, where: str) -> Picture | None:
    """The axial slice through ``point_mm`` (RAS), a square field of 2 × ``half_mm`` centred on it, the
    point marked; None when the point is outside the volume's slices."""
    lab = display.labels
    row, col, z = display_point(lab, point_mm, "axial")
    index = int(round(z))
    if not 0 <= index < lab.shape[2]:
        return None
    sy, sx = lab.spacing[1], lab.spacing[0]
    r_lo, r_hi, c_lo, c_hi = row - half_mm / sy, row + half_mm / sy, col - half_mm / sx, col + half_mm / sx
    fig, ax = _figure(2.0 * half_mm, 2.0 * half_mm, width_in=3.2)
    _draw_background(ax, display, "axial", index)
    plane = view_plane(lab.array, "axial", index)
    window = (max(int(r_lo), 0), max(int(r_hi) + 1, 0), max(int(c_lo), 0), max(int(c_hi) + 1, 0))
    draw_outlines(ax, plane, table, filled=display.image is None, emphasise=emphasise, window=window)
    ax.plot([col], [row], linestyle="none", marker="+", markersize=16, markeredgewidth=1.6, color=MARK_COLOUR)
    ax.set_xlim(c_lo - 0.5, c_hi - 0.5)
    ax.set_ylim(r_hi - 0.5, r_lo - 0.5)
    _edge_letters(ax, "axial")
    s_mm = float(lab.index_to_world(np.array([0.0, 0.0, float(index)]))[2])
    caption = (f"axial slice {index + 1} of {lab.shape[2]} (S = {s_mm:.1f} mm) through {where}, marked +; "
               f"field {2.0 * half_mm:.0f} mm")
    return Picture(key, title, caption, _png(fig))


def comparison_is_ct(comparison: Comparison) -> bool:
    """CT (soft-tissue window) when a study says so or the organ intensities are in HU."""
    return (any(s.modality == "CT" for s in comparison.studies)
            or any(o.intensity_unit == "HU" for o in comparison.organs))


def _label_of(table: LabelTable, match: LesionMatch) -> int:
    try:
        return table.index_of(match.class_name)
    except KeyError:
        return 0


def _apply(matrix: np.ndarray, point: np.ndarray) -> np.ndarray:
    return matrix[:3, :3] @ point + matrix[:3, 3]
