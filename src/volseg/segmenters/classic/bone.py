"""Bone: cortical bone and the marrow it encloses; not contrast-filled vessels, not what bone encloses.

Hysteresis thresholding: voxels above ``CANCELLOUS_HU`` count as bone only within ``NEAR_CORTEX_MM``
of cortical bone (above ``CORTICAL_HU``), so an enhanced aorta touching a vertebra is not taken.
Surface voxels that hold less than ``EDGE_FRACTION`` of the local bone contrast (the blurred rim of
dense cortex) are soft tissue.
Marrow too light to pass (fatty or osteoporotic) is added by filling, slice by slice on the block
grid, the holes the bone encloses; holes of soft-tissue HU (the spinal canal, the pelvic cavity,
the brain in the skull) and holes larger than any marrow cross-section stay open.
"""
from __future__ import annotations

import cc3d
import numpy as np
from scipy import ndimage

from volseg.postprocess import morphology as morph
from volseg.segmenters.classic.grid import BlockGrid

CORTICAL_HU = 250.0
CANCELLOUS_HU = 120.0
NEAR_CORTEX_MM = 6.0
MIN_BONE_ML = 0.1
SOFT_HOLE_HU = (-30.0, 60.0)  # holes of soft-tissue HU are canal, cavity or brain, not marrow...
MAX_SPECK_HOLE_MM2 = 20.0     # ... unless tiny
MAX_MARROW_AREA_MM2 = 2500.0  # the largest marrow cross-section (vertebral body, femoral head)
SOFT_TISSUE_HU = 40.0
MIN_BONE_NEIGHBOURS = 2
EDGE_FRACTION = 0.3          # surface voxels with less of the local bone contrast are partial volume
SLAB = 64


def segment_bone(hu: np.ndarray, body: np.ndarray, coarse_hu: np.ndarray, grid: BlockGrid) -> np.ndarray:
    cortex = (hu >= CORTICAL_HU) & body
    if not cortex.any():
        return cortex
    near_c = morph.dilate_mm(grid.down_fraction(cortex) > 0, NEAR_CORTEX_MM, grid.coarse_spacing)
    bone = np.empty_like(cortex)
    for k0 in range(0, grid.shape[2], SLAB):
        box = (slice(0, grid.shape[0]), slice(0, grid.shape[1]), slice(k0, min(grid.shape[2], k0 + SLAB)))
        bone[box] = (hu[box] >= CANCELLOUS_HU) & body[box] & grid.up(near_c, box)
    bone = _peel_partial_volume(bone, hu)
    bone &= _face_neighbours(bone) >= MIN_BONE_NEIGHBOURS  # lone noise voxels next to cortex
    bone &= ~_specks(bone, grid)
    marrow = _marrow_blocks(grid.down_fraction(bone) >= 0.5, coarse_hu, grid.coarse_spacing)
    for k0 in range(0, grid.shape[2], SLAB):
        box = (slice(0, grid.shape[0]), slice(0, grid.shape[1]), slice(k0, min(grid.shape[2], k0 + SLAB)))
        bone[box] |= grid.up(marrow, box) & body[box]
    return bone


def _peel_partial_volume(bone: np.ndarray, hu: np.ndarray) -> np.ndarray:
    """Drop surface voxels holding less than ``EDGE_FRACTION`` of the local bone contrast."""
    shell = bone & ~_all_neighbours(bone)
    i, j, k = np.nonzero(shell)
    local_max = hu[i, j, k].astype(np.float32)
    shape = bone.shape
    for axis in range(3):  # the six face neighbours
        for step in (-1, 1):
            n = [i, j, k]
            n[axis] = np.clip(n[axis] + step, 0, shape[axis] - 1)
            value = np.where(bone[n[0], n[1], n[2]], hu[n[0], n[1], n[2]], -1024).astype(np.float32)
            np.maximum(local_max, value, out=local_max)
    weak = hu[i, j, k] < SOFT_TISSUE_HU + EDGE_FRACTION * (local_max - SOFT_TISSUE_HU)
    out = bone.copy()
    out[i[weak], j[weak], k[weak]] = False
    return out


def _face_neighbours(mask: np.ndarray) -> np.ndarray:
    """How many of each voxel's six face neighbours are in ``mask``."""
    count = np.zeros(mask.shape, np.uint8)
    for axis in range(3):
        lo = [slice(None)] * 3
        hi = [slice(None)] * 3
        lo[axis], hi[axis] = slice(0, -1), slice(1, None)
        count[tuple(lo)] += mask[tuple(hi)]
        count[tuple(hi)] += mask[tuple(lo)]
    return count


def _all_neighbours(mask: np.ndarray) -> np.ndarray:
    """Voxels whose six face neighbours are all in ``mask`` (outside the array counts as in)."""
    inner = mask.copy()
    for axis in range(3):
        lo = [slice(None)] * 3
        hi = [slice(None)] * 3
        lo[axis], hi[axis] = slice(0, -1), slice(1, None)
        inner[tuple(lo)] &= mask[tuple(hi)]
        inner[tuple(hi)] &= mask[tuple(lo)]
    return inner


def _specks(bone: np.ndarray, grid: BlockGrid) -> np.ndarray:
    """Parts of ``bone`` in block-grid components smaller than ``MIN_BONE_ML`` (plaques, noise)."""
    blocks = grid.down_fraction(bone) > 0
    min_blocks = max(1, int(np.ceil(MIN_BONE_ML * 1000.0 / float(np.prod(grid.coarse_spacing)))))
    large = cc3d.dust(blocks, threshold=min_blocks, connectivity=26)
    small = blocks & ~large
    if not small.any():
        return np.zeros_like(bone)
    out = np.zeros_like(bone)
    for k0 in range(0, grid.shape[2], SLAB):
        box = (slice(0, grid.shape[0]), slice(0, grid.shape[1]), slice(k0, min(grid.shape[2], k0 + SLAB)))
        out[box] = grid.up(small, box) & bone[box]
    return out


def _marrow_blocks(bone_c: np.ndarray, coarse_hu: np.ndarray, spacing) -> np.ndarray:
    """Blocks enclosed by bone in their axial slice, except spinal-canal-like holes."""
    pixel_mm2 = spacing[0] * spacing[1]
    marrow = np.zeros_like(bone_c)
    for k in np.flatnonzero(bone_c.any(axis=(0, 1))):
        sl = bone_c[:, :, k]
        holes = ndimage.binary_fill_holes(sl) & ~sl
        if not holes.any():
            continue
        labels, n = ndimage.label(holes)
        area = np.bincount(labels.ravel(), minlength=n + 1)[1:] * pixel_mm2
        sums = np.bincount(labels.ravel(), weights=coarse_hu[:, :, k].ravel(), minlength=n + 1)[1:]
        mean = sums / np.maximum(area / pixel_mm2, 1)
        soft = (mean > SOFT_HOLE_HU[0]) & (mean < SOFT_HOLE_HU[1]) & (area > MAX_SPECK_HOLE_MM2)
        fill = np.concatenate([[False], ~soft & (area <= MAX_MARROW_AREA_MM2)])
        marrow[:, :, k] = fill[labels]
    return marrow
