"""One time point of a comparison: a study output folder (report.json + label map), read and checked.

A study is named by its folder and its report's study_id, never by patient tags. Its image is the one
given, else the input path report.json recorded (``provenance.options.input_path``, written with
``--keep-phi``); without one, registration falls back to the label maps. The acquisition date is read
from a DICOM image's StudyDate only to compute intervals; it is never written out.
"""
from __future__ import annotations

import datetime as _dt
import logging
from dataclasses import dataclass
from pathlib import Path

from volseg.compare.results import StudyRef
from volseg.errors import InputError, ModelError
from volseg.io.types import LoadedImage
from volseg.labels import LabelTable
from volseg.reports.model import Report
from volseg.volume import Volume

log = logging.getLogger(__name__)

REPORT = "report.json"
LABELS = "labels.json"
LABEL_MAPS = ("segmentation.nii.gz", "segmentation.nii")


@dataclass(frozen=True)
class Timepoint:
    """A study at one time point: its reference, report, label map (+ names) and image (when known)."""

    ref: StudyRef
    report: Report
    labels: Volume
    table: LabelTable
    image: LoadedImage | None
    acquired: _dt.date | None


def load_timepoint(folder: str | Path, timepoint: int, *, image: str | Path | None = None) -> Timepoint:
    """Read the study output ``folder`` (report.json and its label map) as time point ``timepoint``."""
    from volseg.io.label_inputs import read_measure_inputs
    from volseg.reports.schema import load_report

    folder = Path(folder)
    if not folder.is_dir():
        raise InputError("not a study output folder (expected a folder with report.json and the label map)",
                         path=folder)
    report = load_report(folder / REPORT)
    label_map = _label_map(folder)
    image_path = _image_path(report, image)
    names = folder / LABELS if (folder / LABELS).is_file() else None
    inputs = read_measure_inputs(label_map, image=image_path, labels=names)
    loaded = inputs.image
    model = report.provenance.model
    ref = StudyRef(
        timepoint=timepoint, name=folder.resolve().name, output_dir=str(folder), report_path=str(folder / REPORT),
        label_map_path=str(label_map), image_path=str(image_path) if image_path else None,
        image_kind=loaded.source.kind if loaded is not None else report.input.kind,
        study_id=report.study_id, model_name=model.name if model else None,
        model_version=model.version if model else None, modality=report.input.modality,
        spacing_mm=inputs.labels.spacing, shape=inputs.labels.shape,
    )
    return Timepoint(ref, report, inputs.labels, inputs.table, loaded, _acquired(loaded))


def check_same_model(points: list[Timepoint]) -> None:
    """Every time point must come from the same model (else changes would be the models' differences)."""
    first = points[0].ref.model_name
    for point in points[1:]:
        if point.ref.model_name != first:
            raise ModelError(f"segmented with model {point.ref.model_name!r}, the baseline with {first!r}",
                             path=point.ref.report_path,
                             hint="compare studies segmented by the same model")


def _label_map(folder: Path) -> Path:
    for name in LABEL_MAPS:
        if (folder / name).is_file():
            return folder / name
    raise InputError("no label map in the study output folder", path=folder / LABEL_MAPS[0],
                     hint="segment the study with volseg segment, or give the image to compare")


def _image_path(report: Report, image: str | Path | None) -> Path | None:
    if image is not None:
        return Path(image)
    recorded = report.provenance.options.get("input_path")
    if isinstance(recorded, str) and Path(recorded).exists():
        return Path(recorded)
    return None


def _acquired(image: LoadedImage | None) -> _dt.date | None:
    """The study date of a DICOM image (for intervals only), else None."""
    if image is None or not image.source.headers:
        return None
    text = str(getattr(image.source.headers[0], "StudyDate", "") or "")
    try:
        return _dt.datetime.strptime(text[:8], "%Y%m%d").date()
    except ValueError:
        log.debug("no usable StudyDate")
        return None
