"""Per-structure measurements of a label map: pure functions over numpy arrays and the affine.

Every quantity is in physical units named in its field: ``volume_ml`` from the voxel count times
|det(affine)| (correct on oblique and anisotropic grids), positions in patient RAS millimetres,
intensities in HU (or, for other images, in the image's own units, named by ``intensity_unit``). Connected components use full 26-connectivity unless told otherwise.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np

from volseg.postprocess.label_stats import (
    LabelBoxes,
    component_sizes_by_label,
    grouped_values,
    label_boxes,
    surface_extremes,
)

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
    from volseg.postprocess.cc_labels import label_components

    if not mask.any():
        return np.zeros(0, dtype=np.int64)
    labels = label_components(mask.astype(np.uint8, copy=False), connectivity=connectivity)
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
    # the mask grown by one voxel (6-neighbours) meets the padding iff the padding lies on a
    # mask voxel or one step from it: compare the mask with the padding shifted by 0 and ±1
    # (the box is one voxel inside the array on every side here, so every shift stays in it)
    place = [slice(o - low, o - low + n) for o, low, n in zip(offset, lo, mask.shape)]
    if (mask & region_out[tuple(place)]).any():
        return True
    for axis in range(3):
        for step in (-1, 1):
            shifted = list(place)
            shifted[axis] = slice(place[axis].start + step, place[axis].stop + step)
            if (mask & region_out[tuple(shifted)]).any():
                return True
    return False


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
    so no voxel goes unaccounted for. All structures are measured together from a few passes over
    the map (:mod:`volseg.postprocess.label_stats`); only the field-of-view check looks at a
    structure's own bounding box.
    """
    labels = _integer_labels(labels)
    if image is not None and image.shape != labels.shape:
        raise ValueError(f"image shape {image.shape} differs from label map shape {labels.shape}")
    affine = np.asarray(affine, dtype=np.float64)
    tables = _LabelTables.build(labels, affine, image, connectivity)
    all_names = dict(names)
    for lab in tables.present:
        all_names.setdefault(lab, f"label_{lab}")
    out = []
    for lab in sorted(all_names):
        box = tables.box(lab)
        if box is None:
            out.append(_empty(lab, all_names[lab]))
            continue
        out.append(_measure_one(lab, all_names[lab], labels, box, affine, tables, outside_fov))
    if image is None:
        return out
    return [replace(m, intensity_unit=intensity_unit) for m in out]


def _integer_labels(labels) -> np.ndarray:
    """The map as an array of non-negative integers."""
    labels = np.asarray(labels)
    if labels.dtype.kind not in "iu":
        if not np.all(np.equal(np.mod(labels, 1), 0)):
            raise ValueError("label map holds non-integer values")
        labels = labels.astype(np.int64)
    if labels.size and labels.min() < 0:
        raise ValueError("label map holds negative values")
    return labels


@dataclass(frozen=True, eq=False)
class _LabelTables:
    """Everything measured per label at once: profiles (counts, boxes, centroids), components,
    intensity values grouped by label, and the world bounding box of each label's voxels."""

    boxes: LabelBoxes | None
    n_components: np.ndarray
    largest: np.ndarray
    values: list[list[np.ndarray]] | None  # per row, its image values in C order (chunks)
    world_min: np.ndarray | None  # per row, when the affine is not axis-aligned
    world_max: np.ndarray | None
    rows: dict[int, int] | None = None  # label value -> row of the tables (None: the value itself)

    @classmethod
    def build(cls, labels, affine, image, connectivity) -> _LabelTables:
        if labels.size == 0 or not labels.any():
            empty = np.zeros(1, dtype=np.int64)
            return cls(None, empty, empty, None, None, None, None)
        labels, rows = _compact(labels)
        n_labels = int(labels.max()) + 1
        boxes = label_boxes(labels)
        n_components, largest = component_sizes_by_label(labels, n_labels, connectivity=connectivity)
        values = grouped_values(labels, image, n_labels) if image is not None else None
        world_min = world_max = None
        if not _axis_aligned(affine):
            world_min, world_max = surface_extremes(labels, n_labels, affine)
        return cls(boxes, n_components, largest, values, world_min, world_max, rows)

    @property
    def present(self) -> list[int]:
        if self.boxes is None:
            return []
        rows = np.nonzero(self.boxes.counts)[0]
        if self.rows is not None:
            back = {row: lab for lab, row in self.rows.items()}
            return [back[int(r)] for r in rows if back[int(r)] != 0]
        return [int(i) for i in rows if i != 0]

    def row(self, lab: int) -> int | None:
        """The tables' row of label value ``lab`` (None: absent)."""
        if self.boxes is None or lab <= 0:
            return None
        row = self.rows.get(lab) if self.rows is not None else lab
        return row if row is not None and row < self.boxes.counts.size else None

    def box(self, lab: int) -> tuple[slice, slice, slice] | None:
        row = self.row(lab)
        if row is None or self.boxes is None:
            return None
        return self.boxes.box(row)

    def label_values(self, row: int) -> np.ndarray:
        if self.values is None:
            raise RuntimeError("label_values: the tables were built without an image")
        chunks = self.values[row]
        return chunks[0] if len(chunks) == 1 else np.concatenate(chunks)


