"""Left and right lung, in the patient's frame (RAS x from the affine), even where the lungs touch.

On the block grid, each lung component is given a side by the patient x of its centre relative to
the body's midline. A component that holds both lungs (they touch at the anterior or posterior
junction line) is eroded by growing radii until it falls apart into a left and a right core; every
voxel then goes to the nearer core, so the cut runs through the narrow neck between the lungs
wherever it lies. When no radius separates them, each axial slice is cut where
the component is thinnest near the midline (a minimal cut), never along a fixed plane.
"""
from __future__ import annotations

import logging

import numpy as np
from scipy import ndimage

from volseg.postprocess import morphology as morph
from volseg.segmenters.classic.grid import BlockGrid, bounding_box, world_x

log = logging.getLogger(__name__)

LEFT, RIGHT = 1, 2
STRADDLE_FRACTION = 0.15    # a component with this share of voxels on each side holds both lungs
MAX_ERODE_MM = 30.0
MIN_CORE_FRACTION = 0.1     # the smaller core must hold this share of the larger one
CUT_BAND_MM = 50.0


def split_lungs(lungs: np.ndarray, grid: BlockGrid, affine: np.ndarray, body_c: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """(left, right) masks on the input grid whose union is ``lungs``."""
    left = np.zeros_like(lungs)
    right = np.zeros_like(lungs)
    box = bounding_box(lungs)
    if box is None:
        return left, right
    cbox = grid.coarse_box(box)
    frac = grid.down_fraction(lungs[tuple(slice(c.start * f, c.stop * f) for c, f in zip(cbox, grid.factors))])
    envelope = frac >= 0.5
    if not envelope.any():
        envelope = frac > 0
    coarse_affine = _coarse_affine(affine, grid, cbox)
    x = world_x(coarse_affine, envelope.shape)
    midline = _midline_x(body_c[cbox], x, envelope)
    sides = _label_sides(envelope, x, midline, grid.coarse_spacing)
    support = ndimage.binary_dilation(envelope, ndimage.generate_binary_structure(3, 1))
    sides = np.where(support, _nearest_label(sides, grid.coarse_spacing), 0).astype(np.uint8)
    full = grid.up(_paste(sides, cbox, grid.coarse_shape), box)
    inside = lungs[box]
    left[box] = inside & (full == LEFT)
    right[box] = inside & (full == RIGHT)
    return left, right


def _coarse_affine(affine: np.ndarray, grid: BlockGrid, cbox) -> np.ndarray:
    """Affine of the block grid cropped to ``cbox``: block centres in patient mm."""
    scale = np.diag([*grid.factors, 1]).astype(np.float64)
    scale[:3, 3] = [(f - 1) / 2.0 + c.start * f for f, c in zip(grid.factors, cbox)]
    return affine @ scale


def _paste(crop: np.ndarray, cbox, shape) -> np.ndarray:
    out = np.zeros(shape, dtype=crop.dtype)
    out[cbox] = crop
    return out


def _midline_x(body: np.ndarray, x: np.ndarray, lungs: np.ndarray) -> float:
    """Patient x of the body's midline over the lung slices: median of per-slice trunk centres."""
    centres = []
    for k in np.flatnonzero(lungs.any(axis=(0, 1))):
        labels, n = ndimage.label(body[:, :, k])
        if n == 0:
            continue
        trunk = labels == (np.argmax(np.bincount(labels.ravel())[1:]) + 1)
        centres.append(float(x[:, :, k][trunk].mean()))
    return float(np.median(centres)) if centres else float(x[lungs].mean())


def _label_sides(envelope: np.ndarray, x: np.ndarray, midline: float, spacing) -> np.ndarray:
    labels, counts = morph.components(envelope, connectivity=26)
    sides = np.zeros(envelope.shape, np.uint8)
    for comp in np.argsort(-counts):
        if comp == 0 or counts[comp] == 0:
            continue
        mask = labels == comp
        on_left = float(np.mean(x[mask] < midline))
        if min(on_left, 1.0 - on_left) >= STRADDLE_FRACTION and counts[comp] >= 8:
            sides[mask] = _split_component(mask, x, midline, spacing)[mask]
        else:
            sides[mask] = LEFT if on_left >= 0.5 else RIGHT
    return sides


def _split_component(mask: np.ndarray, x: np.ndarray, midline: float, spacing) -> np.ndarray:
    depth = ndimage.distance_transform_edt(np.pad(mask, 1), sampling=spacing)[1:-1, 1:-1, 1:-1]
    step = max(spacing)
    radius = step
    while radius <= min(MAX_ERODE_MM, float(depth.max())):
        cores, counts = morph.components(depth > radius, connectivity=26)
        order = [int(c) for c in np.argsort(-counts) if c != 0 and counts[c] > 0]
        if len(order) >= 2 and counts[order[1]] >= MIN_CORE_FRACTION * counts[order[0]]:
            a, b = order[0], order[1]
            xa, xb = float(x[cores == a].mean()), float(x[cores == b].mean())
            if (xa - midline) * (xb - midline) < 0 or abs(xa - xb) > 40.0:
                markers = np.zeros(mask.shape, np.int16)
                markers[cores == a] = RIGHT if xa > xb else LEFT
                markers[cores == b] = LEFT if xa > xb else RIGHT
                log.debug("lungs: split by erosion at %.1f mm", radius)
                return _grow_back(markers, mask, spacing)
        radius += step
    log.debug("lungs: erosion did not separate them; minimal cut per slice")
    return _minimal_cut(mask, x, midline, spacing)


def _grow_back(cores: np.ndarray, mask: np.ndarray, spacing) -> np.ndarray:
    """Give every voxel of ``mask`` the label of the nearest core (Euclidean, in mm)."""
    _, index = ndimage.distance_transform_edt(cores == 0, sampling=spacing, return_indices=True)
    return np.where(mask, cores[tuple(index)], 0).astype(np.uint8)


def _minimal_cut(mask: np.ndarray, x: np.ndarray, midline: float, spacing) -> np.ndarray:
    """Per axial slice, cut where the fewest voxels lie across (nearest the midline on ties).

    Only places within ``CUT_BAND_MM`` of the midline and between the 10th and 90th percentile of
    the slice's x count: the curved outer edges of the lungs are thin too, but are no junction.
    """
    out = np.zeros(mask.shape, np.uint8)
    width = max(spacing[0], 1.0)
    for k in np.flatnonzero(mask.any(axis=(0, 1))):
        sl = mask[:, :, k]
        xs = x[:, :, k][sl]
        q10, q90 = np.percentile(xs, [10, 90])
        lo, hi = max(float(q10), midline - CUT_BAND_MM), min(float(q90), midline + CUT_BAND_MM)
        cut = midline
        if hi - lo > width:
            hist, edges = np.histogram(xs, bins=np.arange(lo, hi + 1e-6, width))
            centres = (edges[:-1] + edges[1:]) / 2.0
            thinnest = np.flatnonzero(hist == hist.min())
            cut = float(centres[thinnest[np.argmin(np.abs(centres[thinnest] - midline))]])
        out[:, :, k][sl & (x[:, :, k] < cut)] = LEFT
        out[:, :, k][sl & (x[:, :, k] >= cut)] = RIGHT
    return out


def _nearest_label(sides: np.ndarray, spacing) -> np.ndarray:
    """Extend the labels to every block by nearest labelled block (for voxels at the envelope edge)."""
    if not sides.any() or sides.all():
        return sides
    _, index = ndimage.distance_transform_edt(sides == 0, sampling=spacing, return_indices=True)
    return sides[tuple(index)]
