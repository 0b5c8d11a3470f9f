"""A label map onto its image's grid, losslessly: the same physical grid stored with another axis
order or reversed axes is permuted/flipped (never resampled); a grid that really differs is
refused with a message saying how (shape, spacing, origin or direction, with the numbers).
"""
from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np

from volseg.errors import GeometryError
from volseg.volume import Volume

ATOL_MM = 1e-2


def onto_grid(labels: Volume, grid: Volume, *, path: str | Path | None = None, what: str = "segmentation",
              against: str = "image", atol_mm: float = ATOL_MM, allow_subgrid: bool = False) -> Volume:
    """``labels`` on ``grid``'s grid (same array values, permuted/flipped), else a GeometryError.

    ``allow_subgrid``: a label map covering only part of the grid (a DICOM SEG stores frames only
    where segments are) is placed into it, background elsewhere, when its voxels are grid voxels.
    """
    if labels.same_grid(grid, atol_mm=atol_mm):
        return labels
    for perm in itertools.permutations(range(3)):
        if tuple(labels.shape[p] for p in perm) != grid.shape:
            continue
        for flips in itertools.product((False, True), repeat=3):
            candidate = _affine_after(labels, perm, flips)
            if np.allclose(candidate, grid.affine, rtol=0.0, atol=atol_mm):
                array = np.transpose(labels.array, perm)
                axes = tuple(i for i, f in enumerate(flips) if f)
                if axes:
                    array = np.flip(array, axis=axes)
                return Volume(np.ascontiguousarray(array), grid.affine, dict(labels.meta))
    if allow_subgrid:
        placed = _into_grid(labels, grid, atol_mm)
        if placed is not None:
            return placed
    raise GeometryError(f"{what} grid does not match the {against} grid (not a mere reorientation): "
                        f"{grid_difference(labels, grid, against)}", path=path)


def _into_grid(labels: Volume, grid: Volume, atol_mm: float) -> Volume | None:
    """``labels`` placed into the larger ``grid`` when its voxel centres are grid voxel centres."""
    for perm in itertools.permutations(range(3)):
        for flips in itertools.product((False, True), repeat=3):
            affine = _affine_after(labels, perm, flips)
            if not np.allclose(affine[:3, :3], grid.affine[:3, :3], rtol=0.0, atol=1e-4):
                continue
            start = grid.world_to_index(affine[:3, 3])
            corner = np.round(start).astype(int)
            shape = tuple(labels.shape[p] for p in perm)
            if not np.allclose(grid.index_to_world(corner), affine[:3, 3], atol=atol_mm):
                continue
            if np.any(corner < 0) or np.any(corner + np.array(shape) > np.array(grid.shape)):
                continue
            array = np.transpose(labels.array, perm)
            axes = tuple(i for i, f in enumerate(flips) if f)
            if axes:
                array = np.flip(array, axis=axes)
            full = np.zeros(grid.shape, dtype=labels.array.dtype)
            full[tuple(slice(c, c + n) for c, n in zip(corner, shape))] = array
            return Volume(full, grid.affine, dict(labels.meta))
    return None


def _affine_after(volume: Volume, perm: tuple[int, ...], flips: tuple[bool, ...]) -> np.ndarray:
    """The affine of ``volume.array.transpose(perm)`` flipped along ``flips`` (new axes)."""
    affine = volume.affine
    columns = affine[:3, :3][:, list(perm)].copy()
    origin = affine[:3, 3].copy()
    for axis, flip in enumerate(flips):
        if flip:
            n = volume.shape[perm[axis]]
            origin = origin + columns[:, axis] * (n - 1)
            columns[:, axis] = -columns[:, axis]
    out = np.eye(4)
    out[:3, :3] = columns
    out[:3, 3] = origin
    return out


def grid_difference(labels: Volume, grid: Volume, against: str = "image") -> str:
    """How two grids differ, in words with the numbers (canonical axis order, so a mere flip of
    a grid that also differs otherwise is not reported as the difference)."""
    a, b = _sorted_extent(labels), _sorted_extent(grid)
    parts = []
    if sorted(labels.shape) != sorted(grid.shape):
        parts.append(f"shape {labels.shape} vs {against} {grid.shape}")
    if not np.allclose(sorted(labels.spacing), sorted(grid.spacing), atol=1e-3):
        parts.append(f"spacing {_fmt(labels.spacing)} mm vs {against} {_fmt(grid.spacing)} mm")
    if not parts and not np.allclose(a[0], b[0], atol=ATOL_MM):
        parts.append(f"origin (corner) {_fmt(a[0])} mm vs {against} {_fmt(b[0])} mm")
    if not parts:
        parts.append(f"direction {labels.orientation} vs {against} {grid.orientation} "
                     f"(axes {_fmt(labels.direction.T.ravel())} vs {_fmt(grid.direction.T.ravel())})")
    return "; ".join(parts)


def _sorted_extent(volume: Volume) -> tuple[np.ndarray, np.ndarray]:
    """The lowest and highest RAS corner of the voxel-centre box."""
    corners = np.array(list(itertools.product(*[(0, n - 1) for n in volume.shape])), dtype=float)
    world = volume.index_to_world(corners)
    return world.min(axis=0), world.max(axis=0)


def _fmt(values) -> str:
    return "(" + ", ".join(f"{float(v):.4g}" for v in values) + ")"
