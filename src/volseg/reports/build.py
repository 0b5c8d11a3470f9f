"""Build a :class:`~volseg.reports.model.Report` from measurements, the input and provenance."""
from __future__ import annotations

import datetime as _dt
import platform
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from volseg import __version__
from volseg.io.types import LoadedImage
from volseg.labels import LabelTable
from volseg.postprocess.measure import StructureMeasurement
from volseg.reports.model import InputSummary, ModelInfo, Provenance, Report, StructureRow


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


def structure_rows(measurements: Sequence[StructureMeasurement], labels: LabelTable) -> list[StructureRow]:
    rows = []
    for m in measurements:
        stats = m.intensity.__dict__ if m.intensity is not None else {}
        rows.append(
            StructureRow(
                label=m.label, name=m.name,
                display_name=labels[m.label].display_name if m.label in labels else None,
                voxel_count=m.voxel_count, volume_ml=m.volume_ml, **stats,
                centroid_ras_mm=m.centroid_ras_mm, bbox_min_ras_mm=m.bbox_min_ras_mm,
                bbox_max_ras_mm=m.bbox_max_ras_mm, n_components=m.n_components,
                largest_component_ml=m.largest_component_ml, touches_fov=m.touches_fov, empty=m.empty,
            )
        )
    return rows


def provenance(*, model: Mapping[str, Any] | None, options: Mapping[str, Any],
               timings_s: Mapping[str, float], fallbacks: Sequence[str] = ()) -> Provenance:
    model_info = None
    device = None
    if model:
        model_info = ModelInfo(name=str(model["model"]), version=str(model.get("version", "")),
                               weights=list(model.get("weights", [])))
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


def environment() -> dict[str, str]:
    env = {"python": platform.python_version(), "platform": platform.platform(terse=True)}
    for package in ("torch", "numpy", "nibabel", "pydicom", "SimpleITK"):
        try:
            env[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return env


def build_report(*, study_id: str, image: LoadedImage, measurements: Sequence[StructureMeasurement],
                 labels: LabelTable, provenance: Provenance, warnings: Sequence[str] = ()) -> Report:
    all_warnings = list(image.source.warnings) + list(warnings)
    for m in measurements:
        if m.empty:
            all_warnings.append(f"{m.name}: empty (not found in this image)")
        elif m.touches_fov:
            all_warnings.append(f"{m.name}: cut by the field of view; volume_ml is a lower bound")
    return Report(
        study_id=study_id,
        input=input_summary(image),
        provenance=provenance,
        structures=structure_rows(measurements, labels),
        warnings=all_warnings,
    )
