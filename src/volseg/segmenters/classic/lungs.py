"""The lungs: which air inside the body is lung, its boundary, and the split into left and right.

Air inside the body (below ``LUNG_MAX_HU``) falls into connected components: the lungs with the
trachea, bowel gas, the stomach bubble, small pockets. A component is lung when its median HU is
that of aerated parenchyma (vessels and septa lift it above pure air). Smaller components (the
lung bases at the top of an abdominal CT) must also reach the top of the scan and be parenchyma
inside, away from their rim (gas in the stomach or bowel is pure air inside, however noisy). The boundary is then drawn on a
slightly smoothed image (``SMOOTH_MM``) so that it follows the partial-volume half-way line.
"""
from __future__ import annotations

import logging

import cc3d
import numpy as np
from scipy import ndimage

from volseg.segmenters.classic.grid import bounding_box, margin_voxels

log = logging.getLogger(__name__)

LUNG_MAX_HU = -400.0
SMOOTH_MM = 1.5
MIN_LUNG_ML = 1.0
LARGE_LUNG_ML = 400.0       # a component this large is lung unless it is pure air (bowel, free air)
PARENCHYMA_MEDIAN_HU = (-930.0, -600.0)  # of the inside of a smaller component
PURE_AIR_MEDIAN_HU = -985.0
MAX_CANDIDATES = 40


def find_lungs(hu: np.ndarray, body: np.ndarray, spacing) -> np.ndarray:
    """Lung air (with the trachea and bronchi connected to it) on the input grid; vessels not filled."""
    air = (hu < LUNG_MAX_HU) & body
    labels = cc3d.connected_components(air, connectivity=26)
    stats = cc3d.statistics(labels)
    counts = np.asarray(stats["voxel_counts"], dtype=np.int64)
    voxel_ml = float(np.prod(spacing)) / 1000.0
    order = [int(i) for i in np.argsort(-counts) if i != 0 and counts[i] * voxel_ml >= MIN_LUNG_ML]
    keep = [comp for comp in order[:MAX_CANDIDATES]
            if _is_lung(hu, labels, comp, stats["bounding_boxes"][comp], counts[comp] * voxel_ml)]
    if not keep:
        return np.zeros(hu.shape, bool)
    lungs = np.isin(labels, keep)
    return _smooth_boundary(hu, body, lungs, spacing)


def _is_lung(hu, labels, comp: int, box, volume_ml: float) -> bool:
    """Large air that is not pure air; or smaller air reaching the top whose inside is parenchyma."""
    mask = labels[box] == comp
    if volume_ml >= LARGE_LUNG_ML:
        median = float(np.median(hu[box][mask]))
        verdict = median > PURE_AIR_MEDIAN_HU
    else:
        inner = ndimage.binary_erosion(mask)  # away from the partial-volume rim of gas pockets
        median = float(np.median(hu[box][inner if inner.any() else mask]))
        reaches_top = box[2].stop >= hu.shape[2]
        verdict = reaches_top and PARENCHYMA_MEDIAN_HU[0] < median < PARENCHYMA_MEDIAN_HU[1]
    log.debug("air component %d: %.1f mL, median %.0f HU -> %s", comp, volume_ml, median,
              "lung" if verdict else "not lung")
    return verdict


def _smooth_boundary(hu, body, lungs, spacing) -> np.ndarray:
    """Re-threshold a lightly smoothed image near the lungs, without growing into new air."""
    box = bounding_box(lungs, margin_voxels(3 * SMOOTH_MM, spacing))
    sigma = [SMOOTH_MM / s for s in spacing]
    smooth = ndimage.gaussian_filter(hu[box].astype(np.float32), sigma, mode="nearest")
    near = ndimage.binary_dilation(lungs[box], ndimage.generate_binary_structure(3, 1))
    out = np.zeros_like(lungs)
    out[box] = (smooth < LUNG_MAX_HU) & near & body[box]
    return out