#: label values up to this are table rows themselves; a map with larger values is renumbered
MAX_DIRECT_LABEL = 4095


def _compact(labels: np.ndarray) -> tuple[np.ndarray, dict[int, int] | None]:
    """The map in the smallest unsigned type, renumbered 0..n when its values are large."""
    top = int(labels.max())
    if top <= MAX_DIRECT_LABEL and top < labels.size:  # cc3d.statistics needs max < voxels
        small = labels.astype(np.uint8 if top < 256 else np.uint16, copy=False)
        # cc3d's cython views need a writeable buffer (a frozen Volume's array is read-only)
        return (small if small.flags.writeable else small.copy(order="K")), None
    values, inverse = np.unique(labels, return_inverse=True)
    if values[0] != 0:
        values, inverse = np.concatenate([[0], values]), inverse + 1
    small_type = np.uint16 if values.size <= 65536 else np.uint32
    rows = {int(v): i for i, v in enumerate(values)}
    return inverse.reshape(labels.shape).astype(small_type), rows


def _axis_aligned(affine: np.ndarray) -> bool:
    """True when each array axis moves along one patient axis only (no oblique or off-axis term)."""
    return bool(np.all(np.count_nonzero(affine[:3, :3], axis=0) <= 1))


def _measure_one(lab, name, labels, box, affine, tables: _LabelTables, outside_fov):
    row = tables.row(lab)
    if row is None or tables.boxes is None:  # the caller measures present labels only
        raise RuntimeError(f"_measure_one: label {lab} is not in the tables")
    offset = np.array([s.start for s in box])
    count = int(tables.boxes.counts[row])
    stats = intensity_stats(tables.label_values(row)) if tables.values is not None else None
    centroid_ijk = offset + _mean_index(tables.boxes.index_sums[row], offset, count)
    if tables.world_min is not None and tables.world_max is not None:  # set together
        world_min, world_max = tables.world_min[row], tables.world_max[row]
    else:  # axis-aligned: the extremes are at the corners of the box (all on the surface)
        corners = np.array([[b.start if c == 0 else b.stop - 1 for b, c in zip(box, bits)]
                            for bits in np.ndindex(2, 2, 2)])
        world = corners @ affine[:3, :3].T + affine[:3, 3]
        world_min, world_max = world.min(axis=0), world.max(axis=0)
    vox_mm3 = voxel_volume_mm3(affine)
    return StructureMeasurement(
        label=lab,
        name=name,
        voxel_count=count,
        volume_ml=count * vox_mm3 / MM3_PER_ML,
        intensity=stats,
        centroid_ras_mm=_triple(affine[:3, :3] @ centroid_ijk + affine[:3, 3]),
        bbox_min_ras_mm=_triple(world_min),
        bbox_max_ras_mm=_triple(world_max),
        n_components=int(tables.n_components[row]),
        largest_component_ml=float(tables.largest[row]) * vox_mm3 / MM3_PER_ML,
        touches_fov=_touches_fov_box(labels, lab, box, outside_fov),
        empty=False,
    )


def _touches_fov_box(labels, lab, box, outside_fov) -> bool:
    """:func:`touches_fov` of the structure in ``box``, building its mask only when needed."""
    offset = tuple(int(s.start) for s in box)
    if any(s.start == 0 or s.stop == n for s, n in zip(box, labels.shape)):
        return True
    if outside_fov is None:
        return False
    lo = [max(s.start - 1, 0) for s in box]
    hi = [min(s.stop + 1, n) for s, n in zip(box, labels.shape)]
    if not outside_fov[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]].any():
        return False
    return touches_fov(labels[box] == lab, offset, labels.shape, outside_fov)


def _mean_index(index_sums: np.ndarray, offset: np.ndarray, count: int) -> np.ndarray:
    """Mean voxel index within the box at ``offset``: the exact integer sums of the indices
    relative to the box, divided once (as the per-class marginal sums gave it)."""
    return np.array([float(int(s) - int(o) * count) / count for s, o in zip(index_sums, offset)])


def _empty(lab: int, name: str) -> StructureMeasurement:
    return StructureMeasurement(
        label=lab, name=name, voxel_count=0, volume_ml=0.0, intensity=None, centroid_ras_mm=None,
        bbox_min_ras_mm=None, bbox_max_ras_mm=None, n_components=0, largest_component_ml=0.0,
        touches_fov=False, empty=True,
    )


def _triple(v: np.ndarray) -> tuple[float, float, float]:
    return float(v[0]), float(v[1]), float(v[2])
