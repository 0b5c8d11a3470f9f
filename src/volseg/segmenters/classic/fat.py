"""Fat: subcutaneous (between the skin and the body wall) and torso fat (inside the wall).

Fat is ``FAT_HU`` tissue in the body that is not partial volume (the rim of an air boundary, the
thin line where an organ meets fat) and not lung or bone. The body wall (abdominal and thoracic wall muscles, ribs, the
back muscles) is found slice by slice by casting rays from the centre of the trunk (the largest
body part of the slice on the block grid; arms and legs are not trunk):
along each ray, coming in from the skin, the wall starts at the first run of non-fat tissue at
least ``WALL_MIN_MM`` thick. The wall radius is median-filtered across neighbouring rays and
slices so that a gap in the wall or a vessel in the subcutaneous fat does not move it. Fat inside
the wall's outer edge is torso fat; all other fat (including the limbs') is subcutaneous.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from volseg.segmenters.classic.grid import BlockGrid

FAT_HU = (-190.0, -30.0)
AIR_RIM_HU = -300.0
MIN_FAT_NEIGHBOURS = 3
SKIN_MM = 3.0
WALL_MIN_MM = 4.0
RAY_STEP_MM = 1.0
N_RAYS = 360
SMOOTH_DEG = 15
SMOOTH_Z_MM = 6.0
MIN_TRUNK_SHARE = 0.6   # a slice whose largest body part holds less of it is not trunk (legs)

OUTSIDE, FAT, DEEP = 0, 1, 2


def fat_mask(hu: np.ndarray, body: np.ndarray) -> np.ndarray:
    """Fat-range voxels of the body, without partial-volume voxels.

    Dropped: voxels touching air (the rim of the skin, of bowel gas, of the lungs) and voxels with
    fewer than ``MIN_FAT_NEIGHBOURS`` fat voxels among their six face neighbours (the thin
    fat-range line where an organ meets fat, or noise in muscle).
    """
    fat = (hu >= FAT_HU[0]) & (hu <= FAT_HU[1]) & body
    fat &= ~_touching(hu < AIR_RIM_HU)
    return fat & (_face_neighbour_count(fat) >= MIN_FAT_NEIGHBOURS)


def _touching(mask: np.ndarray) -> np.ndarray:
    """``mask`` and the voxels sharing a face with it."""
    out = mask.copy()
    for lo, hi in _face_pairs():
        out[lo] |= mask[hi]
        out[hi] |= mask[lo]
    return out


def _face_neighbour_count(mask: np.ndarray) -> np.ndarray:
    count = np.zeros(mask.shape, np.uint8)
    for lo, hi in _face_pairs():
        count[lo] += mask[hi]
        count[hi] += mask[lo]
    return count


def _face_pairs():
    for axis in range(3):
        lo = [slice(None)] * 3
        hi = [slice(None)] * 3
        lo[axis], hi[axis] = slice(0, -1), slice(1, None)
        yield tuple(lo), tuple(hi)


def split_fat(hu: np.ndarray, body: np.ndarray, fat: np.ndarray, body_c: np.ndarray, grid: BlockGrid
              ) -> tuple[np.ndarray, np.ndarray]:
    """(subcutaneous, torso) fat on the input grid (axis 2 axial)."""
    sx, sy, sz = grid.spacing
    radius_mm = max(hu.shape[0] * sx, hu.shape[1] * sy)
    steps = np.arange(0.0, radius_mm, RAY_STEP_MM)
    angles = np.linspace(0.0, 2 * np.pi, N_RAYS, endpoint=False)
    nk = hu.shape[2]
    wall = np.full((nk, N_RAYS), np.nan)
    centres = np.full((nk, 2), np.nan)
    trunks_c: dict[int, np.ndarray | None] = {}
    fat_range = (hu >= FAT_HU[0]) & (hu <= FAT_HU[1])
    for k in np.flatnonzero(fat.any(axis=(0, 1))):
        kc = int(k) // grid.factors[2]
        if kc not in trunks_c:
            trunks_c[kc] = _trunk(body_c[:, :, kc])
        trunk_c = trunks_c[kc]
        if trunk_c is None:
            continue
        trunk = _up_2d(trunk_c, grid) & body[:, :, k]
        centres[k] = [(float(v.mean()) + 0.5) * f - 0.5 for v, f in zip(np.nonzero(trunk_c), grid.factors)]
        classes = np.where(trunk, np.where(fat_range[:, :, k], FAT, DEEP), OUTSIDE).astype(np.uint8)
        ci, cj = centres[k]
        wall[k] = _wall_radius(_sample_rays(classes, ci, cj, angles, steps, sx, sy), steps)
    wall = _smooth_wall(wall, max(3, round(SMOOTH_Z_MM / sz) | 1))
    torso = _inside_wall(fat, centres, wall, sx, sy)
    return fat & ~torso, torso


def _up_2d(mask_c: np.ndarray, grid: BlockGrid) -> np.ndarray:
    out = np.take(mask_c, np.arange(grid.shape[0]) // grid.factors[0], axis=0)
    return np.take(out, np.arange(grid.shape[1]) // grid.factors[1], axis=1)


def _trunk(body2: np.ndarray) -> np.ndarray | None:
    labels, n = ndimage.label(body2)
    if n == 0:
        return None
    counts = np.bincount(labels.ravel())[1:]
    if counts.max() < MIN_TRUNK_SHARE * counts.sum() or counts.max() < 50:
        return None
    return labels == (np.argmax(counts) + 1)


def _sample_rays(classes2, ci, cj, angles, steps, sx, sy) -> np.ndarray:
    ii = ci + np.outer(np.cos(angles), steps) / sx
    jj = cj + np.outer(np.sin(angles), steps) / sy
    return ndimage.map_coordinates(classes2, [ii, jj], order=0, mode="constant", cval=OUTSIDE)


def _wall_radius(rays: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """Per ray, the radius (mm) of the outer edge of the first thick non-fat run inside the skin."""
    n_steps = rays.shape[1]
    inbody = rays != OUTSIDE
    index = np.arange(n_steps)
    skin = np.where(inbody.any(axis=1), n_steps - 1 - np.argmax(inbody[:, ::-1], axis=1), -1)
    deep = (rays == DEEP).astype(np.int32)
    run = max(1, round(WALL_MIN_MM / RAY_STEP_MM))
    csum = np.concatenate([np.zeros((rays.shape[0], 1), np.int32), np.cumsum(deep, axis=1)], axis=1)
    thick = np.zeros_like(inbody)
    thick[:, run - 1:] = (csum[:, run:] - csum[:, :-run]) == run  # deep over [m-run+1, m]
    allowed = index[None, :] <= (skin - round(SKIN_MM / RAY_STEP_MM))[:, None]
    candidates = thick & allowed
    outer = np.where(candidates.any(axis=1), n_steps - 1 - np.argmax(candidates[:, ::-1], axis=1), 0)
    radius = steps[outer].astype(np.float64)
    radius[skin < 0] = np.nan
    return radius


def _smooth_wall(wall: np.ndarray, n_slices: int) -> np.ndarray:
    """Median of the wall radius over neighbouring rays and slices (slices without a trunk kept out)."""
    filled = np.where(np.isnan(wall), -1.0, wall)
    size = (n_slices, max(1, round(SMOOTH_DEG * N_RAYS / 360.0)) | 1)
    pad = size[1] // 2
    wrapped = np.concatenate([filled[:, -pad:], filled, filled[:, :pad]], axis=1) if pad else filled
    smooth = ndimage.median_filter(wrapped, size=size, mode="nearest")[:, pad:pad + filled.shape[1]]
    smooth[np.isnan(wall)] = np.nan
    return np.where(smooth < 0, wall, smooth)


def _inside_wall(fat: np.ndarray, centres: np.ndarray, wall: np.ndarray, sx: float, sy: float) -> np.ndarray:
    """The voxels of ``fat`` closer to their slice's centre than the wall along their ray."""
    torso = np.zeros_like(fat)
    wall = np.where(np.isnan(wall), -1.0, wall)
    centres = np.where(np.isnan(centres), 0.0, centres)
    for k0 in range(0, fat.shape[2], 32):  # in slabs, to bound memory
        i, j, k = np.nonzero(fat[:, :, k0:k0 + 32])
        k += k0
        di = (i - centres[k, 0]) * sx
        dj = (j - centres[k, 1]) * sy
        ray = np.round(np.arctan2(dj, di) * (N_RAYS / (2 * np.pi))).astype(np.int64) % N_RAYS
        inner = np.hypot(di, dj) < wall[k, ray]
        torso[i[inner], j[inner], k[inner]] = True
    return torso
