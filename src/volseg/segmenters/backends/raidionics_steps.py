"""The Raidionics preprocessing, inference modes and reconstruction as small functions over numpy.

Facts follow the publisher's raidionics_seg_lib (``PreProcessing/pre_processing.py``,
``Utils/volume_utilities.py``, ``Inference/predictions.py``, ``predictions_reconstruction.py``);
the code is volseg's own. Every resampling is separable, so each is a 1-D matrix per axis applied
with the engine's :func:`~volseg.segmenters.engine.resample.apply_separable`:

* **to the model spacing** (nibabel ``resample_to_output``, order 1): the model grid starts on the
  first voxel centre, has ``ceil((n−1)·s/t)+1`` voxels, samples the input at ``k·t/s`` and is 0
  beyond the last voxel centre (``map_coordinates`` mode 'constant');
* **resize** (``skimage.transform.resize``, order 1): voxel areas aligned, mirrored edges, and a
  Gaussian anti-aliasing filter (σ = (n/m − 1)/2, mode 'mirror') along axes that shrink;
* **undo the resize** (``scipy.ndimage.zoom``): first and last voxel centres aligned;
* **back to the input grid** (nibabel ``resample_from_to``): input voxel i samples the model grid at
  ``i·s/t``, linear for probabilities, nearest for labels.
"""
from __future__ import annotations

from functools import lru_cache
from math import ceil

import numpy as np

from volseg.errors import ModelError

EPS = 1e-6


@lru_cache(maxsize=64)
def model_grid_matrix(n: int, spacing: float, target: float) -> np.ndarray:
    """(m, n) linear weights taking an axis of ``n`` voxels at ``spacing`` to the model grid."""
    m = model_grid_size(n, spacing, target)
    pos = np.arange(m) * (target / spacing)
    matrix = np.zeros((m, n))
    for k, p in enumerate(pos):
        if p > n - 1 + EPS:
            continue  # outside the image: the publisher's resampler fills 0 there
        lo = min(int(np.floor(p + EPS)), n - 1)
        w = max(p - lo, 0.0)
        matrix[k, lo] += 1.0 - w
        if w > EPS:
            matrix[k, lo + 1] += w
    matrix.flags.writeable = False
    return matrix


def model_grid_size(n: int, spacing: float, target: float) -> int:
    return int(ceil((n - 1) * spacing / target - EPS)) + 1


@lru_cache(maxsize=64)
def back_matrix(n: int, m: int, spacing: float, target: float) -> np.ndarray:
    """(n, m) linear weights sampling a model-grid axis of ``m`` voxels at the input voxels."""
    pos = np.minimum(np.arange(n) * (spacing / target), m - 1)
    lo = np.minimum(np.floor(pos + EPS).astype(int), m - 1)
    w = np.clip(pos - lo, 0.0, 1.0)
    matrix = np.zeros((n, m))
    matrix[np.arange(n), lo] = 1.0 - w
    hi = np.minimum(lo + 1, m - 1)
    matrix[np.arange(n), hi] += w
    matrix.flags.writeable = False
    return matrix


def back_indices(n: int, m: int, spacing: float, target: float) -> np.ndarray:
    """For each input voxel, the nearest model-grid voxel (labels)."""
    return np.clip(np.floor(np.arange(n) * (spacing / target) + 0.5).astype(int), 0, m - 1)


@lru_cache(maxsize=64)
def resize_matrix(n: int, m: int) -> np.ndarray:
    """(m, n) weights of ``skimage.transform.resize(order=1)`` along one axis (anti-aliased)."""
    from scipy import ndimage

    eye = np.eye(n)
    if m < n:
        eye = ndimage.gaussian_filter1d(eye, (n / m - 1) / 2, axis=0, mode="mirror", truncate=4.0)
    matrix = ndimage.zoom(eye, (m / n, 1.0), order=1, mode="mirror", grid_mode=True)
    if matrix.shape[0] != m:
        raise ValueError(f"resize {n}→{m} produced {matrix.shape[0]} samples")
    matrix.flags.writeable = False
    return matrix


@lru_cache(maxsize=64)
def unresize_matrix(m: int, n: int) -> np.ndarray:
    """(n, m) weights of ``scipy.ndimage.zoom(order=1)`` from ``m`` back to ``n`` voxels."""
    pos = np.arange(n) * ((m - 1) / (n - 1)) if n > 1 else np.zeros(1)
    lo = np.minimum(np.floor(pos + EPS).astype(int), m - 1)
    w = np.clip(pos - lo, 0.0, 1.0)
    matrix = np.zeros((n, m))
    matrix[np.arange(n), lo] = 1.0 - w
    matrix[np.arange(n), np.minimum(lo + 1, m - 1)] += w
    matrix.flags.writeable = False
    return matrix


def unresize_indices(m: int, n: int) -> np.ndarray:
    pos = np.arange(n) * ((m - 1) / (n - 1)) if n > 1 else np.zeros(1)
    return np.clip(np.floor(pos + 0.5).astype(int), 0, m - 1)


def apply(array: np.ndarray, matrices: dict[int, np.ndarray], device=None) -> np.ndarray:
    """Apply 1-D matrices along axes of ``array`` (float32) with torch on ``device``."""
    import torch

    from volseg.segmenters.engine.resample import apply_separable

    todo = {d: m for d, m in matrices.items() if not (m.shape[0] == m.shape[1] and np.allclose(m, np.eye(m.shape[0])))}
    if not todo:
        return np.asarray(array, dtype=np.float32)
    a = np.ascontiguousarray(array, dtype=np.float32)
    x = torch.from_numpy(a if a.flags.writeable else a.copy()).to(device or "cpu")  # torch needs writable memory
    return apply_separable(x, todo).cpu().numpy()


