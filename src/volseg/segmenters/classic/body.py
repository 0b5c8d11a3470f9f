"""The body: everything inside the skin, without the table, blankets, cushions or outside air.

On the block grid: tissue denser than ``BODY_MIN_HU`` is opened by a ball of ``OPEN_MM`` (this cuts
thin blankets, table shells, cables and pads from the skin), then only components that are thick
like a trunk or a limb are kept (a ball of ``MIN_THICKNESS_MM`` radius fits inside; tables and
cushions are flat and thin), holes are filled slice by slice, and the boundary is re-drawn on the
input grid with the same threshold, one block deep.
"""
from __future__ import annotations

import logging

import cc3d
import numpy as np
from scipy import ndimage

from volseg.postprocess import morphology as morph
from volseg.segmenters.classic.fov import enclosed_by_cut
from volseg.segmenters.classic.grid import BlockGrid, fill_holes_2d

log = logging.getLogger(__name__)

BODY_MIN_HU = -300.0
OPEN_MM = 4.0
MIN_THICKNESS_MM = 15.0   # radius of the largest inscribed ball: trunk ~100 mm, arm ~35 mm, table < 10 mm
MIN_PART_ML = 30.0        # body parts apart from the trunk (arms, legs) smaller than this are dropped


def segment_body(hu: np.ndarray, coarse_hu: np.ndarray, grid: BlockGrid) -> tuple[np.ndarray, np.ndarray]:
    """(body on the input grid, body on the block grid); both filled slice by slice (axis 2 axial)."""
    spacing = grid.coarse_spacing
    dense = coarse_hu > BODY_MIN_HU
    core = morph.erode_mm(dense, OPEN_MM, spacing, outside=True)  # the field of view cuts the body
    parts = _thick_parts(core, _thick_blocks(dense, spacing), spacing)
    if not parts.any():
        return np.zeros(grid.shape, bool), np.zeros(grid.coarse_shape, bool)
    body_c = morph.dilate_mm(parts, OPEN_MM, spacing) & dense
    body_c = fill_holes_2d(body_c)
    opened = enclosed_by_cut(body_c)  # lungs cut open by the field of view (fov.py)
    if opened.any():
        body_c = body_c | opened
        return _refine(hu, body_c, grid) | grid.up(opened), body_c
    return _refine(hu, body_c, grid), body_c


def _thick_blocks(dense: np.ndarray, spacing) -> np.ndarray:
    """Blocks deeper than ``MIN_THICKNESS_MM`` inside ``dense`` (judged on a grid twice as coarse)."""
    half = BlockGrid.for_spacing(dense.shape, spacing, 2.0 * max(spacing))
    depth = morph.distance_inside_mm(half.down_fraction(dense) >= 0.5, half.coarse_spacing, outside=True)
    return half.up(depth >= MIN_THICKNESS_MM)


def _thick_parts(core: np.ndarray, thick: np.ndarray, spacing) -> np.ndarray:
    """Components of the eroded tissue that are thick (trunk, limbs), not flat (table, pads)."""
    labels = cc3d.connected_components(core, connectivity=26)
    counts = np.bincount(labels.ravel())
    counts[0] = 0
    voxel_ml = float(np.prod(spacing)) / 1000.0
    big = counts * voxel_ml >= MIN_PART_ML
    big[int(np.argmax(counts))] = counts.max() > 0
    keep = np.zeros(counts.size, bool)
    keep[np.unique(labels[thick & core])] = True
    keep &= big
    keep[0] = False
    dropped = int(np.count_nonzero(big & ~keep)) - int(big[0])
    if dropped > 0:
        log.debug("body: dropped %d flat part(s): table, pads or blankets", dropped)
    return keep[labels]


def _refine(hu: np.ndarray, body_c: np.ndarray, grid: BlockGrid) -> np.ndarray:
    """Input-grid body: inner blocks whole, boundary blocks (one block either side) by threshold."""
    ball = ndimage.generate_binary_structure(3, 1)
    inner = ndimage.binary_erosion(body_c, ball, border_value=1)
    outer = ndimage.binary_dilation(body_c, ball)
    body = np.empty(grid.shape, dtype=bool)
    for k0 in range(0, grid.shape[2], 64):  # slabs keep temporaries small
        box = (slice(0, grid.shape[0]), slice(0, grid.shape[1]), slice(k0, min(grid.shape[2], k0 + 64)))
        band = grid.up(outer & ~inner, box)
        body[box] = grid.up(inner, box) | (band & (hu[box] > BODY_MIN_HU))
    return body
