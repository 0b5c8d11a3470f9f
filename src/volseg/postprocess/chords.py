"""The longest caliper that lies inside a 2-D piece of a lesion: its end points on the piece's outline.

A caliper "lies inside" when the piece's mask, interpolated bilinearly, stays at or above
``INSIDE_LEVEL`` at every sample along it (one sample per ``STEP_PX`` pixel). The level is a little
below the outline's 0.5 so that a caliper running along the outline itself (a straight edge, or the
cut corner of a concave step) counts as inside, while one crossing a gap of background does not.

For a convex piece the farthest pair of outline points is inside and is the answer. Otherwise the
pairs of outline points are tried from the longest down, and the first one inside wins. A piece
with more than ``COARSE_POINTS`` outline points is first searched on an evenly spaced subset of them,
whose answer bounds the full search (at most ``MAX_POINTS`` points, ``MAX_PAIRS_TRIED`` pairs longer
than that answer) from below, so the search stays bounded on any outline.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

INSIDE_LEVEL = 0.4
STEP_PX = 0.25
MAX_POINTS = 2_000
COARSE_POINTS = 300
MAX_PAIRS_TRIED = 200_000
_BATCH = 1024
_COARSE_SAMPLES = 9


def is_inside(piece: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """For each caliper a[k]→b[k] (row, column index coordinates of ``piece``): does it lie inside?

    Checked coarsely first (``_COARSE_SAMPLES`` samples), then finely for the calipers that pass.
    """
    a = np.atleast_2d(np.asarray(a, dtype=np.float64))
    b = np.atleast_2d(np.asarray(b, dtype=np.float64))
    padded = np.pad(np.asarray(piece, dtype=np.float32), 1)
    ok = _samples_inside(padded, a, b, _COARSE_SAMPLES)
    if ok.any():
        longest = float(np.max(np.linalg.norm(b[ok] - a[ok], axis=1)))
        ok[ok] = _samples_inside(padded, a[ok], b[ok], int(np.ceil(longest / STEP_PX)) + 2)
    return ok


def _samples_inside(padded: np.ndarray, a: np.ndarray, b: np.ndarray, n_samples: int) -> np.ndarray:
    t = np.linspace(0.0, 1.0, max(n_samples, 2))
    samples = a[:, None, :] + t[None, :, None] * (b - a)[:, None, :]  # (K, T, 2)
    values = ndimage.map_coordinates(padded, samples.reshape(-1, 2).T + 1.0, order=1, mode="constant", cval=0.0)
    return (values.reshape(samples.shape[:2]) >= INSIDE_LEVEL).all(axis=1)


def longest_inside_chord(piece: np.ndarray, points: np.ndarray, to_mm: np.ndarray,
                         first: tuple[int, int]) -> tuple[int, int, float]:
    """(i, j, length in mm) of the longest pair of ``points`` (outline points, index coordinates of
    ``piece``) whose caliper lies inside; ``first`` is the farthest pair, tried before any other."""
    points_mm = points @ to_mm.T
    i, j = first
    if is_inside(piece, points[i], points[j])[0]:
        return i, j, float(np.linalg.norm(points_mm[i] - points_mm[j]))
    best = None
    if len(points) > COARSE_POINTS:  # a first answer from a subset bounds the search below
        best = _search(piece, points, points_mm, _evenly(len(points), COARSE_POINTS), 0.0)
    found = _search(piece, points, points_mm, _evenly(len(points), MAX_POINTS), best[2] if best else 0.0)
    result = found or best
    if result is not None:
        return result
    # last resort, not met in practice (two outline points of one pixel see each other): the farthest pair
    return i, j, float(np.linalg.norm(points_mm[i] - points_mm[j]))


def _evenly(n: int, at_most: int) -> np.ndarray:
    if n <= at_most:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, at_most).round().astype(np.int64))


def _search(piece, points, points_mm, keep, shorter_than_mm: float):
    """The longest inside pair among ``keep`` that is longer than ``shorter_than_mm``, or None."""
    ii, jj = np.triu_indices(len(keep), k=1)
    ii, jj = keep[ii], keep[jj]
    d2 = ((points_mm[ii] - points_mm[jj]) ** 2).sum(axis=1)
    longer = np.nonzero(d2 > shorter_than_mm ** 2)[0]
    order = longer[np.argsort(-d2[longer], kind="stable")][:MAX_PAIRS_TRIED]
    for start in range(0, len(order), _BATCH):
        batch = order[start:start + _BATCH]
        inside = is_inside(piece, points[ii[batch]], points[jj[batch]])
        if inside.any():
            k = batch[int(np.argmax(inside))]
            return int(ii[k]), int(jj[k]), float(np.sqrt(d2[k]))
    return None