def resize_shape(shape: tuple[int, ...], size: tuple[int, ...]) -> tuple[int, int, int]:
    """The publisher's target shape: 3 values as given; 2 (axial slabs): z scaled like y."""
    if len(size) == 3:
        return int(size[0]), int(size[1]), int(size[2])
    return int(size[0]), int(size[1]), int(shape[2] * (size[1] / shape[1]))


def box_of(mask: np.ndarray) -> tuple[slice, slice, slice] | None:
    """The bounding box of the non-zero voxels, or None when there are none."""
    if not mask.any():
        return None
    out = []
    for axis in range(3):
        hit = np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != axis)))
        out.append(slice(int(hit[0]), int(hit[-1]) + 1))
    return out[0], out[1], out[2]


def minimum_box(data: np.ndarray) -> tuple[slice, slice, slice]:
    """MR 'minimum' crop: voxels at least 20 % of the value range (as a number, not above the
    minimum, as the publisher compares), holes filled, their bounding box."""
    from scipy import ndimage

    limit = int((float(data.max()) - float(data.min())) * 0.2)
    box = box_of(ndimage.binary_fill_holes(data >= limit))
    if box is None:
        raise ModelError("the 'minimum' background crop found no foreground in the image")
    return box


def largest_component_box(mask: np.ndarray) -> tuple[slice, slice, slice] | None:
    """Bounding box of the largest face-connected component (the publisher's ``scipy.ndimage.label``
    with its default structure; it keeps the brain mask inside that box)."""
    from scipy import ndimage

    labels, _ = ndimage.label(mask)
    counts = np.bincount(labels.ravel())
    if len(counts) < 2:
        return None
    return box_of(labels == int(np.argmax(counts[1:]) + 1))


def clip_intensities(data: np.ndarray, *, modality: str, percentiles: tuple[float, float]) -> np.ndarray:
    """The publisher's clipping: MR negatives to 0; a percentile range narrower than 0–100 clips
    the (unclipped) values to those percentiles instead. Its value clipping
    (``intensity_clipping_values``) is guarded by a condition that never holds, so never applies."""
    out = np.maximum(data, 0) if modality == "MRI" else data
    if percentiles[1] - percentiles[0] != 100:
        lo, hi = np.percentile(data, percentiles)
        out = np.clip(data, lo, hi)
    return out.astype(np.float32, copy=False)


def normalise(data: np.ndarray, method: str | None, *, modality: str) -> np.ndarray:
    """``default``: min–max to [0, 1]; ``zeromean``: (x − mean)/std; ``zeromean_nonzero`` (MR):
    the same over non-zero voxels with the sample std (ddof 1), zeros kept."""
    x = np.asarray(data, dtype=np.float32)
    if method == "default":
        lo, hi = float(x.min()), float(x.max())
        return (x - lo) / (hi - lo) if hi != lo else x
    if method == "zeromean":
        return (x - x.mean()) / x.std()
    if method == "zeromean_nonzero":
        if modality != "MRI":
            raise ModelError("normalization_method zeromean_nonzero is defined for MRI models only")
        out = x.copy()
        nz = x != 0
        values = x[nz]
        out[nz] = (values - values.mean()) / values.std(ddof=1)
        return out
    return x


def activate(scores: np.ndarray, kind: str, axis: int = -1) -> np.ndarray:
    if kind == "sigmoid":
        return 1.0 / (1.0 + np.exp(-scores))
    e = np.exp(scores - scores.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def patch_starts(n: int, patch: int, offset: int) -> list[int]:
    """Window starts along one axis: stride ``patch − offset``, the last one moved back to end at
    the border; windows that cannot fit are skipped (the publisher's tiling)."""
    stride = patch - offset
    starts = []
    for i in range(ceil(n / stride)):
        start = i * stride
        if start + patch >= n:
            start = n - patch
            if start < 0:
                continue
        if start not in starts:
            starts.append(start)
    return starts


def labels_from_probabilities(probs: np.ndarray, *, method: str, thresholds: tuple[float, ...] | None,
                              activation: str) -> np.ndarray:
    """Label per voxel from (C, ...) probabilities (C = network channels).

    ``thresholding``: a class is present where its probability reaches its threshold (one value for
    all when the list does not match the channels, as the publisher); where several are, the most
    probable wins. ``argmax``: softmax maps by argmax; sigmoid maps are background where no channel
    exceeds 0.5. Softmax channel c is label c; sigmoid channel c is label c + 1.
    """
    first = 0 if activation == "sigmoid" else 1
    fg = probs[first:]
    if method == "argmax" and activation != "sigmoid":
        return np.argmax(probs, axis=0).astype(np.int64)
    if method == "argmax":
        labels = np.argmax(fg, axis=0) + 1
        labels[fg.max(axis=0) <= 0.5] = 0
        return labels.astype(np.int64)
    thr = list(thresholds or ())
    if len(thr) != probs.shape[0]:
        thr = [thr[0]] * probs.shape[0]
    thr_fg = np.asarray(thr[first:], dtype=np.float32).reshape((-1,) + (1,) * (probs.ndim - 1))
    above = fg >= thr_fg
    score = np.where(above, fg, -1.0)
    labels = np.argmax(score, axis=0) + 1
    labels[~above.any(axis=0)] = 0
    return labels.astype(np.int64)
