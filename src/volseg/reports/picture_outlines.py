"""Helpers of :mod:`volseg.reports.pictures` that look at label values: structure outlines drawn
on a slice (each traced on its own box), fill colours, and masks of a few labels."""
from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import numpy as np

from volseg.labels import LabelTable

#: outlines this many slice pixels or more outside the shown window are left out (a line is at
#: most 2.2 pt wide, and a slice pixel is never under half a screen pixel in these pictures)
OFF_VIEW_PIXELS = 8


def draw_outlines(ax, plane: np.ndarray, labels: LabelTable, *, filled: bool, emphasise: int = 0,
                  window: tuple[int, int, int, int] | None = None) -> None:
    """Each structure of ``plane`` filled (no image) and outlined in its colour.

    Each outline is traced on the structure's own bounding box in the plane grown by one pixel
    (:func:`label_boxes_2d`): every cell the level-0.5 contour crosses lies in it, and its cells
    keep their order, so the lines, their vertices and the picture are those of a contour over
    the whole plane, at a fraction of the cost. With ``window`` (row_lo, row_hi, col_lo, col_hi: the
    part of the plane shown), outlines wholly outside it (:data:`OFF_VIEW_PIXELS`) are not drawn:
    they could not touch a pixel of the picture, and the others are traced only on the window grown
    by that margin (lines then end out of view instead of closing there)."""
    plane = np.asarray(plane)
    if plane.dtype.kind not in "iu" or (plane.size and plane.min() < 0):
        _outlines_whole(ax, plane, labels, filled=filled, emphasise=emphasise)
        return
    boxes = label_boxes_2d(plane)
    present = sorted(boxes)
    if filled and present:
        colours = np.zeros((int(plane.max()) + 1, 4), dtype=np.float32)
        for value in present:
            colours[value] = (*label_rgb(labels, value), 0.55)
        ax.imshow(colours[plane], aspect=ax.get_aspect(), interpolation="nearest")
    limit = _near_view(window, plane.shape) if window is not None else None
    outlines = _Outlines()
    for value in present:
        (r0, r1), (c0, c1) = boxes[value]
        if window is not None and _off_view((r0, r1, c0, c1), window):
            continue
        if limit is not None:  # trace only near the view: the rest could not touch a pixel
            r0, r1, c0, c1 = max(r0, limit[0]), min(r1, limit[1]), max(c0, limit[2]), min(c1, limit[3])
        outlines.add(plane[r0:r1, c0:c1] == value, (r0, c0), label_rgb(labels, value),
                     2.2 if value == emphasise else 1.1)
    outlines.draw(ax)


class _Outlines:
    """Level-0.5 outlines of several masks, drawn as one collection.

    Each mask is traced as ``ax.contour(x, y, mask, levels=[0.5])`` traces it (contourpy, the same
    algorithm, corner masking and path codes), but all of them go into one artist: per-structure
    ``ax.contour`` calls spent most of their time building one artist each (colour maps, autoscaling),
    hundreds of them on a slice with many structures. The vertices, their order and the drawing order
    are those of the separate calls."""

    def __init__(self) -> None:
        self.paths: list = []
        self.colours: list[tuple[float, float, float]] = []
        self.widths: list[float] = []

    def add(self, mask: np.ndarray, origin: tuple[int, int], colour: tuple[float, float, float],
            width: float) -> None:
        import contourpy
        from matplotlib import rcParams
        from matplotlib.path import Path

        rows, cols = mask.shape
        x, y = np.meshgrid(np.arange(origin[1], origin[1] + cols), np.arange(origin[0], origin[0] + rows))
        generator = contourpy.contour_generator(
            x, y, mask.astype(np.float64), name=rcParams["contour.algorithm"],
            corner_mask=rcParams["contour.corner_mask"], line_type=contourpy.LineType.SeparateCode)
        # LineType.SeparateCode: (a list of point arrays, a list of path-code arrays)
        vertices, codes = cast("tuple[list[np.ndarray], list[np.ndarray]]", generator.lines(0.5))
        if len(vertices):
            self.paths.append(Path(np.concatenate(vertices), np.concatenate(codes)))
            self.colours.append(colour)
            self.widths.append(width)

    def draw(self, ax) -> None:
        from matplotlib.collections import PathCollection

        if self.paths:
            ax.add_collection(PathCollection(self.paths, facecolors="none", edgecolors=self.colours,
                                             linewidths=self.widths, zorder=2), autolim=False)


def _near_view(window: tuple[int, int, int, int], shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """The window grown by :data:`OFF_VIEW_PIXELS` (+1 for the contour's cells), within the plane."""
    m = OFF_VIEW_PIXELS + 1
    w_r0, w_r1, w_c0, w_c1 = window
    return (max(int(w_r0) - m, 0), min(int(w_r1) + m, shape[0]), max(int(w_c0) - m, 0), min(int(w_c1) + m, shape[1]))


def _off_view(box: tuple[int, int, int, int], window: tuple[int, int, int, int]) -> bool:
    (r0, r1, c0, c1), (w_r0, w_r1, w_c0, w_c1) = box, window
    m = OFF_VIEW_PIXELS
    return r1 <= w_r0 - m or r0 >= w_r1 + m or c1 <= w_c0 - m or c0 >= w_c1 + m


def _outlines_whole(ax, plane: np.ndarray, labels: LabelTable, *, filled: bool, emphasise: int) -> None:
    """:func:`draw_outlines` for a plane of other values than non-negative integers (one mask per
    value over the whole plane)."""
    present = [int(v) for v in np.unique(plane) if v != 0]
    if filled and present:
        rgba = np.zeros(plane.shape + (4,), dtype=np.float32)
        for value in present:
            rgba[plane == value] = (*label_rgb(labels, value), 0.55)
        ax.imshow(rgba, aspect=ax.get_aspect(), interpolation="nearest")
    outlines = _Outlines()
    for value in present:
        outlines.add(plane == value, (0, 0), label_rgb(labels, value), 2.2 if value == emphasise else 1.1)
    outlines.draw(ax)


def label_boxes_2d(plane: np.ndarray) -> dict[int, tuple[tuple[int, int], tuple[int, int]]]:
    """Per non-zero value of a 2-D integer ``plane``: ((row_lo, row_hi), (col_lo, col_hi)), end
    exclusive, its bounding box grown by one pixel on each side within the plane."""
    from scipy import ndimage

    plane = np.asarray(plane)
    if plane.size == 0 or not plane.any():
        return {}
    values = np.unique(plane)
    values = values[values != 0]
    dense = np.searchsorted(values, plane) + 1  # 1..n where plane is non-zero
    dense[plane == 0] = 0
    out = {}
    for value, box in zip(values, ndimage.find_objects(dense)):
        rows, cols = box
        out[int(value)] = ((max(rows.start - 1, 0), min(rows.stop + 1, plane.shape[0])),
                           (max(cols.start - 1, 0), min(cols.stop + 1, plane.shape[1])))
    return out


def label_mask(array: np.ndarray, values: Sequence[int]) -> np.ndarray:
    """``np.isin(array, values)`` for a few label values: one comparison each, in the array's own
    memory order (a transposed view is read as it lies), instead of isin's sort or table."""
    array = np.asarray(array)
    if len(values) > 8 or array.dtype.kind not in "iub":
        return np.isin(array, values)
    mask = array == values[0]
    for value in values[1:]:
        mask |= array == value
    return mask


def label_rgb(labels: LabelTable, value: int) -> tuple[float, float, float]:
    if value in labels:
        return tuple(c / 255.0 for c in labels[value].color)  # type: ignore[return-value]
    return (1.0, 1.0, 1.0)
