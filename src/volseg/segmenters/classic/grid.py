"""The working grids of ``classic-ct``: the input grid in RAS axis order, and a coarser block grid.

Shape-level steps (body clean-up, the fat compartments, the split of the two lungs) run on a grid
of blocks of about ``COARSE_MM`` millimetres, made by averaging whole blocks of input voxels. A
coarse voxel ``c`` covers exactly the input voxels ``c*f .. c*f+f-1`` along each axis, so mapping a
coarse mask back (:meth:`BlockGrid.up`) is exact: every input voxel takes the value of its block.
Boundaries are then refined on the input grid with thresholds.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

COARSE_MM = 2.5


@dataclass(frozen=True)
class BlockGrid:
    """Blocks of ``factors`` input voxels over an input grid of ``shape`` and ``spacing`` (mm)."""

    shape: tuple[int, int, int]
    spacing: tuple[float, float, float]
    factors: tuple[int, int, int]

    @classmethod
    def for_spacing(cls, shape, spacing, target_mm: float = COARSE_MM) -> BlockGrid:
        fx, fy, fz = (max(1, int(np.floor(target_mm / s + 0.5))) for s in spacing)
        nx, ny, nz = (int(n) for n in shape)
        sx, sy, sz = (float(s) for s in spacing)
        return cls((nx, ny, nz), (sx, sy, sz), (fx, fy, fz))

    @property
    def coarse_shape(self) -> tuple[int, int, int]:
        return tuple(-(-n // f) for n, f in zip(self.shape, self.factors))  # type: ignore[return-value]

    @property
    def coarse_spacing(self) -> tuple[float, float, float]:
        return tuple(s * f for s, f in zip(self.spacing, self.factors))  # type: ignore[return-value]

    @property
    def is_identity(self) -> bool:
        return self.factors == (1, 1, 1)

    def down_mean(self, array: np.ndarray) -> np.ndarray:
        """Mean of each block (float32); partial blocks at the far edges average what they hold.

        ``array`` is the whole input grid or a box of it that starts on block boundaries.
        """
        if self.is_identity:
            return array.astype(np.float32)
        shape = tuple(-(-n // f) for n, f in zip(array.shape, self.factors))
        out = np.empty(shape, dtype=np.float32)
        fk = self.factors[2]
        for k0 in range(0, array.shape[2], 16 * fk):  # in slabs, to bound temporary memory
            chunk = array[:, :, k0:k0 + 16 * fk]
            out[:, :, k0 // fk:(k0 + chunk.shape[2] + fk - 1) // fk] = self._block_mean(chunk)
        return out

    def _block_mean(self, chunk: np.ndarray) -> np.ndarray:
        f = self.factors
        n = [-(-s // ff) for s, ff in zip(chunk.shape, f)]
        pads = [(0, nn * ff - s) for nn, ff, s in zip(n, f, chunk.shape)]
        if any(p for _, p in pads):
            chunk = np.pad(chunk, pads, mode="edge")
        kind = np.int64 if chunk.dtype.kind in "iub" else np.float64
        total = chunk.reshape(n[0], f[0], n[1], f[1], n[2], f[2]).sum(axis=(1, 3, 5), dtype=kind)
        return (total / float(np.prod(f))).astype(np.float32)

    def down_fraction(self, mask: np.ndarray) -> np.ndarray:
        """Fraction of each block's voxels that are set in ``mask``."""
        return self.down_mean(mask.view(np.uint8) if mask.dtype == bool else mask)

    def up(self, coarse: np.ndarray, box: tuple[slice, slice, slice] | None = None) -> np.ndarray:
        """Each input voxel (of ``box``, default all) takes the value of its block."""
        region = box if box is not None else (slice(0, self.shape[0]), slice(0, self.shape[1]),
                                              slice(0, self.shape[2]))
        out = coarse
        for axis, (b, f) in enumerate(zip(region, self.factors)):
            out = np.take(out, np.arange(b.start, b.stop) // f, axis=axis)
        return out

    def coarse_box(self, box: tuple[slice, slice, slice]) -> tuple[slice, slice, slice]:
        """The blocks that cover an input-grid box."""
        return tuple(slice(b.start // f, -(-b.stop // f)) for b, f in zip(box, self.factors))  # type: ignore


def bounding_box(mask: np.ndarray, margin: tuple[int, int, int] = (0, 0, 0)
                 ) -> tuple[slice, slice, slice] | None:
    """Smallest box holding the 3D ``mask`` grown by ``margin`` voxels (clipped), or None when empty."""
    box = []
    for axis in range(mask.ndim):
        other = tuple(a for a in range(mask.ndim) if a != axis)
        hits = np.flatnonzero(mask.any(axis=other))
        if hits.size == 0:
            return None
        box.append(slice(max(0, int(hits[0]) - margin[axis]),
                         min(mask.shape[axis], int(hits[-1]) + 1 + margin[axis])))
    bx, by, bz = box
    return bx, by, bz


def margin_voxels(margin_mm: float, spacing) -> tuple[int, int, int]:
    return tuple(int(np.ceil(margin_mm / s)) for s in spacing)  # type: ignore[return-value]


def world_x(affine: np.ndarray, shape, box: tuple[slice, ...] | None = None) -> np.ndarray:
    """Patient RAS x (mm; larger = further to the patient's right) of every voxel of ``box``."""
    if box is None:
        box = tuple(slice(0, n) for n in shape)
    i, j, k = (np.arange(b.start, b.stop, dtype=np.float32) for b in box)
    a = affine[0].astype(np.float32)
    return (a[0] * i[:, None, None] + a[1] * j[None, :, None] + a[2] * k[None, None, :] + a[3])


def fill_holes_2d(mask: np.ndarray, axis: int = 2) -> np.ndarray:
    """Fill holes slice by slice along ``axis`` (axial slices for body and lungs)."""
    out = np.empty_like(mask)
    for k in range(mask.shape[axis]):
        index: list[slice | int] = [slice(None), slice(None), slice(None)]
        index[axis] = k
        sl = mask[tuple(index)]
        out[tuple(index)] = ndimage.binary_fill_holes(sl) if sl.any() else sl
    return out
