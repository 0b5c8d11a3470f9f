"""Morphology and component helpers whose sizes are in millimetres and millilitres, never voxels.

Erosion and dilation by a ball of radius ``r`` mm are isotropic in the patient on any anisotropic
grid: small balls are used as structuring elements, large ones through the exact Euclidean
distance transform with the voxel spacing (the two give the same result).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

Spacing = Sequence[float] | np.ndarray  # voxel size in mm per array axis


#: up to this many voxels in the ball, erosion/dilation use the ball as a structuring element;
#: larger balls use the Euclidean distance transform (same result, cost independent of the radius)
MAX_BALL_VOXELS = 125


def ball(radius_mm: float, spacing: Spacing) -> np.ndarray:
    """Boolean structuring element: the voxel offsets within ``radius_mm`` of the centre."""
    half = [int(np.floor(radius_mm / s)) for s in spacing]
    grids = np.meshgrid(*[np.arange(-h, h + 1) * s for h, s in zip(half, spacing)], indexing="ij")
    return sum(g * g for g in grids) <= radius_mm * radius_mm + 1e-9


def erode_mm(mask: np.ndarray, radius_mm: float, spacing: Spacing, *,
             outside: bool = False) -> np.ndarray:
    """Voxels of ``mask`` farther than ``radius_mm`` from the background (ball erosion).

    ``outside`` is what lies beyond the array: background (default), or mask (``True``: for
    objects cut by the field of view, whose cut faces are not surfaces).
    """
    if radius_mm <= 0:
        return mask.copy()
    element = ball(radius_mm, spacing)
    if element.sum() <= MAX_BALL_VOXELS:
        return ndimage.binary_erosion(mask, element, border_value=int(outside))
    if outside and mask.all():  # no background anywhere: nothing to erode from
        return mask.copy()
    padded = np.pad(mask, 1, constant_values=outside)
    dist = ndimage.distance_transform_edt(padded, sampling=spacing)
    return dist[1:-1, 1:-1, 1:-1] > radius_mm


def dilate_mm(mask: np.ndarray, radius_mm: float, spacing: Spacing) -> np.ndarray:
    """Voxels within ``radius_mm`` of ``mask`` (ball dilation)."""
    if radius_mm <= 0 or not mask.any():
        return mask.copy()
    element = ball(radius_mm, spacing)
    if element.sum() <= MAX_BALL_VOXELS:
        return ndimage.binary_dilation(mask, element)
    margin = [int(np.ceil(radius_mm / s)) + 1 for s in spacing]
    box = _bounding_box(mask, margin)
    out = np.zeros_like(mask, dtype=bool)
    dist = ndimage.distance_transform_edt(~mask[box], sampling=spacing)
    out[box] = dist <= radius_mm
    return out


def distance_inside_mm(mask: np.ndarray, spacing: Spacing, *, outside: bool = False) -> np.ndarray:
    """Distance (mm) from each voxel of ``mask`` to the nearest background voxel (0 outside).

    ``outside`` is what lies beyond the array, as in :func:`erode_mm`.
    """
    if outside and mask.all():
        return np.full(mask.shape, np.inf)
    padded = np.pad(mask, 1, constant_values=outside)
    return ndimage.distance_transform_edt(padded, sampling=spacing)[1:-1, 1:-1, 1:-1]


def _bounding_box(mask: np.ndarray, margin: Sequence[int]) -> tuple[slice, ...]:
    box = []
    for axis in range(mask.ndim):
        other = tuple(a for a in range(mask.ndim) if a != axis)
        hits = np.flatnonzero(mask.any(axis=other))
        box.append(slice(max(0, int(hits[0]) - margin[axis]), min(mask.shape[axis], int(hits[-1]) + 1 + margin[axis])))
    return tuple(box)


def close_mm(mask: np.ndarray, radius_mm: float, spacing: Spacing) -> np.ndarray:
    pad = [int(np.ceil(radius_mm / s)) + 1 for s in spacing]
    padded = np.pad(mask, [(p, p) for p in pad], constant_values=False)
    closed = erode_mm(dilate_mm(padded, radius_mm, spacing), radius_mm, spacing)
    return closed[tuple(slice(p, -p) for p in pad)] | mask


def components(mask: np.ndarray, *, connectivity: int = 26) -> tuple[np.ndarray, np.ndarray]:
    """(component label array, voxel count per component with index 0 = background)."""
    from volseg.postprocess.cc_labels import label_components

    labels = label_components(mask.astype(np.uint8, copy=False), connectivity=connectivity)
    return labels, np.bincount(labels.ravel())


def largest_component(mask: np.ndarray, *, connectivity: int = 26) -> np.ndarray:
    if not mask.any():
        return mask.copy()
    labels, counts = components(mask, connectivity=connectivity)
    counts[0] = 0
    return labels == int(np.argmax(counts))


def fill_holes_per_slice(mask: np.ndarray, axis: int) -> np.ndarray:
    """Fill 2-D holes slice by slice along ``axis`` (the axial axis for body masks)."""
    out = np.empty_like(mask)
    for k in range(mask.shape[axis]):
        index: list[slice | int] = [slice(None)] * 3
        index[axis] = k
        out[tuple(index)] = ndimage.binary_fill_holes(mask[tuple(index)])
    return out


def axial_axis(affine: np.ndarray) -> int:
    """The array axis most aligned with the patient's superior-inferior direction."""
    direction = np.asarray(affine, dtype=np.float64)[:3, :3]
    direction = direction / np.linalg.norm(direction, axis=0)
    return int(np.argmax(np.abs(direction[2])))
