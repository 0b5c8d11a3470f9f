"""Separable resampling between axis-aligned grids, as 1-D matrices applied with torch on the device.

Every interpolation used between the input grid and a model grid here (B-spline zoom as in
``skimage.transform.resize``, nnU-Net's out-of-plane ``map_coordinates``, torch's linear and
nearest modes) is separable: the n-D result is a 1-D linear map applied along each axis in turn.
So each axis gets its matrix, computed once by running the reference 1-D operation on unit vectors
(exact by construction, cached), and volumes are resampled by three tensor contractions on the
compute device. ``tests/backends`` compares the results with skimage/scipy on random volumes.

Label maps return to the input grid through :class:`AxisMap`, the sparse form of a matrix whose rows
are convex combinations of at most two neighbouring model voxels (linear or nearest interpolation).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch


@lru_cache(maxsize=64)
def zoom_matrix(n_in: int, n_out: int, order: int) -> np.ndarray:
    """(n_out, n_in) matrix of ``skimage.transform.resize(order, mode='edge', anti_aliasing=False)``.

    That is ``scipy.ndimage.zoom(grid_mode=True, mode='nearest')``: voxel areas aligned, edges
    extended, B-spline of ``order`` (with its prefilter for order > 1). Column j is the zoom of the
    j-th unit vector; all columns come from one zoom of the identity along its first axis (the
    second axis is sampled at its own knots, which a B-spline reproduces to rounding).
    """
    from scipy import ndimage

    matrix = ndimage.zoom(np.eye(n_in), (n_out / n_in, 1.0), order=order, mode="nearest", grid_mode=True)
    if matrix.shape != (n_out, n_in):
        raise ValueError(f"zoom {n_in}→{n_out} produced {matrix.shape[0]} samples")
    matrix.flags.writeable = False
    return matrix


@lru_cache(maxsize=64)
def coordinate_matrix(n_in: int, n_out: int, order: int) -> np.ndarray:
    """(n_out, n_in) matrix of ``map_coordinates`` at ``n_in/n_out·(o+½)−½``, mode 'nearest'.

    nnU-Net's "separate z" resampling uses this along the low-resolution axis (order 0).
    """
    from scipy import ndimage

    rows = float(n_in) / n_out * (np.arange(n_out) + 0.5) - 0.5
    grid = np.stack(np.broadcast_arrays(rows[:, None], np.arange(n_in, dtype=float)[None, :]))
    matrix = ndimage.map_coordinates(np.eye(n_in), grid, order=order, mode="nearest")
    matrix.flags.writeable = False
    return matrix


@lru_cache(maxsize=64)
def torch_interp_matrix(n_in: int, n_out: int, mode: str) -> np.ndarray:
    """(n_out, n_in) matrix of ``F.interpolate(size=n_out, mode=mode, align_corners=False)``.

    ``mode`` is 'linear', 'nearest' or 'nearest-exact' (torch's 1-D names; same weights as the 3-D
    'trilinear' mode along each axis).
    """
    import torch
    import torch.nn.functional as F

    eye = torch.eye(n_in, dtype=torch.float64)[:, None, :]  # (n_in, 1, n_in): unit vectors
    kwargs = {"align_corners": False} if mode == "linear" else {}
    out = F.interpolate(eye, size=n_out, mode=mode, **kwargs)[:, 0, :]  # (n_in, n_out)
    matrix = out.T.contiguous().numpy()
    matrix.flags.writeable = False
    return matrix


def apply_axis(x: torch.Tensor, matrix: np.ndarray, dim: int) -> torch.Tensor:
    """Apply the (n_out, n_in) ``matrix`` along ``dim`` of ``x`` (float32 on x's device)."""
    import torch

    m = torch.from_numpy(np.array(matrix, dtype=np.float32)).to(x.device)
    moved = torch.movedim(x, dim, -1)
    out = torch.matmul(moved, m.T)
    return torch.movedim(out, -1, dim).contiguous()


def apply_separable(x: torch.Tensor, matrices: dict[int, np.ndarray]) -> torch.Tensor:
    """Apply one matrix per dim (dims missing from ``matrices`` are left alone).

    The axes that shrink most go first, which keeps the intermediate volumes small.
    """
    order = sorted(matrices, key=lambda d: matrices[d].shape[0] / matrices[d].shape[1])
    for dim in order:
        x = apply_axis(x, matrices[dim], dim)
    return x


def nearest_indices(n_in: int, n_out: int) -> np.ndarray:
    """For each of ``n_out`` output voxels, the input voxel containing its centre (areas aligned)."""
    idx = np.floor((np.arange(n_out) + 0.5) * (float(n_in) / n_out)).astype(np.int64)
    return np.clip(idx, 0, n_in - 1)


@dataclass(frozen=True)
class AxisMap:
    """One output axis sampling one model axis: each output voxel is ``w_lo·v[lo] + w_hi·v[hi]``."""

    lo: np.ndarray  # (n_out,) int64
    hi: np.ndarray  # (n_out,) int64, lo or lo + 1
    w_lo: np.ndarray  # (n_out,) float64
    w_hi: np.ndarray  # (n_out,) float64, 0 where hi == lo
    nearest: np.ndarray  # (n_out,) int64: the model voxel containing the output voxel's centre
    n_in: int

    @property
    def n_out(self) -> int:
        return int(self.lo.shape[0])

    @property
    def two_tap(self) -> bool:
        """True when some output voxels mix two model voxels (not a pure selection)."""
        return bool(np.any((self.hi != self.lo) & (self.w_hi != 0.0)))

    @property
    def identity(self) -> bool:
        return self.n_in == self.n_out and not self.two_tap and bool(np.all(self.lo == np.arange(self.n_in)))

    @classmethod
    def from_matrix(cls, matrix: np.ndarray, *, atol: float = 1e-9) -> AxisMap:
        """The sparse form of ``matrix``; ValueError when a row is not a convex 1- or 2-tap blend."""
        n_out, n_in = matrix.shape
        nz = np.abs(matrix) > atol
        if not nz.any(axis=1).all():
            raise ValueError("resampling matrix has an empty row")
        lo = np.argmax(nz, axis=1).astype(np.int64)
        hi = np.minimum(lo + 1, n_in - 1)
        rows = np.arange(n_out)
        w_lo = matrix[rows, lo].astype(np.float64)
        w_hi = np.where(hi != lo, matrix[rows, hi], 0.0)
        rest = nz.copy()
        rest[rows, lo] = False
        rest[rows, hi] = False
        if rest.any() or (matrix < -atol).any() or not np.allclose(w_lo + w_hi, 1.0, atol=1e-6):
            raise ValueError("resampling is not a convex blend of two neighbours (order > 1?)")
        return cls(lo, hi, w_lo, w_hi, nearest_indices(n_in, n_out), n_in)
