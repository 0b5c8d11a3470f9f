"""Write one study's files: segmentation.nii.gz, labels.json, volumetry.csv, lesions.csv, report.json.

lesions.csv is written whenever the report has instances or declares lesion classes (a header
alone when those classes are empty).

Each file is written atomically; report.json is written last, so its presence means the others
are complete.
"""
from __future__ import annotations

from pathlib import Path

from volseg.io.atomic import ensure_writable_dir, write_text
from volseg.io.nifti import label_dtype, write_nifti
from volseg.labels import LabelTable
from volseg.reports.model import Report
from volseg.reports.tables import write_lesions_csv, write_volumetry_csv
from volseg.volume import Volume

SEGMENTATION = "segmentation.nii.gz"
LABELS = "labels.json"
VOLUMETRY = "volumetry.csv"
LESIONS = "lesions.csv"
REPORT = "report.json"


def write_study(out_dir: str | Path, report: Report, labels: LabelTable,
                segmentation: Volume | None) -> dict[str, Path]:
    out = ensure_writable_dir(out_dir)
    written: dict[str, Path] = {}
    if segmentation is not None:
        max_label = max(labels) if len(labels) else 0
        written["segmentation"] = write_nifti(segmentation, out / SEGMENTATION, dtype=label_dtype(max_label))
    written["labels"] = write_text(out / LABELS, labels.to_json())
    written["volumetry"] = write_volumetry_csv(report, out / VOLUMETRY)
    if report.instances or report.lesion_classes:
        written["lesions"] = write_lesions_csv(report, out / LESIONS)
    written["report"] = write_text(out / REPORT, report.to_json())
    return written
