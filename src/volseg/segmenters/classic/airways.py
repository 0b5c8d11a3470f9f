"""Airways: the trachea and bronchi as one tree, grown from the trachea with leak control.

1. The trachea is found in the top slices of the lung air: a small, round, pure-air cross-section
   near the midline that goes on through the next slices, and is connected (below -400 HU) to the
   lungs. No such section (an abdominal CT with lung bases only) means no airways.
2. The lumen is grown from it by adaptive-threshold region growing: the threshold rises from pure
   air in ``THRESHOLD_STEP_HU`` steps and the component of the seed is kept until its volume jumps
   (explosion: the growth has broken through a bronchial wall into the parenchyma) or passes a
   share of the lung volume.
3. Each end of the tree is then grown further on its own (:mod:`.airway_fronts`): wavefronts with
   per-branch explosion detection, so one leaking bronchus does not stop the others.
4. The lumen boundary is moved to the half-way line between air and wall (``HALF_WAY_HU``).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import cc3d
import numpy as np
from scipy import ndimage

from volseg.segmenters.classic.airway_tips import grow_tips
from volseg.segmenters.classic.grid import bounding_box, margin_voxels

log = logging.getLogger(__name__)

TRACHEA_AREA_MM2 = (40.0, 800.0)
TRACHEA_MAX_MEDIAN_HU = -900.0
TRACHEA_MAX_OFFCENTRE_MM = 40.0
TRACHEA_MIN_LENGTH_MM = 10.0
START_HU = -1000.0
THRESHOLD_STEP_HU = 20.0
MAX_THRESHOLD_HU = -700.0
EXPLOSION_FACTOR = 1.6
ESTABLISHED_ML = 5.0         # below this the lumen is still connecting up: jumps are not leaks
MAX_LUNG_FRACTION = 0.04     # the tree never exceeds this share of the lung volume
HALF_WAY_HU = -500.0


@dataclass(frozen=True)
class Trachea:
    seed: np.ndarray          # voxels of the top trachea cross-section (input grid)
    slice_index: int
    lumen_hu: float


def find_trachea(hu: np.ndarray, lung_air: np.ndarray, body: np.ndarray, affine, spacing) -> Trachea | None:
    """The top cross-section of the trachea within the lung air (axis 2 axial, superior last)."""
    slices = np.flatnonzero(lung_air.any(axis=(0, 1)))
    if slices.size == 0:
        return None
    lowest = int(slices[0] + 0.5 * (slices[-1] - slices[0]))
    need = max(1, int(np.ceil(TRACHEA_MIN_LENGTH_MM / spacing[2])))
    for k in range(int(slices[-1]), lowest - 1, -1):
        found = _trachea_section(hu[:, :, k], lung_air[:, :, k], body[:, :, k], affine, k, spacing)
        if found is None:
            continue
        run, current = 1, found
        for kk in range(k - 1, max(lowest, k - need) - 1, -1):
            below = _trachea_section(hu[:, :, kk], lung_air[:, :, kk], body[:, :, kk], affine, kk, spacing)
            if below is None or not (below & ndimage.binary_dilation(current, iterations=3)).any():
                break
            run, current = run + 1, below
        if run >= need:
            seed = np.zeros(hu.shape, bool)
            seed[:, :, k] = found
            lumen = float(np.median(hu[:, :, k][found]))
            log.debug("airways: trachea found at slice %d (lumen %.0f HU)", k, lumen)
            return Trachea(seed, k, lumen)
    return None


def _trachea_section(hu2, air2, body2, affine, k, spacing) -> np.ndarray | None:
    labels, n = ndimage.label(air2, structure=np.ones((3, 3)))
    if n == 0:
        return None
    pixel_mm2 = spacing[0] * spacing[1]
    counts = np.bincount(labels.ravel())
    i, j = np.indices(air2.shape)
    x = affine[0, 0] * i + affine[0, 1] * j + affine[0, 2] * k + affine[0, 3]
    trunk = _trunk(body2)
    if not trunk.any():
        return None
    midline = float(x[trunk].mean())
    best, best_offset = None, TRACHEA_MAX_OFFCENTRE_MM
    for comp in range(1, n + 1):
        area = counts[comp] * pixel_mm2
        if not TRACHEA_AREA_MM2[0] <= area <= TRACHEA_AREA_MM2[1]:
            continue
        mask = labels == comp
        ii, jj = np.nonzero(mask)
        fill = counts[comp] / float((np.ptp(ii) + 1) * (np.ptp(jj) + 1))
        if fill < 0.45 or float(np.median(hu2[mask])) > TRACHEA_MAX_MEDIAN_HU:
            continue
        offset = abs(float(x[mask].mean()) - midline)
        if offset < best_offset:
            best, best_offset = mask, offset
    return best


def _trunk(body2: np.ndarray) -> np.ndarray:
    labels, n = ndimage.label(body2)
    if n == 0:
        return body2
    return labels == (np.argmax(np.bincount(labels.ravel())[1:]) + 1)


def grow_airways(hu: np.ndarray, lung_air: np.ndarray, body: np.ndarray, trachea: Trachea,
                 spacing) -> np.ndarray:
    """The airway lumen on the input grid: one connected tree holding the trachea seed."""
    around = bounding_box(lung_air | trachea.seed, margin_voxels(5.0, spacing))
    if around is None:  # no seed and no lung air: no tree
        return np.zeros(hu.shape, bool)
    box = (around[0], around[1], slice(around[2].start, trachea.slice_index + 1))
    hu_box = hu[box]
    allowed = body[box]
    seed = trachea.seed[box]
    voxel_ml = float(np.prod(spacing)) / 1000.0
    cap = MAX_LUNG_FRACTION * np.count_nonzero(lung_air) * voxel_ml
    tree, threshold = _adaptive_threshold(hu_box, allowed, seed, cap / voxel_ml, ESTABLISHED_ML / voxel_ml)
    global_ml = np.count_nonzero(tree) * voxel_ml
    tree = grow_tips(tree, seed, hu_box, allowed, threshold, spacing, int(cap / voxel_ml))
    log.debug("airways: region growing stopped at %.0f HU (%.1f mL), %.1f mL after growing the tips",
             threshold, global_ml, np.count_nonzero(tree) * voxel_ml)
    tree = _half_way_boundary(tree, hu_box, allowed, seed)
    out = np.zeros(hu.shape, bool)
    out[box] = tree
    return out


def _adaptive_threshold(hu_box, allowed, seed, max_voxels, established_voxels) -> tuple[np.ndarray, float]:
    """Raise the threshold until the seed's component explodes; the last one before it."""
    best = seed.copy()
    best_t = START_HU
    previous = 0
    t = START_HU
    while t <= MAX_THRESHOLD_HU:
        grown = _seed_component(hu_box < t, allowed, seed)
        n = int(np.count_nonzero(grown))
        if n > max_voxels or (previous >= established_voxels and n > EXPLOSION_FACTOR * previous):
            log.debug("airways: explosion at %.0f HU (%d -> %d voxels)", t, previous, n)
            break
        best, best_t, previous = grown, t, n
        t += THRESHOLD_STEP_HU
    return best, best_t


def _seed_component(candidate: np.ndarray, allowed: np.ndarray, seed: np.ndarray) -> np.ndarray:
    candidate = (candidate & allowed) | seed
    labels = cc3d.connected_components(candidate, connectivity=6)
    keep = np.zeros(int(labels.max()) + 1, bool)
    keep[labels[seed]] = True
    keep[0] = False
    return keep[labels]


def _half_way_boundary(tree, hu_box, allowed, seed) -> np.ndarray:
    """Add the partial-volume rim (below the half-way HU, one voxel deep) and fill small holes."""
    ball = ndimage.generate_binary_structure(3, 1)
    rim = ndimage.binary_dilation(tree, ball) & (hu_box < HALF_WAY_HU) & allowed
    tree = tree | rim
    closed = ndimage.binary_closing(np.pad(tree, 1), ball)[1:-1, 1:-1, 1:-1]
    return _seed_component(closed | tree, np.ones_like(tree), seed)
