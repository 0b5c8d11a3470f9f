"""Slice geometry of a DICOM series: orientation, slice order, spacing checks, tilt and the affine.

Per-frame geometry is taken from a parsed header (:func:`frame_geometry`, which also reads the
per-frame functional groups of enhanced multi-frame files); everything else is numpy on those
numbers (no file access), so every rule is testable on numbers.
All positions and vectors here are DICOM **LPS** millimetres; :func:`ras_affine` converts at the end.

Rules (tolerances are module constants):

* Orientations agree when every direction cosine is within ``IOP_TOL`` of the reference slice's.
* Slices are ordered by their position along the slice normal ``n = row_cosines × column_cosines``.
* Two slices closer than ``DUP_TOL_MM`` along the normal are duplicates (refused).
* The typical step is the median step. A step is regular within ``max(STEP_RTOL·typical,
  STEP_ATOL_MM)``; a step that is ≈ m × typical (m ≥ 2, within ``GAP_RTOL`` of typical) means
  m − 1 missing slices; anything else is non-uniform spacing. Both are refused.
* The k axis of the affine is the mean step vector ``(IPP_last − IPP_first) / (n − 1)``. When that
  vector drifts sideways (off the normal) by less than the position tolerance over the whole stack,
  it is snapped onto the normal (an orthogonal grid). Otherwise the affine is sheared (gantry tilt)
  and a warning gives the tilt angle. Every slice must lie within the position tolerance of
  ``IPP_0 + k · step``, so each voxel is placed where its slice says.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

IOP_TOL = 1e-3  # direction cosines (≈0.06°)
DUP_TOL_MM = 0.01
STEP_RTOL = 0.01
STEP_ATOL_MM = 0.01
GAP_RTOL = 0.05
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


class SliceGeometryError(ValueError):
    """A geometry problem; the reader turns it into a GeometryError naming the folder."""


@dataclass(frozen=True)
class StackGeometry:
    order: np.ndarray  # indices into the input slices, sorted along the normal (slice 0 first)
    affine_ras: np.ndarray
    tilt_deg: float  # 0.0 when the grid is orthogonal
    step_mm: float  # spacing along the normal


def cosines(iop) -> tuple[np.ndarray, np.ndarray]:
    """Row and column direction cosines (unit vectors) from ImageOrientationPatient."""
    v = np.asarray(iop, dtype=np.float64).reshape(2, 3)
    norms = np.linalg.norm(v, axis=1)
    if not np.all(np.isfinite(v)) or np.any(norms < 0.5) or np.any(norms > 1.5):
        raise SliceGeometryError(f"invalid ImageOrientationPatient {_fmt(v.ravel())}")
    row, col = v[0] / norms[0], v[1] / norms[1]
    if abs(row @ col) > 0.01:
        raise SliceGeometryError(
            f"ImageOrientationPatient row and column cosines are not orthogonal (dot {row @ col:.3f})"
        )
    return row, col


def orientation_clusters(iops: list) -> np.ndarray:
    """Label per slice; slices whose orientations agree (within IOP_TOL of a cluster's first) share one."""
    arr = np.asarray(iops, dtype=np.float64).reshape(len(iops), 6)
    labels = np.zeros(len(arr), dtype=int)
    reps: list[np.ndarray] = []
    for idx, iop in enumerate(arr):
        for lab, rep in enumerate(reps):
            if np.max(np.abs(iop - rep)) <= IOP_TOL:
                labels[idx] = lab
                break
        else:
            labels[idx] = len(reps)
            reps.append(iop)
    return labels


def orientation_outlier(iops: list) -> int | None:
    """Index of the one slice whose orientation differs from all others (which agree), else None."""
    if len(iops) < 3:
        return None
    labels = orientation_clusters(iops)
    counts = np.bincount(labels)
    if len(counts) == 2 and counts.min() == 1:
        return int(np.flatnonzero(labels == int(np.argmin(counts)))[0])
    return None


def check_orientations(iops: list) -> None:
    """Refuse a series whose slices do not all share one orientation (within IOP_TOL)."""
    labels = orientation_clusters(iops)
    counts = np.bincount(labels)
    if len(counts) > 1:
        arr = np.asarray(iops, dtype=np.float64)
        main = int(np.argmax(counts))
        bad = labels != main
        worst = float(np.max(np.abs(arr[bad] - arr[labels == main][0])))
        raise SliceGeometryError(
            f"mixed slice orientations: {int(bad.sum())} of {len(iops)} slices differ from the other "
            f"{int(counts[main])} (direction cosines differ by up to {worst:.3f}; tolerance {IOP_TOL})"
        )


def check_positions(positions: np.ndarray) -> float:
    """Check sorted positions along the normal; return the typical step (mm)."""
    steps = np.diff(positions)
    dup = steps < DUP_TOL_MM
    if np.any(dup):
        n_extra = int(dup.sum())
        n_places = int(np.count_nonzero(dup & ~np.concatenate(([False], dup[:-1]))))
        raise SliceGeometryError(
            f"duplicate slice positions: {n_places} position(s) hold more than one slice "
            f"({n_extra} extra slice(s) of {len(positions)}); a multi-phase or repeated acquisition "
            "in one series"
        )
    typical = float(np.median(steps))
    tol = max(STEP_RTOL * typical, STEP_ATOL_MM)
    irregular = np.abs(steps - typical) > tol
    if not np.any(irregular):
        return typical
    ratio = steps / typical
    mult = np.rint(ratio)
    is_gap = irregular & (mult >= 2) & (np.abs(steps - mult * typical) <= GAP_RTOL * typical)
    if np.all(is_gap == irregular):
        where = np.flatnonzero(is_gap)
        n_missing = int((mult[where] - 1).sum())
        parts = [
            f"{int(mult[k]) - 1} between slices {k} and {k + 1} "
            f"(positions {positions[k]:.2f} and {positions[k + 1]:.2f} mm)"
            for k in where[:3]
        ]
        more = f" and {len(where) - 3} more gap(s)" if len(where) > 3 else ""
        raise SliceGeometryError(
            f"missing slice(s): {n_missing} missing in {len(where)} gap(s) of the {typical:.4g} mm "
            f"step: {'; '.join(parts)}{more}"
        )
    raise SliceGeometryError(
        f"non-uniform slice spacing: steps from {steps.min():.4g} to {steps.max():.4g} mm "
        f"(typical {typical:.4g} mm, tolerance {tol:.3g} mm) along the slice normal"
    )


def stack_geometry(iop, pixel_spacing, ipps: np.ndarray) -> StackGeometry:
    """Sort slices, check their spacing and build the RAS affine of the stack."""
    row, col = cosines(iop)
    normal = np.cross(row, col)
    normal /= np.linalg.norm(normal)
    ipps = np.asarray(ipps, dtype=np.float64)
    n = len(ipps)
    if n < 2:
        raise SliceGeometryError(
            "a single slice is a 2-D image; volseg needs a 3-D volume (a series of parallel slices)"
        )
    proj = ipps @ normal
    order = np.argsort(proj, kind="stable")
    ipps, proj = ipps[order], proj[order]
    typical = check_positions(proj)
    ps_row, ps_col = float(pixel_spacing[0]), float(pixel_spacing[1])
    pos_tol = max(STEP_ATOL_MM, STEP_RTOL * min(ps_row, ps_col, typical))

    step = (ipps[-1] - ipps[0]) / (n - 1)
    along = float(step @ normal)
    sideways = step - along * normal
    tilt = float(np.degrees(np.arctan2(np.linalg.norm(sideways), along)))
    if np.linalg.norm(sideways) * (n - 1) <= pos_tol:
        step, tilt = along * normal, 0.0
    fitted = ipps[0] + np.arange(n)[:, None] * step
    off = np.linalg.norm(ipps - fitted, axis=1)
    if off.max() > pos_tol:
        k = int(np.argmax(off))
        raise SliceGeometryError(
            f"slice positions do not lie on a straight line: slice {k} is {off[k]:.3f} mm off "
            f"(tolerance {pos_tol:.3g} mm); irregular in-plane shifts or varying gantry tilt"
        )
    lps = np.eye(4)
    lps[:3, 0] = row * ps_col
    lps[:3, 1] = col * ps_row
    lps[:3, 2] = step
    lps[:3, 3] = ipps[0]
    return StackGeometry(order=order, affine_ras=LPS_TO_RAS @ lps, tilt_deg=tilt, step_mm=along)


def frame_geometry(ds, frame: int, enhanced: bool) -> dict:
    """Geometry and rescale of one frame: per-frame group, then shared group, then top level."""
    groups = []
    if enhanced:
        per = ds.get("PerFrameFunctionalGroupsSequence")
        if per is not None and frame < len(per):
            groups.append(per[frame])
        shared = ds.get("SharedFunctionalGroupsSequence")
        if shared:
            groups.append(shared[0])

    def get(seq: str, attr: str):
        for grp in groups:
            items = grp.get(seq)
            if items and attr in items[0]:
                return items[0][attr].value
        return ds.get(attr)

    image_type = get("CTImageFrameTypeSequence", "FrameType") or get("MRImageFrameTypeSequence", "FrameType")
    image_type = list(image_type or []) + list(ds.get("ImageType") or [])
    ipp, iop, ps = (get("PlanePositionSequence", "ImagePositionPatient"),
                    get("PlaneOrientationSequence", "ImageOrientationPatient"),
                    get("PixelMeasuresSequence", "PixelSpacing"))
    slope = to_float(get("PixelValueTransformationSequence", "RescaleSlope"))
    intercept = to_float(get("PixelValueTransformationSequence", "RescaleIntercept"))
    return {
        "ipp": to_floats(ipp, 3), "iop": to_floats(iop, 6), "pixel_spacing": to_floats(ps, 2),
        "slope": 1.0 if not slope else slope, "intercept": intercept or 0.0,
        "localizer": any("LOCALIZER" in str(v).upper() for v in image_type),
    }


def check_same_size(sizes: list[tuple[int, int]], spacings: list) -> None:
    """Refuse slices of different Rows×Columns or PixelSpacing (or without PixelSpacing)."""
    counts = Counter(sizes)
    if len(counts) > 1:
        shown = ", ".join(f"{r}×{c} ({n} slices)" for (r, c), n in counts.most_common())
        raise SliceGeometryError(f"slices differ in size (Rows×Columns): {shown}")
    if any(ps is None for ps in spacings):
        raise SliceGeometryError("PixelSpacing is missing, so the in-plane voxel size is unknown")
    ps = np.array(spacings, dtype=np.float64)
    if np.ptp(ps, axis=0).max() > 1e-4:
        raise SliceGeometryError(
            f"slices differ in PixelSpacing: row spacing {ps[:, 0].min():.4g}..{ps[:, 0].max():.4g} mm, "
            f"column spacing {ps[:, 1].min():.4g}..{ps[:, 1].max():.4g} mm"
        )


def to_floats(value, n: int) -> tuple[float, ...] | None:
    if value is None:
        return None
    out = tuple(float(v) for v in ([value] if isinstance(value, (int, float, str)) else value))
    if len(out) != n:
        raise ValueError(f"expected {n} values, got {len(out)}")
    return out


def to_float(value) -> float | None:
    try:
        return None if value is None or value == "" else float(value)
    except (TypeError, ValueError):
        return None


def _fmt(values) -> str:
    return "[" + ", ".join(f"{float(v):.4g}" for v in values) + "]"
