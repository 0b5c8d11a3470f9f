"""Build a :class:`~volseg.reports.model.Report` from measurements, the input and provenance."""
from __future__ import annotations

import datetime as _dt
import platform
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from volseg import __version__
from volseg.io.types import LoadedImage
from volseg.labels import LabelTable
from volseg.postprocess.measure import StructureMeasurement, intensity_fields
from volseg.postprocess.qc import is_fov_exempt
from volseg.reports.model import (
    AirwayBranch,
    AirwayMetrics,
    BurdenRow,
    InputSummary,
    InstanceRow,
    ModelInfo,
    Provenance,
    Report,
    StructureRow,
)

if TYPE_CHECKING:
    from volseg.postprocess.clinical import ClinicalResult
    from volseg.segmenters.provenance import ModelProvenance


def input_summary(image: LoadedImage, *, with_intensity: bool = True) -> InputSummary:
    vol, src = image.volume, image.source
    lo = hi = None
    if with_intensity and vol.array.dtype.kind in "iuf":
        lo, hi = float(np.min(vol.array)), float(np.max(vol.array))
    return InputSummary(
        file_name=Path(src.path).name,
        kind=src.kind,
        shape=vol.shape,
        spacing_mm=vol.spacing,
        orientation=vol.orientation,
        voxel_volume_mm3=vol.voxel_volume_mm3,
        modality=src.modality or vol.meta.get("modality"),
        series_number=src.series_number,
        n_files=len(src.files) or None,
        intensity_min=lo,
        intensity_max=hi,
    )


def structure_rows(measurements: Sequence[StructureMeasurement], labels: LabelTable,
                   qc: Mapping[int, Any] | None = None) -> list[StructureRow]:
    """One row per structure; ``qc`` (label -> QCResult) fills qc_flags and qc_notes."""
    rows = []
    qc = qc or {}
    for m in measurements:
        stats: dict[str, Any] = intensity_fields(m)  # float | str | None per field, validated by StructureRow
        check = qc.get(m.label)
        rows.append(
            StructureRow(
                label=m.label, name=m.name,
                display_name=labels[m.label].display_name if m.label in labels else None,
                voxel_count=m.voxel_count, volume_ml=m.volume_ml, **stats,
                centroid_ras_mm=m.centroid_ras_mm, bbox_min_ras_mm=m.bbox_min_ras_mm,
                bbox_max_ras_mm=m.bbox_max_ras_mm, n_components=m.n_components,
                largest_component_ml=m.largest_component_ml, touches_fov=m.touches_fov, empty=m.empty,
                qc_flags=list(check.flags) if check else [], qc_notes=list(check.notes) if check else [],
            )
        )
    return rows


def provenance(*, model: ModelProvenance | Mapping[str, Any] | None, options: Mapping[str, Any],
               timings_s: Mapping[str, float], fallbacks: Sequence[str] = ()) -> Provenance:
    """``model``: the segmenter's :class:`~volseg.segmenters.provenance.ModelProvenance` (or its mapping)."""
    if model is not None and not isinstance(model, Mapping):
        model = model.as_dict()
    model_info = None
    device = None
    if model:
        details = {k: v for k, v in model.items()
                   if k not in ("model", "version", "weights", "device", "fallbacks", "backend")}
        model_info = ModelInfo(name=str(model["model"]), version=str(model.get("version", "")),
                               weights=list(model.get("weights", [])), backend=model.get("backend"),
                               details=_jsonable(details))
        device = model.get("device")
    return Provenance(
        volseg_version=__version__,
        created_utc=_dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        model=model_info,
        device=device,
        options=dict(options),
        timings_s={k: round(float(v), 3) for k, v in timings_s.items()},
        fallbacks=list(fallbacks) + list(model.get("fallbacks", []) if model else []),
        environment=environment(),
    )


def _jsonable(value: Any) -> Any:
    """``value`` with tuples as lists, numpy scalars as numbers and unknown objects as text."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def environment() -> dict[str, str]:
    env = {"python": platform.python_version(), "platform": platform.platform(terse=True)}
    for package in ("torch", "numpy", "nibabel", "pydicom", "SimpleITK"):
        try:
            env[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return env


def instance_rows(clinical: ClinicalResult) -> list[InstanceRow]:
    fields = set(InstanceRow.model_fields)
    return [InstanceRow(**{k: v for k, v in m.__dict__.items() if k in fields}) for m in clinical.instances]


def burden_rows(clinical: ClinicalResult) -> list[BurdenRow]:
    """Burden rows; lymph-node classes (and "all", when there are any) also count nodes per
    short-axis class."""
    from volseg.postprocess.instances import instance_kind
    from volseg.postprocess.lymph_nodes import nodal_summary

    node_classes = {c for c in clinical.instance_classes if instance_kind(c) == "lymph_node"}
    rows = []
    for b in clinical.burden:
        counts = None
        if b.class_name in node_classes or (b.class_name == "all" and node_classes):
            nodes = [m for m in clinical.instances
                     if m.kind == "lymph_node" and b.class_name in ("all", m.class_name)]
            counts = nodal_summary((m.short_axis_mm, m.volume_ml) for m in nodes).counts_by_class
        rows.append(BurdenRow(**b.__dict__, short_axis_class_counts=counts))
    return rows


def airway_metrics(clinical: ClinicalResult) -> AirwayMetrics | None:
    tree = clinical.airway
    if tree is None:
        return None
    trachea = tree.trachea
    return AirwayMetrics(
        structures=list(clinical.airway_structures),
        branch_count=tree.branch_count, max_generation=tree.max_generation,
        branches_per_generation=tree.branches_per_generation,
        total_centreline_length_mm=tree.total_centreline_length_mm,
        trachea_length_mm=trachea.length_mm if trachea else None,
        trachea_diameter_mm=trachea.mean_diameter_mm if trachea else None,
        lumen_volume_ml=tree.lumen_volume_ml, leak_suspected=tree.leak_suspected,
        leak_reasons=list(tree.leak_reasons),
        branches=[AirwayBranch(**b.__dict__) for b in tree.branches],
    )


def build_report(*, study_id: str, image: LoadedImage, measurements: Sequence[StructureMeasurement],
                 labels: LabelTable, provenance: Provenance, warnings: Sequence[str] = (),
                 clinical: ClinicalResult | None = None) -> Report:
    """The report of one study; ``clinical`` adds QC flags, instances, burden and airway metrics."""
    all_warnings = list(image.source.warnings) + list(warnings)
    for m in measurements:
        if m.empty:
            all_warnings.append(f"{m.name}: empty (not found in this image)")
        elif m.touches_fov and not is_fov_exempt(m.name):
            all_warnings.append(f"{m.name}: cut by the field of view; volume_ml is a lower bound")
    if clinical is not None:
        all_warnings.extend(clinical.notes)
    return Report(
        study_id=study_id,
        input=input_summary(image),
        provenance=provenance,
        structures=structure_rows(measurements, labels, clinical.qc if clinical else None),
        lesion_classes=list(clinical.instance_classes) if clinical else [],
        instances=instance_rows(clinical) if clinical else [],
        burden=burden_rows(clinical) if clinical else [],
        airway=airway_metrics(clinical) if clinical else None,
        warnings=all_warnings,
    )
