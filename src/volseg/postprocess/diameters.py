"""Lesion diameters as a radiologist's calipers measure them, in millimetres on any grid.

The outline of a structure in a slice is the marching-squares contour of its mask at level 0.5:
segments joining the midpoints of the pixel edges that separate inside from outside. Calipers are
placed on that outline, so a diameter is a distance between two outline points, in mm, computed
from the affine (anisotropic, rotated, sheared and non-RAS grids alike).

* **Axial long axis** (RECIST 1.1, Eisenhauer et al., Eur J Cancer 2009;45:228-247): the longest
  in-plane diameter over all axial slices. The "axial" slices are those of the array axis closest
  to the patient's superior-inferior direction (:func:`~volseg.postprocess.morphology.axial_axis`);
  on an oblique grid the measurement is made in that slice's own plane.
* **Short axis**: the longest chord of the outline perpendicular to the long axis, in the same
  slice (the second caliper). For a concave outline the chord spans the outer extent of the
  outline along that perpendicular line.
* **Maximum 3-D (Feret) diameter**: the largest distance between two points of the surface outline
  (pixel-face midpoints), found over the vertices of their convex hull.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import ConvexHull, QhullError

from volseg.postprocess.morphology import axial_axis as _axial_axis

Point = tuple[float, float, float]
_TIE_MM = 1e-6  # long axes equal within this are ties (broken by the larger short axis)
_CHUNK = 2_000_000  # max elements of a temporary (query × segment) or (point × point) matrix


@dataclass(frozen=True)
class AxialDiameters:
    long_axis_mm: float
    short_axis_mm: float
    axial_axis: int  # the array axis whose slices are the axial planes
    slice_index: int  # index along ``axial_axis`` of the slice holding the long axis
    long_axis_endpoints_ras_mm: tuple[Point, Point]
    short_axis_endpoints_ras_mm: tuple[Point, Point] | None


@dataclass(frozen=True)
class FeretDiameter:
    diameter_mm: float
    endpoints_ras_mm: tuple[Point, Point]


# ---- outlines -------------------------------------------------------------------------------
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


# ---- diameters ------------------------------------------------------------------------------
def feret_diameter(mask: np.ndarray, affine: np.ndarray, *,
                   offset: tuple[int, int, int] = (0, 0, 0)) -> FeretDiameter | None:
    """Largest 3-D distance between two surface points of ``mask`` (None when empty).

    ``mask`` may be a crop of the full grid starting at voxel ``offset``.
    """
    if not np.any(mask):
        return None
    affine = np.asarray(affine, dtype=np.float64)
    pts = (surface_points(mask) + np.asarray(offset, dtype=np.float64)) @ affine[:3, :3].T + affine[:3, 3]
    i, j, dist = _farthest_pair(pts)
    return FeretDiameter(dist, (_triple(pts[i]), _triple(pts[j])))


def axial_diameters(mask: np.ndarray, affine: np.ndarray, *, offset: tuple[int, int, int] = (0, 0, 0),
                    axis: int | None = None) -> AxialDiameters | None:
    """RECIST long and short axes of ``mask`` in its axial slices (None when empty)."""
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return None
    affine = np.asarray(affine, dtype=np.float64)
    axis = _axial_axis(affine) if axis is None else axis
    plane = [a for a in range(3) if a != axis]
    to_mm = _plane_metric(affine[:3, plane])
    per_slice = []
    for k in np.nonzero(mask.any(axis=tuple(plane)))[0]:
        segs = outline_segments(np.take(mask, k, axis=axis))
        pts = np.unique(segs.reshape(-1, 2), axis=0)
        pts_mm = pts @ to_mm.T
        i, j, length = _farthest_pair(pts_mm)
        per_slice.append((length, int(k), segs, pts_mm[i], pts_mm[j]))
    best_len = max(item[0] for item in per_slice)
    best = None
    for length, k, segs, p, q in per_slice:
        if length < best_len - _TIE_MM:
            continue
        short = _perpendicular_chord(segs @ to_mm.T, p, q)
        if best is None or short[0] > best[1][0] + _TIE_MM:
            best = ((length, k, p, q), short)
    (length, k, p, q), (short_len, s0, s1) = best
    world = _slice_to_world(affine, axis, plane, k + offset[axis], offset, to_mm)
    return AxialDiameters(
        long_axis_mm=float(length),
        short_axis_mm=float(short_len),
        axial_axis=axis,
        slice_index=int(k + offset[axis]),
        long_axis_endpoints_ras_mm=(world(p), world(q)),
        short_axis_endpoints_ras_mm=(world(s0), world(s1)) if short_len > 0 else None,
    )


def _plane_metric(columns: np.ndarray) -> np.ndarray:
    """2×2 matrix taking in-plane index offsets to orthonormal in-plane mm coordinates."""
    _, r = np.linalg.qr(columns)
    return r


def _slice_to_world(affine, axis, plane, k_full, offset, to_mm):
    inv = np.linalg.inv(to_mm)

    def world(point_mm: np.ndarray) -> Point:
        uv = inv @ point_mm
        ijk = np.zeros(3)
        ijk[axis] = k_full
        ijk[plane[0]] = uv[0] + offset[plane[0]]
        ijk[plane[1]] = uv[1] + offset[plane[1]]
        return _triple(affine[:3, :3] @ ijk + affine[:3, 3])

    return world


def _perpendicular_chord(segs_mm: np.ndarray, p: np.ndarray, q: np.ndarray):
    """Longest chord of the outline perpendicular to p→q: (length, end 1, end 2) in plane mm.

    Along the long axis, the outline's extent across it is piecewise linear between the outline's
    vertices, so its maximum lies on a line through a vertex: every vertex position is tried.
    """
    u = (q - p) / np.linalg.norm(q - p)
    v = np.array([-u[1], u[0]])
    t = segs_mm @ u  # (S, 2)
    w = segs_mm @ v
    t_lo, t_hi = t.min(axis=1), t.max(axis=1)
    queries = np.unique(t)
    best = (0.0, None, None)
    step = max(1, _CHUNK // max(len(t), 1))
    for start in range(0, len(queries), step):
        tq = queries[start:start + step, None]
        hit = (t_lo[None, :] <= tq) & (tq <= t_hi[None, :])
        dt = t[:, 1] - t[:, 0]
        flat = dt == 0
        frac = np.where(flat, 0.0, (tq - t[:, 0]) / np.where(flat, 1.0, dt))
        w_at = w[:, 0] + frac * (w[:, 1] - w[:, 0])
        w_hi = np.where(flat, np.maximum(w[:, 0], w[:, 1]), w_at)
        w_lo = np.where(flat, np.minimum(w[:, 0], w[:, 1]), w_at)
        top = np.where(hit, w_hi, -np.inf).max(axis=1)
        bottom = np.where(hit, w_lo, np.inf).min(axis=1)
        span = top - bottom
        i = int(np.argmax(span))
        if span[i] > best[0]:
            tt = float(tq[i, 0])
            best = (float(span[i]), tt * u + bottom[i] * v, tt * u + top[i] * v)
    return best


def _farthest_pair(points: np.ndarray) -> tuple[int, int, float]:
    """Indices of the two farthest points and their distance (convex hull, then all hull pairs)."""
    candidates = np.arange(len(points))
    if len(points) > 8:
        try:
            candidates = ConvexHull(points).vertices
        except QhullError:  # degenerate (collinear/coplanar) set: every point is a candidate
            candidates = np.arange(len(points))
    sub = points[candidates]
    best = (0, 0, 0.0)
    step = max(1, _CHUNK // max(len(sub), 1))
    for start in range(0, len(sub), step):
        block = sub[start:start + step]
        d2 = ((block[:, None, :] - sub[None, :, :]) ** 2).sum(axis=-1)
        flat = int(np.argmax(d2))
        a, b = divmod(flat, len(sub))
        if d2[a, b] > best[2] ** 2:
            best = (int(candidates[start + a]), int(candidates[b]), float(np.sqrt(d2[a, b])))
    return best


def _triple(v) -> Point:
    return float(v[0]), float(v[1]), float(v[2])
