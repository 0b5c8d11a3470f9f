"""Outlines of masks: the marching-squares contour of a 2-D mask, the face midpoints of a 3-D one.

Calipers (:mod:`volseg.postprocess.diameters`) are placed on these outlines, so a diameter is a
distance between two outline points.
"""
from __future__ import annotations

import numpy as np

_EDGE_PAIRS = (("top", "bottom"), ("top", "left"), ("top", "right"),
               ("bottom", "left"), ("bottom", "right"), ("left", "right"))


# marching-squares cases: (which cells, edge midpoint 1, edge midpoint 2); a midpoint is the offset
# from the cell's top-left corner in the padded mask, minus the padding (one index)
_MID = {"top": (-1.0, -0.5), "bottom": (0.0, -0.5), "left": (-0.5, -1.0), "right": (-0.5, 0.0)}


def outline_segments(mask2d: np.ndarray) -> np.ndarray:
    """Marching-squares outline of a 2-D mask at level 0.5: an (S, 2, 2) array of segments.

    Each segment joins two edge midpoints, in (row, column) index coordinates of ``mask2d``.
    Ambiguous (saddle) cells cut off their inside corners, i.e. the inside is 4-connected.
    """
    m = np.pad(np.asarray(mask2d, dtype=bool), 1)
    c00, c01, c10, c11 = m[:-1, :-1], m[:-1, 1:], m[1:, :-1], m[1:, 1:]
    crossed = {"top": c00 != c01, "bottom": c10 != c11, "left": c00 != c10, "right": c01 != c11}
    n_crossed = sum(c.astype(np.int8) for c in crossed.values())
    two, saddle = n_crossed == 2, n_crossed == 4
    cases = [(two & crossed[e1] & crossed[e2], e1, e2) for e1, e2 in _EDGE_PAIRS]
    cases += [(saddle & c00, "top", "left"), (saddle & c00, "bottom", "right"),
              (saddle & ~c00, "top", "right"), (saddle & ~c00, "bottom", "left")]
    parts = [_segments(cells, _MID[e1], _MID[e2]) for cells, e1, e2 in cases]
    return np.concatenate(parts, axis=0)


def _segments(cells: np.ndarray, p: tuple[float, float], q: tuple[float, float]) -> np.ndarray:
    """(N, 2, 2) segments from midpoint ``p`` to ``q`` of each selected cell, in C order."""
    rows, cols = np.nonzero(cells)
    out = np.empty((rows.size, 2, 2), dtype=np.float64)
    out[:, 0, 0] = rows + p[0]
    out[:, 0, 1] = cols + p[1]
    out[:, 1, 0] = rows + q[0]
    out[:, 1, 1] = cols + q[1]
    return out


def surface_points(mask: np.ndarray) -> np.ndarray:
    """Midpoints of the voxel faces between ``mask`` and its outside, as (N, 3) voxel indices."""
    m = np.pad(np.asarray(mask, dtype=bool), 1)
    points = []
    for axis in range(3):
        for step in (1, -1):
            outside_next = ~np.roll(m, -step, axis=axis)
            idx = np.argwhere(m & outside_next).astype(np.float64)
            idx[:, axis] += 0.5 * step
            points.append(idx)
    return np.concatenate(points, axis=0) - 1.0




_FOUR_NEIGHBOURS = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], dtype=bool)


def slice_pieces(mask2d: np.ndarray) -> list[tuple[np.ndarray, tuple[int, int]]]:
    """The 4-connected pieces of a 2-D mask: (piece cropped to its box, (row, column) of the box).

    4-connectivity matches :func:`outline_segments`, whose outline keeps diagonal neighbours apart,
    so each piece has an outline of its own.
    """
    from scipy import ndimage

    pieces, n = ndimage.label(np.asarray(mask2d, dtype=bool), structure=_FOUR_NEIGHBOURS)
    out = []
    for number, box in enumerate(ndimage.find_objects(pieces), start=1):
        if box is not None:
            out.append((pieces[box] == number, (int(box[0].start), int(box[1].start))))
    return out
