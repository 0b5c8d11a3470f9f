"""All clinical measurements of one study in one call: instances, burden, airway tree, QC flags.

Pure: label maps as numpy arrays on one grid (the affine), names as label -> name mappings.

Rules that decide what is measured:

* **Instances**: the classes named in ``instance_classes`` (else those whose names say tumour,
  lesion, nodule, metastasis, cyst or lymph node) are split into connected components.
* **Organs** (host organ, station landmarks): the organ map when one is given; otherwise the
  segmentation itself without its instance classes.
* **Airway tree**: measured when the segmentation (else the organ map) has a class named like an
  airway tree: ``airway``/``airways``/``lung_airways``, ``bronchi``/``bronchus``/``bronchial_tree``,
  ``lung_trachea_bronchia`` or ``trachea_and_bronchi``. A ``trachea`` class of the same map is
  joined to it (the tree is rooted at the trachea); a trachea alone is not a tree. The lungs for
  the leak check are the classes named ``lung_*`` (lobes, left/right) of either map.
"""
from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from volseg.postprocess.airway_tree import AirwayTree, airway_tree
from volseg.postprocess.burden import Burden, select_targets, tumour_burden
from volseg.postprocess.instances import default_instance_classes
from volseg.postprocess.landmarks import LUNG_NAME
from volseg.postprocess.lesions import InstanceMeasurement, measure_instances
from volseg.postprocess.measure import StructureMeasurement
from volseg.postprocess.morphology import axial_axis
from volseg.postprocess.qc import QCResult, qc_structures

AIRWAY_NAME = re.compile(
    r"^(lung_)?airways?$|^airway_tree$|^bronch(i|us|ial_tree)$|^lung_trachea_bronchia$|^trachea_and_bronchi$",
    re.IGNORECASE)


@dataclass(frozen=True)
class ClinicalResult:
    instance_classes: list[str]
    instances: list[InstanceMeasurement] = field(default_factory=list)
    burden: list[Burden] = field(default_factory=list)
    airway: AirwayTree | None = None
    airway_structures: list[str] = field(default_factory=list)
    qc: dict[int, QCResult] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def clinical_measurements(labels: np.ndarray, affine: np.ndarray, names: Mapping[int, str], *,
                          image: np.ndarray | None = None, instance_classes: Sequence[str] | None = None,
                          organ_map: np.ndarray | None = None, organ_names: Mapping[int, str] | None = None,
                          connectivity: int = 26, min_instance_volume_mm3: float = 0.0,
                          outside_fov: np.ndarray | None = None) -> ClinicalResult:
    """Instances (with host organ, node class and station, RECIST targets), burden and airway; the
    structures' QC comes from their measurements (:func:`with_qc`), which need not be ready yet."""
    affine = np.asarray(affine, dtype=np.float64)
    classes = list(instance_classes) if instance_classes is not None else default_instance_classes(names.values())
    by_name = {n: i for i, n in names.items()}
    instance_labels = {by_name[c]: c for c in classes if c in by_name}
    if organ_map is None:
        organ_map = labels
        organ_names = {i: n for i, n in names.items() if i not in instance_labels}
    organ_names = dict(organ_names or {})
    notes: list[str] = []
    instances = measure_instances(labels, affine, instance_labels, image=image, organ_map=organ_map,
                                  organ_names=organ_names, connectivity=connectivity,
                                  min_volume_mm3=min_instance_volume_mm3,
                                  locate_node=_station_mapper(instance_labels, organ_map, organ_names, affine),
                                  outside_fov=outside_fov)
    slice_mm = float(np.linalg.norm(affine[:3, axial_axis(affine)]))
    targets = select_targets(instances, slice_thickness_mm=slice_mm)
    chosen = set(targets)
    instances = [dataclasses.replace(m, recist_target=m.instance_id in chosen) for m in instances]
    burden = tumour_burden(instances, targets, classes=list(instance_labels.values())) if instance_labels else []
    airway, airway_names = _airway(labels, names, organ_map, organ_names, affine)
    if airway is not None and airway.leak_suspected:
        notes.extend(f"airway: leak suspected: {r}" for r in airway.leak_reasons)
    return ClinicalResult(list(instance_labels.values()), instances, burden, airway, airway_names, notes=notes)


def with_qc(clinical: ClinicalResult, measurements: Sequence[StructureMeasurement], affine: np.ndarray,
            shape: Sequence[int]) -> ClinicalResult:
    """``clinical`` with the QC of the structures ``measurements`` describes (on a grid of ``shape``)."""
    affine = np.asarray(affine, dtype=np.float64)
    fov_centre = affine[:3, :3] @ ((np.asarray(shape) - 1) / 2.0) + affine[:3, 3]
    return dataclasses.replace(clinical, qc=qc_structures(measurements, fov_centre_ras_mm=fov_centre))


def _station_mapper(instance_labels, organ_map, organ_names, affine):
    """A node -> station function when there are lymph-node classes, else None."""
    from volseg.postprocess.instances import instance_kind

    if not any(instance_kind(c) == "lymph_node" for c in instance_labels.values()):
        return None
    from volseg.postprocess.landmarks import find_landmarks
    from volseg.postprocess.stations import StationMapper

    mapper = StationMapper(find_landmarks(organ_map, affine, organ_names))
    return mapper.assign


def _airway(labels, names, organ_map, organ_names, affine) -> tuple[AirwayTree | None, list[str]]:
    for array, table in ((labels, names), (organ_map, organ_names)):
        airway = [i for i, n in table.items() if AIRWAY_NAME.match(n)]
        if not airway:
            continue
        trachea = [i for i, n in table.items() if n.lower() == "trachea"]
        used = airway + trachea
        lung_labels = [i for i, n in table.items() if LUNG_NAME.match(n)]
        other = organ_names if table is names else names
        lungs = np.isin(array, lung_labels) if lung_labels else None
        if lungs is None or not lungs.any():
            other_lungs = [i for i, n in other.items() if LUNG_NAME.match(n)]
            other_array = organ_map if table is names else labels
            lungs = np.isin(other_array, other_lungs) if other_lungs else None
        tree = airway_tree(np.isin(array, used), affine, lungs=lungs)
        return tree, [table[i] for i in used]
    return None, []
