"""Airway tree detection against a reference: centreline length and branches found by a prediction.

The reference's centreline is built exactly as :func:`volseg.postprocess.airway_tree.airway_tree`
builds it (largest component, holes filled per axial slice, resampled near-isotropic, skeletonised,
cleaned into branches with skan). Each centreline step (between consecutive skeleton points) is
*inside* the prediction when the prediction's voxel nearest to the step's midpoint is set.

* ``tree_length_detected`` = length of the reference centreline inside the prediction / its total
  length (the "tree length detected" of the EXACT'09 airway challenge, Lo et al., IEEE TMI 2012).
* ``branches_detected`` = fraction of reference branches with at least ``min_branch_fraction``
  (default 0.5) of their centreline length inside the prediction.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

DEFAULT_MIN_BRANCH_FRACTION = 0.5


@dataclass(frozen=True)
class AirwayDetection:
    reference_length_mm: float
    detected_length_mm: float
    n_reference_branches: int
    n_detected_branches: int

    @property
    def tree_length_detected(self) -> float:
        return self.detected_length_mm / self.reference_length_mm if self.reference_length_mm else float("nan")

    @property
    def branches_detected(self) -> float:
        return self.n_detected_branches / self.n_reference_branches if self.n_reference_branches else float("nan")


def reference_centrelines(ref: np.ndarray, affine: np.ndarray, *,
                           min_branch_length_mm: float = 3.0) -> list[np.ndarray]:
    """The reference tree's cleaned branches as centrelines in (fractional) voxel indices of ``ref``."""
    from volseg.postprocess.airway_tree import _Frame, _isotropic_steps, _prepare, _resample
    from volseg.postprocess.morphology import axial_axis
    from volseg.postprocess.skeleton_graph import centreline_length, skeleton_graph

    ref = np.asarray(ref, dtype=bool)
    if not ref.any():
        return []
    affine = np.asarray(affine, dtype=np.float64)
    box = ndimage.find_objects(ref.astype(np.uint8))[0]
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    steps = _isotropic_steps(spacing, [b.stop - b.start for b in box])
    crop = np.pad(_resample(_prepare(ref[box], spacing, axial_axis(affine), 0.0), steps), 1)
    offset = np.array([b.start for b in box], dtype=np.float64)
    frame = _Frame(affine, steps, offset)
    radius = ndimage.maximum_filter(ndimage.distance_transform_edt(crop, sampling=spacing * steps), size=3)
    graph = skeleton_graph(crop, lambda path: centreline_length(frame(path)))
    if graph.edges:
        graph.clean(radius, min_branch_length_mm)
    return [(np.asarray(path) - 1.0) * steps + offset for _, _, path, _ in graph.edges.values()]


def detect_airway(pred: np.ndarray, ref: np.ndarray, affine: np.ndarray, *,
                  min_branch_fraction: float = DEFAULT_MIN_BRANCH_FRACTION) -> AirwayDetection:
    """Tree length and branches of the reference's centreline found inside ``pred`` (same grid)."""
    pred = np.asarray(pred, dtype=bool)
    affine = np.asarray(affine, dtype=np.float64)
    total = found = 0.0
    n_found = 0
    paths = [p for p in reference_centrelines(ref, affine) if len(p) >= 2]
    for path in paths:
        steps_mm = np.linalg.norm(np.diff(path, axis=0) @ affine[:3, :3].T, axis=1)
        mid = np.rint((path[1:] + path[:-1]) / 2.0).astype(np.int64)
        mid = np.clip(mid, 0, np.asarray(pred.shape) - 1)
        inside = pred[mid[:, 0], mid[:, 1], mid[:, 2]]
        length, hit = float(steps_mm.sum()), float(steps_mm[inside].sum())
        total += length
        found += hit
        n_found += int(length > 0 and hit >= min_branch_fraction * length)
    return AirwayDetection(total, found, len(paths), n_found)
