"""The longest caliper that lies inside a 2-D piece of a lesion: its end points on the piece's outline.

A caliper "lies inside" when the piece's mask, interpolated bilinearly, stays at or above
``INSIDE_LEVEL`` at every sample along it (one sample per ``STEP_PX`` pixel). The level is a little
below the outline's 0.5 so that a caliper running along the outline itself (a straight edge, or the
cut corner of a concave step) counts as inside, while one crossing a gap of background does not.

For a convex piece the farthest pair of outline points is inside and is the answer. Otherwise the
pairs of outline points are tried from the longest down, and the first one inside wins; a piece
with more than ``MAX_POINTS`` outline points is tried on an evenly spaced subset of them.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

INSIDE_LEVEL = 0.4
STEP_PX = 0.25
MAX_POINTS = 2_000
_BATCH = 256


def is_inside(piece: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """For each caliper a[k]→b[k] (row, column index coordinates of ``piece``): does it lie inside?"""
    a = np.atleast_2d(np.asarray(a, dtype=np.float64))
    b = np.atleast_2d(np.asarray(b, dtype=np.float64))
    n_samples = int(np.ceil(np.max(np.linalg.norm(b - a, axis=1), initial=0.0) / STEP_PX)) + 2
    t = np.linspace(0.0, 1.0, n_samples)
    samples = a[:, None, :] + t[None, :, None] * (b - a)[:, None, :]  # (K, T, 2)
    padded = np.pad(np.asarray(piece, dtype=np.float32), 1)
    coords = samples.reshape(-1, 2).T + 1.0
    values = ndimage.map_coordinates(padded, coords, order=1, mode="constant", cval=0.0)
    return (values.reshape(samples.shape[:2]) >= INSIDE_LEVEL).all(axis=1)


def longest_inside_chord(piece: np.ndarray, points: np.ndarray, to_mm: np.ndarray,
                         first: tuple[int, int]) -> tuple[int, int, float]:
    """(i, j, length in mm) of the longest pair of ``points`` (outline points, index coordinates of
    ``piece``) whose caliper lies inside; ``first`` is the farthest pair, tried before any other."""
    points_mm = points @ to_mm.T
    i, j = first
    if is_inside(piece, points[i], points[j])[0]:
        return i, j, float(np.linalg.norm(points_mm[i] - points_mm[j]))
    keep = np.arange(len(points))
    if len(points) > MAX_POINTS:
        keep = np.unique(np.linspace(0, len(points) - 1, MAX_POINTS).round().astype(np.int64))
    ii, jj = np.triu_indices(len(keep), k=1)
    ii, jj = keep[ii], keep[jj]
    d2 = ((points_mm[ii] - points_mm[jj]) ** 2).sum(axis=1)
    order = np.argsort(-d2, kind="stable")
    for start in range(0, len(order), _BATCH):
        batch = order[start:start + _BATCH]
        inside = is_inside(piece, points[ii[batch]], points[jj[batch]])
        if inside.any():
            k = batch[int(np.argmax(inside))]
            return int(ii[k]), int(jj[k]), float(np.sqrt(d2[k]))
    return i, j, 0.0  # unreachable for a non-empty piece: neighbouring outline points are inside
