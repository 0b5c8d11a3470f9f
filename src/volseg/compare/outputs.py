"""Write a comparison's files: lesion_changes.csv, organ_changes.csv, then comparison.json (last, so its
presence means the others are complete). Each file is written atomically.

lesion_changes.csv has one row per lesion group and interval (``status``: matched / new / disappeared /
merged / split; ids joined by ``;``); organ_changes.csv one row per organ and interval. Empty cells mean
"not applicable / unknown". Units are in the column names.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from pathlib import Path

from volseg.compare.results import Comparison, LesionMatch, OrganChange
from volseg.io.atomic import ensure_writable_dir, write_text

COMPARISON = "comparison.json"
LESION_CHANGES = "lesion_changes.csv"
ORGAN_CHANGES = "organ_changes.csv"

LESION_COLUMNS = (
    "from_timepoint", "to_timepoint", "status", "before_ids", "after_ids", "class_name", "kind", "method", "dice",
    "centroid_distance_mm", "volume_ml_before", "volume_ml_after", "volume_change_ml", "volume_change_percent",
    "longest_diameter_mm_before", "longest_diameter_mm_after", "diameter_change_percent", "interval_days",
    "doubling_time_days", "doubling_time_note",
)
ORGAN_COLUMNS = (
    "from_timepoint", "to_timepoint", "name", "volume_ml_before", "volume_ml_after", "volume_change_ml",
    "volume_change_percent", "mean_intensity_before", "mean_intensity_after", "mean_intensity_change",
    "intensity_unit", "touches_fov_before", "touches_fov_after", "note",
)
Extra = Callable[[Path, Comparison], dict[str, Path]]


def write_comparison(out_dir: str | Path, comparison: Comparison, *,
                     extras: Sequence[Extra] = ()) -> dict[str, Path]:
    """Write the tables, every ``extras`` renderer (e.g. the HTML page), then comparison.json."""
    out = ensure_writable_dir(out_dir)
    written = {
        "lesion_changes": write_text(out / LESION_CHANGES, lesion_changes_csv(comparison.matches)),
        "organ_changes": write_text(out / ORGAN_CHANGES, organ_changes_csv(comparison.organs)),
    }
    for extra in extras:
        written.update(extra(out, comparison))
    written["comparison"] = write_text(out / COMPARISON, comparison.to_json())
    return written


def lesion_changes_csv(matches: Sequence[LesionMatch]) -> str:
    rows = [{**m.model_dump(), "before_ids": ";".join(m.before_ids), "after_ids": ";".join(m.after_ids)}
            for m in matches]
    return _csv(LESION_COLUMNS, rows)


def organ_changes_csv(organs: Sequence[OrganChange]) -> str:
    return _csv(ORGAN_COLUMNS, [o.model_dump() for o in organs])


def _csv(columns: Sequence[str], rows: Sequence[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    return buffer.getvalue()


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
