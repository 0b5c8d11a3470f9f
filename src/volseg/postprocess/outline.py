"""Outlines of masks: the marching-squares contour of a 2-D mask, the face midpoints of a 3-D one.

Calipers (:mod:`volseg.postprocess.diameters`) are placed on these outlines, so a diameter is a
distance between two outline points.
"""
from __future__ import annotations

import numpy as np

_EDGE_PAIRS = (("top", "bottom"), ("top", "left"), ("top", "right"),
               ("bottom", "left"), ("bottom", "right"), ("left", "right"))


def outline_segments(mask2d: np.ndarray) -> np.ndarray:
    """Marching-squares outline of a 2-D mask at level 0.5: an (S, 2, 2) array of segments.

    Each segment joins two edge midpoints, in (row, column) index coordinates of ``mask2d``.
    Ambiguous (saddle) cells cut off their inside corners, i.e. the inside is 4-connected.
    """
    m = np.pad(np.asarray(mask2d, dtype=bool), 1)
    c00, c01, c10, c11 = m[:-1, :-1], m[:-1, 1:], m[1:, :-1], m[1:, 1:]
    ii, jj = np.indices(c00.shape, dtype=np.float64)
    ii -= 1.0  # undo the padding
    jj -= 1.0
    crossed = {"top": c00 != c01, "bottom": c10 != c11, "left": c00 != c10, "right": c01 != c11}
    mid = {"top": (ii, jj + 0.5), "bottom": (ii + 1.0, jj + 0.5),
           "left": (ii + 0.5, jj), "right": (ii + 0.5, jj + 1.0)}
    n_crossed = sum(c.astype(np.int8) for c in crossed.values())
    parts = []
    for e1, e2 in _EDGE_PAIRS:
        parts.append(_segments(n_crossed == 2, crossed[e1] & crossed[e2], mid[e1], mid[e2]))
    saddle = n_crossed == 4
    parts.append(_segments(saddle, c00, mid["top"], mid["left"]))
    parts.append(_segments(saddle, c00, mid["bottom"], mid["right"]))
    parts.append(_segments(saddle, ~c00, mid["top"], mid["right"]))
    parts.append(_segments(saddle, ~c00, mid["bottom"], mid["left"]))
    return np.concatenate(parts, axis=0)


def _segments(cells: np.ndarray, select: np.ndarray, p: tuple, q: tuple) -> np.ndarray:
    sel = cells & select
    a = np.stack([p[0][sel], p[1][sel]], axis=-1)
    b = np.stack([q[0][sel], q[1][sel]], axis=-1)
    return np.stack([a, b], axis=1)


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
