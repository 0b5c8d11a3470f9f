"""The voxels behind a comparison's studies, for its pictures and its DICOM SR: each time point's label
map, label names, image (when known) and the image's source (DICOM headers when read from a series).

A :class:`Comparison` carries only paths (:class:`~volseg.compare.results.StudyRef`): the label map
(``label_map_path``), the image (``image_path``) and the study output folder (``labels.json``, else the
label names in ``report.json``). :func:`read_study_data` reads them; tests and callers that hold the
volumes already pass their own loader (:data:`StudyLoader`) instead.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from volseg.compare.results import StudyRef
from volseg.io.types import ImageSource
from volseg.labels import LabelTable
from volseg.volume import Volume

log = logging.getLogger(__name__)

LABELS = "labels.json"


@dataclass(frozen=True)
class StudyData:
    """One time point's label map (with its names), image on the same grid (or None) and image source."""

    labels: Volume
    table: LabelTable
    image: Volume | None = None
    source: ImageSource | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)


StudyLoader = Callable[[StudyRef], StudyData]


def read_study_data(ref: StudyRef) -> StudyData:
    """Read ``ref``'s label map, label names and image (an image off the label map's grid is left out,
    with a note)."""
    from volseg.io import read_image

    labels = read_image(ref.label_map_path).volume
    table = study_label_table(ref)
    if not ref.image_path or not Path(ref.image_path).exists():
        return StudyData(labels, table, notes=(f"T{ref.timepoint}: no image, the pictures show the label map",))
    loaded = read_image(ref.image_path)
    if not loaded.volume.same_grid(labels, atol_mm=1e-2):
        note = f"T{ref.timepoint}: the image is not on the label map's grid, the pictures show the label map"
        log.warning("%s", note)
        return StudyData(labels, table, None, loaded.source, (note,))
    return StudyData(labels, table, loaded.volume, loaded.source)


def study_label_table(ref: StudyRef) -> LabelTable:
    """The study's label names: its labels.json, else its report.json's structures, else none."""
    from volseg.labels import read_labels

    folder = Path(ref.output_dir) if ref.output_dir else Path(ref.label_map_path).parent
    if (folder / LABELS).is_file():
        return read_labels(folder / LABELS)
    if ref.report_path and Path(ref.report_path).is_file():
        from volseg.reports.schema import load_report

        report = load_report(ref.report_path)
        return LabelTable.from_names({s.label: s.name for s in report.structures})
    return LabelTable.from_names({})


def cached(loader: StudyLoader) -> StudyLoader:
    """``loader`` reading each time point once (the page and the SR share the reads)."""
    done: dict[int, StudyData] = {}

    def load(ref: StudyRef) -> StudyData:
        if ref.timepoint not in done:
            done[ref.timepoint] = loader(ref)
        return done[ref.timepoint]

    return load
