"""TotalSegmentator's resampling around nnU-Net: the image to the task's spacing first, labels back last.

TotalSegmentator 2.18 (``nnunet.py``: ``nnUNet_predict_image``) does not let nnU-Net resample. It
reorients the image to the closest canonical (RAS) orientation, resamples it to the task's
``resample`` spacing with ``scipy.ndimage.zoom`` (spline order ``--resampling_order``, default 1,
``mode="nearest"``) on the float64 voxel values, casts the result to int32 (truncation toward zero),
runs nnU-Net on that image (whose spacing is then the model's, so nnU-Net's own resampling is the
identity), merges the parts' labels on that grid, and zooms the label map back to the input shape
with order 0 (nearest neighbour). This module does the same on volseg's arrays (RAS, i, j, k order).

The zoom factor is ``input spacing / target spacing`` with the input spacing in float32, as a NIfTI
header stores it (``header.get_zooms()``); only the output shape depends on it (``ndimage.zoom``
maps output index ``o`` to input ``o·(n_in−1)/(n_out−1)``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from volseg.errors import ModelError


@dataclass(frozen=True)
class PreResample:
    """Resample to ``spacing_mm`` (x, y, z) with spline ``order`` before the network; nearest back."""

    spacing_mm: tuple[float, float, float]
    order: int = 1
    cast: str | None = "int32"  # TotalSegmentator stores the resampled image as int32

    def __post_init__(self):
        if len(self.spacing_mm) != 3 or min(self.spacing_mm) <= 0:
            raise ModelError(f"pre-resampling spacing must be three positive numbers, not {self.spacing_mm}")
        if not 0 <= self.order <= 5:
            raise ModelError(f"pre-resampling spline order must be 0..5, not {self.order}")

    def zoom_factors(self, spacing: tuple[float, ...]) -> np.ndarray:
        return np.asarray(spacing, dtype=np.float32)[:3] / np.asarray(self.spacing_mm, dtype=np.float64)

    def image(self, array: np.ndarray, spacing: tuple[float, ...]) -> tuple[np.ndarray, tuple[float, ...]]:
        """``array`` on the target grid and that grid's spacing (unchanged when already there)."""
        from scipy import ndimage

        if np.array_equal(np.asarray(spacing, dtype=np.float32)[:3], np.asarray(self.spacing_mm)):
            return array, tuple(float(s) for s in spacing)
        zoom = self.zoom_factors(spacing)
        # interpolated in float64 from the stored values (as on a float64 copy, without making one)
        out = ndimage.zoom(np.asarray(array), zoom, output=np.float64, order=self.order, mode="nearest")
        if self.cast:
            out = out.astype(self.cast)
        return out, tuple(float(s) for s in self.spacing_mm)

    def labels_back(self, labels: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        """Labels on the target grid zoomed back (order 0) to the input ``shape``: what
        ``ndimage.zoom(labels, shape / labels.shape, order=0, mode="nearest")`` gives, voxel for voxel.

        Order 0 reads one input voxel per output voxel, and the one it reads along each axis depends
        on that axis's output index alone (:func:`nearest_indices`), so the zoom is three 1-D
        gathers: a fraction of the spline code's time on a full-size CT."""
        if tuple(labels.shape) == tuple(shape):
            return labels
        zoom = np.asarray(shape, dtype=np.float64) / np.asarray(labels.shape, dtype=np.float64)
        got = tuple(int(round(n * z)) for n, z in zip(labels.shape, zoom))  # ndimage.zoom's output shape
        if got != tuple(shape):  # float rounding of n·zoom; TotalSegmentator would fail here
            raise ModelError(f"labels resampled to {got}, not the input shape {tuple(shape)}")
        out = labels
        for axis, (n_in, n_out) in enumerate(zip(labels.shape, shape)):
            out = np.take(out, nearest_indices(n_in, n_out), axis=axis)
        return np.ascontiguousarray(out)


def nearest_indices(n_in: int, n_out: int) -> np.ndarray:
    """The input index ``ndimage.zoom(..., order=0, mode="nearest")`` reads for each output index of
    one axis: ``floor(o·(n_in−1)/(n_out−1) + 0.5)`` in float64 (its C code's rounding for even
    orders), within ``0 … n_in−1``."""
    step = (n_in - 1) / (n_out - 1) if n_out > 1 else 1.0
    index = np.floor(np.arange(n_out, dtype=np.float64) * step + 0.5).astype(np.intp)
    return np.clip(index, 0, n_in - 1)
