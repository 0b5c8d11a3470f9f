"""Re-render a study's files from its report.json without re-segmenting (``volseg report render``).

HTML pictures need the label map and, for a background, the image: the label map is
``segmentation.nii.gz`` next to report.json (or given); the image is the one given, else the input
path recorded in the report (only recorded with ``--keep-phi``, as paths often name patients). Without
an image the pictures show the label map alone; without a label map the page has no pictures.
"""
from __future__ import annotations

import logging
from pathlib import Path

from volseg.errors import GeometryError, UsageError
from volseg.io.atomic import ensure_writable_dir, write_text
from volseg.labels import LabelTable, read_labels
from volseg.reports.html import REPORT_HTML, render_html, study_pictures
from volseg.reports.model import Report
from volseg.reports.schema import load_report
from volseg.reports.tables import write_lesions_csv, write_volumetry_csv

log = logging.getLogger(__name__)

FORMATS = ("html", "csv")


def render_report(report_path: str | Path, *, fmt: str, out: str | Path | None = None,
                  image: str | Path | None = None, segmentation: str | Path | None = None,
                  labels: str | Path | None = None) -> list[Path]:
    """Render ``report.json`` as ``fmt`` ("html" or "csv"); returns the files written.

    ``out``: a folder (default: the report's folder), or a file name ending in .html / .csv.
    """
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}", hint="use html or csv")
    report_path = Path(report_path)
    report = load_report(report_path)
    folder = report_path.parent
    target = _target(out, folder, fmt)
    if fmt == "csv":
        written = [write_volumetry_csv(report, target)]
        if report.instances or report.lesion_classes:
            written.append(write_lesions_csv(report, target.parent / "lesions.csv"))
        return written
    table = _label_table(report, labels or (folder / "labels.json"))
    page = render_html(report, labels=table, **_pictures(report, table, folder, image, segmentation))
    return [write_text(target, page)]


def _pictures(report: Report, table: LabelTable, folder: Path, image, segmentation) -> dict:
    from volseg.io import read_image

    seg_path = Path(segmentation) if segmentation else folder / "segmentation.nii.gz"
    if not seg_path.exists():
        note = f"No pictures: the label map {seg_path.name} was not found (pass --segmentation)."
        return {"notes": [note]}
    seg = read_image(seg_path).volume
    image_path = Path(image) if image else _recorded_input(report)
    img = read_image(image_path).volume if image_path is not None else None
    if img is not None and not img.same_grid(seg, atol_mm=1e-2):
        raise GeometryError(f"image grid {img.shape} does not match the label map grid {seg.shape}", path=image_path)
    main, lesions, notes = study_pictures(report, table, seg, img)
    return {"pictures": main, "lesion_pictures": lesions, "notes": notes}


def _recorded_input(report: Report) -> Path | None:
    recorded = report.provenance.options.get("input_path")
    if recorded and Path(recorded).exists():
        return Path(recorded)
    return None


def _label_table(report: Report, path: str | Path) -> LabelTable:
    if Path(path).is_file():
        return read_labels(path)
    return LabelTable.from_names({s.label: s.name for s in report.structures})


def _target(out, folder: Path, fmt: str) -> Path:
    default = REPORT_HTML if fmt == "html" else "volumetry.csv"
    if out is None:
        return folder / default
    out = Path(out)
    if out.suffix.lower() == f".{fmt}":
        ensure_writable_dir(out.parent)
        return out
    return ensure_writable_dir(out) / default
