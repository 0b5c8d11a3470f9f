"""Per-instance measurements of lesions and lymph nodes: size, RECIST axes, HU, host organ.

Pure functions over numpy arrays and the affine; every quantity is in physical units named in its
field. RECIST axes are measured on one connected piece of an axial cross-section, and a lesion
split into pieces on its measurement slice says so (:mod:`volseg.postprocess.diameters`).
``touches_fov`` marks a lesion that reaches the array's boundary or the CT's padded region outside
the reconstruction circle (the rule of :func:`volseg.postprocess.measure.touches_fov`, as for
organs): its sizes are lower bounds, and it is not chosen as a RECIST target. Station assignment
(lymph nodes) and RECIST target selection are filled in afterwards by
:mod:`volseg.postprocess.stations` and :mod:`volseg.postprocess.burden`.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from volseg.parallel import map_forked
from volseg.postprocess.diameters import Caliper, Point, axial_diameters, feret_diameter
from volseg.postprocess.instances import Instance, split_classes
from volseg.postprocess.lymph_nodes import short_axis_class
from volseg.postprocess.measure import MM3_PER_ML, outside_fov_mask, touches_fov, voxel_volume_mm3


@dataclass(frozen=True)
class InstanceMeasurement:
    instance_id: str
    label: int
    class_name: str
    kind: str  # "lesion" | "lymph_node"
    voxel_count: int
    volume_ml: float
    long_axis_mm: float
    short_axis_mm: float
    long_axis_slice: int
    axial_axis: int
    long_axis_endpoints_ras_mm: tuple[Point, Point]
    short_axis_endpoints_ras_mm: tuple[Point, Point] | None
    feret_max_mm: float
    mean_hu: float | None
    std_hu: float | None
    min_hu: float | None
    max_hu: float | None
    centroid_ras_mm: Point
    host_organ: str | None
    short_axis_class: str | None  # lymph nodes only
    station: str | None = None
    station_zone: str | None = None
    station_note: str | None = None
    recist_target: bool = False
    touches_fov: bool = False  # cut by the array edge or the CT's field of view: sizes are lower bounds
    fragments_on_slice: int = 1  # separate pieces of the cross-section on the long-axis slice
    fragments_sum_mm: float = 0.0  # RECIST fragmented-lesion sum: the pieces' long axes added
    fragment_calipers: tuple[Caliper, ...] = ()  # each piece's long-axis caliper, longest first


def measure_instances(labels: np.ndarray, affine: np.ndarray, classes: Mapping[int, str], *,
                      image: np.ndarray | None = None, organ_map: np.ndarray | None = None,
                      organ_names: Mapping[int, str] | None = None, connectivity: int = 26,
                      min_volume_mm3: float = 0.0,
                      locate_node: Callable[[np.ndarray], object] | None = None,
                      outside_fov: np.ndarray | None = None) -> list[InstanceMeasurement]:
    """Split ``classes`` (label → name) into instances and measure each one.

    ``organ_map`` (same grid) and ``organ_names`` give the host organ: the organ label overlapping
    the instance most; when none overlaps (a lesion carved out of its organ in the same map), the
    organ label most frequent in the one-voxel shell around it. Labels not in ``organ_names`` are
    never hosts. With ``image`` (CT in HU), its padding outside the reconstruction circle counts as
    the edge of the field of view for ``touches_fov``. ``locate_node`` (e.g.
    :meth:`StationMapper.assign`) takes a lymph node's voxel
    centres in RAS mm and returns its station (``.station``, ``.zone``, ``.note``). ``outside_fov``:
    ``outside_fov_mask(image)`` when the caller has it already.
    """
    labels = np.asarray(labels)
    affine = np.asarray(affine, dtype=np.float64)
    if image is not None and image.shape != labels.shape:
        raise ValueError(f"image shape {image.shape} differs from label map shape {labels.shape}")
    if organ_map is not None and organ_map.shape != labels.shape:
        raise ValueError(f"organ map shape {organ_map.shape} differs from label map shape {labels.shape}")
    vox = voxel_volume_mm3(affine)
    instances = split_classes(labels, classes, voxel_volume_mm3=vox, connectivity=connectivity,
                              min_volume_mm3=min_volume_mm3)
    outside = outside_fov
    if outside is None and image is not None:
        outside = outside_fov_mask(image)

    def measure_one(inst: Instance) -> InstanceMeasurement:
        m = _measure(inst, affine, vox, image, organ_map, organ_names or {}, locate_node)
        return dataclasses.replace(m, touches_fov=touches_fov(inst.mask, inst.offset, labels.shape, outside))

    return map_forked(measure_one, instances)  # each instance on its own: spread over the cores


def _measure(inst: Instance, affine, vox, image, organ_map, organ_names, locate_node) -> InstanceMeasurement:
    axes = axial_diameters(inst.mask, affine, offset=inst.offset)
    feret = feret_diameter(inst.mask, affine, offset=inst.offset)
    if axes is None or feret is None:  # an instance is a non-empty component
        raise RuntimeError(f"instance {inst.instance_id} has an empty mask")
    values = image[inst.box][inst.mask].astype(np.float64) if image is not None else None
    centroid = np.argwhere(inst.mask).mean(axis=0) + np.asarray(inst.offset)
    kind = inst.kind
    station = None
    if kind == "lymph_node" and locate_node is not None:
        station = locate_node((np.argwhere(inst.mask) + np.asarray(inst.offset)) @ affine[:3, :3].T + affine[:3, 3])
    return InstanceMeasurement(
        instance_id=inst.instance_id,
        label=inst.label,
        class_name=inst.class_name,
        kind=kind,
        voxel_count=inst.voxel_count,
        volume_ml=inst.voxel_count * vox / MM3_PER_ML,
        long_axis_mm=axes.long_axis_mm,
        short_axis_mm=axes.short_axis_mm,
        long_axis_slice=axes.slice_index,
        axial_axis=axes.axial_axis,
        long_axis_endpoints_ras_mm=axes.long_axis_endpoints_ras_mm,
        short_axis_endpoints_ras_mm=axes.short_axis_endpoints_ras_mm,
        feret_max_mm=feret.diameter_mm,
        mean_hu=float(values.mean()) if values is not None else None,
        std_hu=float(values.std()) if values is not None else None,
        min_hu=float(values.min()) if values is not None else None,
        max_hu=float(values.max()) if values is not None else None,
        centroid_ras_mm=tuple(float(v) for v in affine[:3, :3] @ centroid + affine[:3, 3]),  # type: ignore[arg-type]
        host_organ=host_organ(inst, organ_map, organ_names) if organ_map is not None else None,
        short_axis_class=short_axis_class(axes.short_axis_mm) if kind == "lymph_node" else None,
        station=station.station if station is not None else None,
        station_zone=station.zone if station is not None else None,
        station_note=station.note if station is not None else None,
        fragments_on_slice=axes.fragments_on_slice,
        fragments_sum_mm=axes.fragments_sum_mm,
        fragment_calipers=axes.fragments,
    )


def host_organ(inst: Instance, organ_map: np.ndarray, organ_names: Mapping[int, str]) -> str | None:
    """The organ of ``organ_names`` overlapping ``inst`` most, else most frequent around it."""
    if not organ_names:
        return None
    found = _most_frequent(organ_map[inst.box][inst.mask], organ_names)
    if found is not None:
        return found
    lo = [max(s.start - 1, 0) for s in inst.box]
    hi = [min(s.stop + 1, n) for s, n in zip(inst.box, organ_map.shape)]
    grown_box = tuple(slice(a, b) for a, b in zip(lo, hi))
    inner = np.zeros([b - a for a, b in zip(lo, hi)], dtype=bool)
    inner[tuple(slice(s.start - a, s.stop - a) for s, a in zip(inst.box, lo))] = inst.mask
    shell = ndimage.binary_dilation(inner, structure=ndimage.generate_binary_structure(3, 3)) & ~inner
    return _most_frequent(organ_map[grown_box][shell], organ_names)


def _most_frequent(values: np.ndarray, organ_names: Mapping[int, str]) -> str | None:
    values = values[values > 0].astype(np.int64, copy=False)
    if values.size == 0:
        return None
    counts = np.bincount(values)
    for label in np.argsort(-counts, kind="stable"):
        if counts[label] == 0:
            break
        if int(label) in organ_names:
            return organ_names[int(label)]
    return None
