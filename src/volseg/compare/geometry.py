"""Small geometry helpers of the comparison: rigid fits, 4×4 matrices in RAS mm, label resampling."""
from __future__ import annotations

import math

import numpy as np

from volseg.volume import Volume

FLIP = np.diag([-1.0, -1.0, 1.0, 1.0])  # RAS <-> LPS (its own inverse)


def rigid_fit(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The 4×4 rigid transform mapping ``source`` points (n×3) onto ``target`` in the least-squares sense
    (Kabsch); a translation only for fewer than three points or collinear points."""
    source = np.asarray(source, dtype=np.float64).reshape(-1, 3)
    target = np.asarray(target, dtype=np.float64).reshape(-1, 3)
    matrix = np.eye(4)
    if len(source) == 0:
        return matrix
    cs, ct = source.mean(axis=0), target.mean(axis=0)
    rotation = np.eye(3)
    if len(source) >= 3 and np.linalg.matrix_rank(source - cs, tol=1e-6) >= 2:
        u, _, vt = np.linalg.svd((source - cs).T @ (target - ct))
        d = np.sign(np.linalg.det(vt.T @ u.T)) or 1.0
        rotation = vt.T @ np.diag([1.0, 1.0, d]) @ u.T
    matrix[:3, :3] = rotation
    matrix[:3, 3] = ct - rotation @ cs
    return matrix


def apply(matrix: np.ndarray, points) -> np.ndarray:
    """``matrix`` (4×4) applied to points (n×3 or 3)."""
    points = np.asarray(points, dtype=np.float64)
    return points @ matrix[:3, :3].T + matrix[:3, 3]


def rotation_deg(matrix: np.ndarray) -> float:
    """The rotation angle of the (nearest) rotation in ``matrix``'s linear part, in degrees."""
    u, _, vt = np.linalg.svd(matrix[:3, :3])
    rotation = u @ vt
    cosine = (np.trace(rotation) - 1.0) / 2.0
    return math.degrees(math.acos(max(-1.0, min(1.0, cosine))))


def as_tuple(matrix: np.ndarray):
    """A 4×4 matrix as nested tuples of floats, last row exactly (0, 0, 0, 1)."""
    rows = [tuple(float(v) for v in row) for row in np.asarray(matrix, dtype=np.float64)[:3]]
    return (*rows, (0.0, 0.0, 0.0, 1.0))


def resample_labels(moving: Volume, onto: Volume, matrix: np.ndarray) -> np.ndarray:
    """``moving``'s labels on ``onto``'s grid (nearest neighbour); ``matrix`` maps ``onto``'s RAS points
    to ``moving``'s (the registration's direction). Outside ``moving``: 0."""
    from scipy import ndimage

    index = np.linalg.inv(moving.affine) @ np.asarray(matrix, dtype=np.float64) @ onto.affine
    return ndimage.affine_transform(moving.array, index[:3, :3], offset=index[:3, 3], output_shape=onto.shape,
                                    order=0, mode="constant", cval=0)
