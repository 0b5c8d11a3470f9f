"""Tabular renderings of a :class:`~volseg.reports.model.Report`: volumetry.csv and lesions.csv.

Columns are fixed and ordered (``VOLUMETRY_COLUMNS``, ``LESIONS_COLUMNS``); units are in the names. Positions are in
patient RAS millimetres (+x Right, +y Anterior, +z Superior). Empty cells mean "not measured"
(no image given, or an empty structure). ``*_hu`` columns hold CT in Hounsfield units only;
``*_intensity`` columns hold the same statistics for every image, in ``intensity_unit`` ("HU", or
"image units (MR)" for an image whose values have no physical unit). In lesions.csv, ``touches_fov = 1`` marks a lesion cut by the
array edge or the field of view, and ``fragments_on_slice > 1`` one whose long-axis slice shows separate
pieces (``fragments_sum_mm``: their long axes added, RECIST's rule for fragmented lesions).
"""
from __future__ import annotations

import csv
import io
from pathlib import Path

from volseg.io.atomic import write_text
from volseg.reports.model import InstanceRow, Report, StructureRow

VOLUMETRY_COLUMNS = (
    "study_id", "label", "name", "voxel_count", "volume_ml",
    "mean_hu", "std_hu", "median_hu", "p5_hu", "p95_hu", "min_hu", "max_hu",
    "mean_intensity", "std_intensity", "median_intensity", "p5_intensity", "p95_intensity",
    "min_intensity", "max_intensity", "intensity_unit",
    "centroid_r_mm", "centroid_a_mm", "centroid_s_mm",
    "bbox_min_r_mm", "bbox_min_a_mm", "bbox_min_s_mm",
    "bbox_max_r_mm", "bbox_max_a_mm", "bbox_max_s_mm",
    "n_components", "largest_component_ml", "touches_fov", "empty", "qc_flags",
)

LESIONS_COLUMNS = (
    "study_id", "instance_id", "label", "class_name", "kind", "voxel_count", "volume_ml",
    "long_axis_mm", "short_axis_mm", "feret_max_mm", "axial_axis", "long_axis_slice",
    "long_axis_start_r_mm", "long_axis_start_a_mm", "long_axis_start_s_mm",
    "long_axis_end_r_mm", "long_axis_end_a_mm", "long_axis_end_s_mm",
    "short_axis_start_r_mm", "short_axis_start_a_mm", "short_axis_start_s_mm",
    "short_axis_end_r_mm", "short_axis_end_a_mm", "short_axis_end_s_mm",
    "mean_hu", "std_hu", "min_hu", "max_hu",
    "centroid_r_mm", "centroid_a_mm", "centroid_s_mm",
    "host_organ", "short_axis_class", "station", "station_zone", "recist_target",
    "touches_fov", "fragments_on_slice", "fragments_sum_mm", "station_note",
)


def volumetry_rows(report: Report) -> list[dict[str, object]]:
    return [_row(report.study_id, s) for s in report.structures]


def _row(study_id: str, s: StructureRow) -> dict[str, object]:
    row: dict[str, object] = {
        "study_id": study_id, "label": s.label, "name": s.name, "voxel_count": s.voxel_count,
        "volume_ml": _num(s.volume_ml),
    }
    for key in ("mean_hu", "std_hu", "median_hu", "p5_hu", "p95_hu", "min_hu", "max_hu"):
        row[key] = _num(getattr(s, key))
        row[key.replace("_hu", "_intensity")] = _num(getattr(s, key.replace("_hu", "_intensity")))
    row["intensity_unit"] = s.intensity_unit or ""
    for prefix, point in (("centroid", s.centroid_ras_mm), ("bbox_min", s.bbox_min_ras_mm),
                          ("bbox_max", s.bbox_max_ras_mm)):
        for axis, value in zip("ras", point or (None, None, None)):
            row[f"{prefix}_{axis}_mm"] = _num(value)
    row.update(n_components=s.n_components, largest_component_ml=_num(s.largest_component_ml),
               touches_fov=int(s.touches_fov), empty=int(s.empty), qc_flags=";".join(s.qc_flags))
    return row


def lesion_rows(report: Report) -> list[dict[str, object]]:
    return [_lesion_row(report.study_id, m) for m in report.instances]


def _lesion_row(study_id: str, m: InstanceRow) -> dict[str, object]:
    row: dict[str, object] = {
        "study_id": study_id, "instance_id": m.instance_id, "label": m.label, "class_name": m.class_name,
        "kind": m.kind, "voxel_count": m.voxel_count, "volume_ml": _num(m.volume_ml),
        "long_axis_mm": _num(m.long_axis_mm), "short_axis_mm": _num(m.short_axis_mm),
        "feret_max_mm": _num(m.feret_max_mm), "axial_axis": m.axial_axis, "long_axis_slice": m.long_axis_slice,
    }
    for prefix, ends in (("long_axis", m.long_axis_endpoints_ras_mm), ("short_axis", m.short_axis_endpoints_ras_mm)):
        for which, point in zip(("start", "end"), ends or (None, None)):
            for axis, value in zip("ras", point or (None, None, None)):
                row[f"{prefix}_{which}_{axis}_mm"] = _num(value)
    for key in ("mean_hu", "std_hu", "min_hu", "max_hu"):
        row[key] = _num(getattr(m, key))
    for axis, value in zip("ras", m.centroid_ras_mm):
        row[f"centroid_{axis}_mm"] = _num(value)
    row.update(host_organ=m.host_organ or "", short_axis_class=m.short_axis_class or "",
               station=m.station or "", station_zone=m.station_zone or "", recist_target=int(m.recist_target))
    row.update(touches_fov=int(m.touches_fov), fragments_on_slice=m.fragments_on_slice,
               fragments_sum_mm=_num(m.fragments_sum_mm), station_note=m.station_note or "")
    return row


def _num(value: float | None) -> str:
    """Numbers rounded for humans but stable for machines: 6 significant digits."""
    if value is None:
        return ""
    return f"{value:.6g}"


def to_csv(rows: list[dict[str, object]], columns=VOLUMETRY_COLUMNS) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def write_volumetry_csv(report: Report, path: str | Path) -> Path:
    return write_text(path, to_csv(volumetry_rows(report)))


def write_lesions_csv(report: Report, path: str | Path) -> Path:
    """lesions.csv: one row per instance (a header alone when lesion classes have no instance)."""
    return write_text(path, to_csv(lesion_rows(report), LESIONS_COLUMNS))
