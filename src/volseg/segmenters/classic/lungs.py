"""The lungs: which air inside the body is lung, its boundary, and the split into left and right.

Air inside the body (below ``LUNG_MAX_HU``) falls into connected components: the lungs with the
trachea, bowel gas, the stomach bubble, small pockets. A component is lung when its median HU is
that of aerated parenchyma (vessels and septa lift it above pure air) and, unless it is large, when
it reaches the top of the scan (the lung bases of an abdominal CT). The boundary is then drawn on a
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
PARENCHYMA_MEDIAN_HU = (-950.0, -600.0)
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
    keep = []
    top = hu.shape[2] - 1
    for comp in order[:MAX_CANDIDATES]:
        box = stats["bounding_boxes"][comp]
        values = hu[box][labels[box] == comp]
        median = float(np.median(values))
        volume_ml = counts[comp] * voxel_ml
        reaches_top = box[2].stop - 1 >= top
        if _is_lung(median, volume_ml, reaches_top):
            keep.append(comp)
        log.debug("air component %d: %.1f mL, median %.0f HU, top %s -> %s", comp, volume_ml, median,
                  reaches_top, "lung" if comp in keep else "not lung")
    if not keep:
        return np.zeros(hu.shape, bool)
    lungs = np.isin(labels, keep)
    return _smooth_boundary(hu, body, lungs, spacing)


def _is_lung(median_hu: float, volume_ml: float, reaches_top: bool) -> bool:
    if volume_ml >= LARGE_LUNG_ML:
        return median_hu > PURE_AIR_MEDIAN_HU
    parenchyma = PARENCHYMA_MEDIAN_HU[0] < median_hu < PARENCHYMA_MEDIAN_HU[1]
    return parenchyma and reaches_top


def _smooth_boundary(hu, body, lungs, spacing) -> np.ndarray:
    """Re-threshold a lightly smoothed image near the lungs, without growing into new air."""
    box = bounding_box(lungs, margin_voxels(3 * SMOOTH_MM, spacing))
    sigma = [SMOOTH_MM / s for s in spacing]
    smooth = ndimage.gaussian_filter(hu[box].astype(np.float32), sigma, mode="nearest")
    near = ndimage.binary_dilation(lungs[box], ndimage.generate_binary_structure(3, 1))
    out = np.zeros_like(lungs)
    out[box] = (smooth < LUNG_MAX_HU) & near & body[box]
    return out
