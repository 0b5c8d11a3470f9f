"""Agreement of a segmentation with a reference, per structure, in physical units (numpy/scipy only).

* **Dice** = 2|P∩R| / (|P| + |R|).
* **Surface distances** (mm): a mask's surface is its voxels removed by one binary erosion (6-
  neighbour cross; voxels on the array's edge are surface). Every surface voxel's distance to the
  other mask's surface comes from ``scipy.ndimage.distance_transform_edt(sampling=spacing)``, on a
  box around both masks (exact: every surface voxel lies in it). ``hd95_mm`` is the larger of the
  two directed 95th percentiles, ``assd_mm`` the mean of both directions' distances together
  (average symmetric surface distance) - the definitions of MONAI's ``compute_hausdorff_distance
  (percentile=95)`` and ``compute_average_surface_distance(symmetric=True)``. ``spacing`` is the
  length of the affine's columns, exact on any rotated or permuted grid (not on a sheared one).
* **Empty masks**: both empty → Dice 1, distances 0; one empty → Dice 0, distances NaN (undefined;
  written as empty cells).
* **Lesion-wise detection**: the connected components (26-connected) of each mask are lesions. A
  reference lesion is *detected* when some predicted lesion overlaps it with a Dice of the two
  components (2|A∩B| / (|A| + |B|)) of at least ``min_overlap`` (default 0.1); a predicted lesion
  matching no reference lesion that way is a false positive. ``recall`` = detected / reference
  lesions (NaN without reference lesions), ``precision`` = matched / predicted lesions (NaN without
  predicted lesions).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

HD_PERCENTILE = 95.0
DEFAULT_MIN_OVERLAP = 0.1


@dataclass(frozen=True)
class Overlap:
    dice: float
    hd95_mm: float
    assd_mm: float
    pred_voxels: int
    ref_voxels: int


@dataclass(frozen=True)
class LesionDetection:
    n_reference: int
    n_predicted: int
    n_detected: int  # reference lesions matched by a predicted one
    n_matched_predicted: int  # predicted lesions matching a reference one
    min_overlap: float

    @property
    def recall(self) -> float:
        return self.n_detected / self.n_reference if self.n_reference else float("nan")

    @property
    def precision(self) -> float:
        return self.n_matched_predicted / self.n_predicted if self.n_predicted else float("nan")

    @property
    def false_positives(self) -> int:
        return self.n_predicted - self.n_matched_predicted


def spacing_of(affine: np.ndarray) -> tuple[float, float, float]:
    """Voxel spacing in mm along each array axis: the lengths of the affine's columns."""
    norms = np.linalg.norm(np.asarray(affine, dtype=np.float64)[:3, :3], axis=0)
    return float(norms[0]), float(norms[1]), float(norms[2])


def dice(pred: np.ndarray, ref: np.ndarray) -> float:
    """Dice of two boolean masks (1.0 when both are empty)."""
    p, r = int(np.count_nonzero(pred)), int(np.count_nonzero(ref))
    if p + r == 0:
        return 1.0
    return 2.0 * int(np.count_nonzero(pred & ref)) / (p + r)


def overlap(pred: np.ndarray, ref: np.ndarray, spacing) -> Overlap:
    """Dice, HD95 and ASSD (mm) of two boolean masks on one grid of voxel ``spacing`` (mm)."""
    pred = np.asarray(pred, dtype=bool)
    ref = np.asarray(ref, dtype=bool)
    if pred.shape != ref.shape:
        raise ValueError(f"masks differ in shape: {pred.shape} vs {ref.shape}")
    p, r = int(np.count_nonzero(pred)), int(np.count_nonzero(ref))
    if p == 0 and r == 0:
        return Overlap(1.0, 0.0, 0.0, 0, 0)
    if p == 0 or r == 0:
        return Overlap(0.0, float("nan"), float("nan"), p, r)
    hd95, assd = surface_distances(pred, ref, spacing)
    return Overlap(dice(pred, ref), hd95, assd, p, r)


def surface_distances(pred: np.ndarray, ref: np.ndarray, spacing) -> tuple[float, float]:
    """(HD95, ASSD) in mm between the surfaces of two non-empty masks."""
    box = _union_box(pred, ref)
    pred_s, ref_s = (_surface(np.pad(m[box], 1)) for m in (pred, ref))
    spacing = np.asarray(spacing, dtype=np.float64)
    to_ref = ndimage.distance_transform_edt(~ref_s, sampling=spacing)[pred_s]
    to_pred = ndimage.distance_transform_edt(~pred_s, sampling=spacing)[ref_s]
    hd95 = max(float(np.percentile(to_ref, HD_PERCENTILE)), float(np.percentile(to_pred, HD_PERCENTILE)))
    assd = float(np.concatenate([to_ref, to_pred]).mean())
    return hd95, assd


def detect_lesions(pred: np.ndarray, ref: np.ndarray, *, min_overlap: float = DEFAULT_MIN_OVERLAP,
                   connectivity: int = 26) -> LesionDetection:
    """Lesion-wise detection of the reference's connected components by the prediction's."""
    from volseg.postprocess.cc_labels import label_components_n

    if not 0.0 < min_overlap <= 1.0:
        raise ValueError(f"min_overlap must be in (0, 1], got {min_overlap}")
    pred_cc, n_pred = label_components_n(np.asarray(pred, dtype=np.uint8), connectivity=connectivity)
    ref_cc, n_ref = label_components_n(np.asarray(ref, dtype=np.uint8), connectivity=connectivity)
    if n_pred == 0 or n_ref == 0:
        return LesionDetection(int(n_ref), int(n_pred), 0, 0, min_overlap)
    pred_sizes = np.bincount(pred_cc.ravel(), minlength=n_pred + 1)
    ref_sizes = np.bincount(ref_cc.ravel(), minlength=n_ref + 1)
    both = (pred_cc > 0) & (ref_cc > 0)
    pairs = np.stack([ref_cc[both], pred_cc[both]], axis=1).astype(np.int64)
    keys, counts = np.unique(pairs[:, 0] * (n_pred + 1) + pairs[:, 1], return_counts=True)
    r, p = np.divmod(keys, n_pred + 1)
    pair_dice = 2.0 * counts / (ref_sizes[r] + pred_sizes[p])
    hit = pair_dice >= min_overlap
    return LesionDetection(int(n_ref), int(n_pred), int(np.unique(r[hit]).size), int(np.unique(p[hit]).size),
                           min_overlap)


def _surface(mask: np.ndarray) -> np.ndarray:
    return mask & ~ndimage.binary_erosion(mask)


def _union_box(a: np.ndarray, b: np.ndarray) -> tuple[slice, ...]:
    either = a | b
    box = []
    for axis in range(either.ndim):
        other = tuple(x for x in range(either.ndim) if x != axis)
        idx = np.nonzero(either.any(axis=other))[0]
        box.append(slice(int(idx[0]), int(idx[-1]) + 1))
    return tuple(box)
