"""Per-structure measurements of a label map: pure functions over numpy arrays and the affine.

Every quantity is in physical units named in its field: ``volume_ml`` from the voxel count times
|det(affine)| (correct on oblique and anisotropic grids), positions in patient RAS millimetres,
intensities in HU (or, for other images, in the image's own units, named by ``intensity_unit``). Connected components use full 26-connectivity unless told otherwise.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np
from scipy import ndimage

MM3_PER_ML = 1000.0
INTENSITY_PERCENTILES = (5, 50, 95)


@dataclass(frozen=True)
class IntensityStats:
    mean_hu: float
    std_hu: float
    median_hu: float
    p5_hu: float
    p95_hu: float
    min_hu: float
    max_hu: float


@dataclass(frozen=True)
class StructureMeasurement:
    label: int
    name: str
    voxel_count: int
    volume_ml: float
    intensity: IntensityStats | None
    centroid_ras_mm: tuple[float, float, float] | None
    bbox_min_ras_mm: tuple[float, float, float] | None
    bbox_max_ras_mm: tuple[float, float, float] | None
    n_components: int
    largest_component_ml: float
    touches_fov: bool
    empty: bool
    intensity_unit: str | None = None  # "HU", or "image units (MR)": the unit of ``intensity``


def voxel_volume_mm3(affine: np.ndarray) -> float:
    return float(abs(np.linalg.det(np.asarray(affine, dtype=np.float64)[:3, :3])))


def intensity_stats(values: np.ndarray) -> IntensityStats | None:
    """Mean, std, median, 5th/95th percentile, min and max of the finite ``values`` (None when none
    is finite): NaN and ±Inf voxels are left out, never spread into every statistic."""
    values = values.astype(np.float64, copy=False)
    if values.dtype.kind == "f":
        values = values[np.isfinite(values)]
    if values.size == 0:
        return None
    p5, p50, p95 = np.percentile(values, INTENSITY_PERCENTILES)
    return IntensityStats(
        mean_hu=float(values.mean()),
        std_hu=float(values.std()),
        median_hu=float(p50),
        p5_hu=float(p5),
        p95_hu=float(p95),
        min_hu=float(values.min()),
        max_hu=float(values.max()),
    )


def intensity_fields(m: StructureMeasurement) -> dict[str, object]:
    """The report's intensity fields of one structure: ``*_intensity`` and ``intensity_unit`` for
    every image, and the same values as ``*_hu`` only when the unit is HU."""
    if m.intensity is None:
        return {"intensity_unit": m.intensity_unit} if m.intensity_unit else {}
    stats = dict(m.intensity.__dict__)
    fields: dict[str, object] = {k.replace("_hu", "_intensity"): v for k, v in stats.items()}
    fields["intensity_unit"] = m.intensity_unit or "HU"
    if fields["intensity_unit"] == "HU":
        fields.update(stats)
    return fields


def component_sizes(mask: np.ndarray, *, connectivity: int = 26) -> np.ndarray:
    """Voxel counts of the connected components of ``mask``, largest first."""
    import cc3d

    if not mask.any():
        return np.zeros(0, dtype=np.int64)
    labels = cc3d.connected_components(mask.astype(np.uint8, copy=False), connectivity=connectivity)
    sizes = np.bincount(labels.ravel())[1:]
    return np.sort(sizes)[::-1]


def outside_fov_mask(image: np.ndarray, *, padding_below_hu: float = -1500.0) -> np.ndarray | None:
    """Voxels outside a CT's reconstruction circle (scanners pad them with ≤ −1500 HU, e.g. −2048).

    Returns None when the image has no such padding. NaN and ±Inf voxels are damaged values, not
    padding: they never mark the edge of the field of view.
    """
    if image.dtype.kind not in "iuf":
        return None
    outside = image <= padding_below_hu
    if image.dtype.kind == "f":
        outside &= np.isfinite(image)
    return outside if outside.any() else None


def touches_fov(
    mask: np.ndarray, offset: tuple[int, ...], shape: tuple[int, ...], outside: np.ndarray | None
) -> bool:
    """True when the structure reaches the edge of the scanned field of view.

    ``mask`` is the structure cropped to its bounding box, placed at ``offset`` in an array of
    ``shape``. The edge is the array boundary and, when given, the padded region ``outside`` the
    reconstruction circle.
    """
    # the mask is cropped to its tight bounding box, so it reaches a face iff its box does
    if any(o == 0 or o + n == s for o, n, s in zip(offset, mask.shape, shape)):
        return True
    if outside is None:
        return False
    lo = [max(o - 1, 0) for o in offset]
    hi = [min(o + n + 1, s) for o, n, s in zip(offset, mask.shape, shape)]
    region_out = outside[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
    if not region_out.any():
        return False
    padded = np.zeros(region_out.shape, dtype=bool)
    sl = tuple(slice(o - l, o - l + n) for o, l, n in zip(offset, lo, mask.shape))
    padded[sl] = mask
    grown = ndimage.binary_dilation(padded, structure=ndimage.generate_binary_structure(3, 1))
    return bool((grown & region_out).any())


def measure_structures(
    labels: np.ndarray,
    affine: np.ndarray,
    names: Mapping[int, str],
    *,
    image: np.ndarray | None = None,
    outside_fov: np.ndarray | None = None,
    connectivity: int = 26,
    intensity_unit: str = "HU",
) -> list[StructureMeasurement]:
    """One :class:`StructureMeasurement` per entry of ``names`` (absent labels are ``empty``);
    intensity statistics of ``image`` are in ``intensity_unit`` ("HU", or "image units (MR)").

    Labels present in the map but missing from ``names`` are measured too, named ``label_<n>``,
    so no voxel goes unaccounted for.
    """
    labels = np.asarray(labels)
    if labels.dtype.kind not in "iu":
        if not np.all(np.equal(np.mod(labels, 1), 0)):
            raise ValueError("label map holds non-integer values")
        labels = labels.astype(np.int64)
    if image is not None and image.shape != labels.shape:
        raise ValueError(f"image shape {image.shape} differs from label map shape {labels.shape}")
    affine = np.asarray(affine, dtype=np.float64)
    vox_mm3 = voxel_volume_mm3(affine)
    present = _present_labels(labels)
    all_names = dict(names)
    for lab in present:
        all_names.setdefault(lab, f"label_{lab}")
    boxes = ndimage.find_objects(labels.astype(np.int32, copy=False)) if present else []
    out = []
    for lab in sorted(all_names):
        box = boxes[lab - 1] if 0 < lab <= len(boxes) else None
        if box is None:
            out.append(_empty(lab, all_names[lab]))
            continue
        out.append(
            _measure_one(lab, all_names[lab], labels, box, affine, vox_mm3, image, outside_fov, connectivity)
        )
    if image is None:
        return out
    return [replace(m, intensity_unit=intensity_unit) for m in out]


def _present_labels(labels: np.ndarray) -> list[int]:
    if labels.size == 0:
        return []
    if labels.min() < 0:
        raise ValueError("label map holds negative values")
    counts = np.bincount(labels.ravel().astype(np.int64, copy=False))
    return [int(i) for i in np.nonzero(counts)[0] if i != 0]


def _measure_one(lab, name, labels, box, affine, vox_mm3, image, outside_fov, connectivity):
    mask = labels[box] == lab
    offset = np.array([s.start for s in box])
    count = int(np.count_nonzero(mask))
    sizes = component_sizes(mask, connectivity=connectivity)
    stats = intensity_stats(image[box][mask]) if image is not None else None
    centroid_ijk = offset + _mean_index(mask, count)
    # extremes of a linear map over a voxel set lie on its surface: use surface voxels only
    surface = mask & ~ndimage.binary_erosion(mask, border_value=0)
    world = (np.argwhere(surface) + offset) @ affine[:3, :3].T + affine[:3, 3]
    return StructureMeasurement(
        label=lab,
        name=name,
        voxel_count=count,
        volume_ml=count * vox_mm3 / MM3_PER_ML,
        intensity=stats,
        centroid_ras_mm=_triple(affine[:3, :3] @ centroid_ijk + affine[:3, 3]),
        bbox_min_ras_mm=_triple(world.min(axis=0)),
        bbox_max_ras_mm=_triple(world.max(axis=0)),
        n_components=int(sizes.size),
        largest_component_ml=float(sizes[0]) * vox_mm3 / MM3_PER_ML,
        touches_fov=touches_fov(mask, tuple(int(o) for o in offset), labels.shape, outside_fov),
        empty=False,
    )


def _mean_index(mask: np.ndarray, count: int) -> np.ndarray:
    """Mean voxel index of ``mask`` from its marginal sums (no N×3 coordinate array)."""
    means = []
    for ax in range(3):
        other = tuple(a for a in range(3) if a != ax)
        marginal = mask.sum(axis=other, dtype=np.int64)
        means.append(float(np.arange(mask.shape[ax]) @ marginal) / count)
    return np.array(means)


def _empty(lab: int, name: str) -> StructureMeasurement:
    return StructureMeasurement(
        label=lab, name=name, voxel_count=0, volume_ml=0.0, intensity=None, centroid_ras_mm=None,
        bbox_min_ras_mm=None, bbox_max_ras_mm=None, n_components=0, largest_component_ml=0.0,
        touches_fov=False, empty=True,
    )


def _triple(v: np.ndarray) -> tuple[float, float, float]:
    return float(v[0]), float(v[1]), float(v[2])
