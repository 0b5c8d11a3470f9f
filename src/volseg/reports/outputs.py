"""Write one study's files; every file renders the one Report.

segmentation.nii.gz (or the ``.nii.gz`` file ``out_dir`` names, see :func:`output_target`), labels.json,
segmentation.ctbl + segmentation.itksnap.txt (colour tables for 3D Slicer / ITK-SNAP), volumetry.csv,
lesions.csv (whenever the report has instances or declares lesion classes; a header alone when those
classes are empty), optionally ``segmentations/<class>.nii.gz`` (``masks``: one 0/1 mask per class,
TotalSegmentator's layout), the DICOM SEG + SR
(``dicom``) and RTSTRUCT (``rtstruct``), report.html (``html``) and report.json. Each file is written atomically; report.json
is written last, so its presence means the others are complete.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from volseg.io.atomic import ensure_writable_dir, write_text
from volseg.io.nifti import label_dtype, write_nifti
from volseg.io.types import LoadedImage
from volseg.labels import LabelTable
from volseg.reports.colour_tables import write_colour_tables
from volseg.reports.model import Report
from volseg.reports.tables import write_lesions_csv, write_volumetry_csv
from volseg.volume import Volume

if TYPE_CHECKING:
    from volseg.reports.pictures import Picture

SEGMENTATION = "segmentation.nii.gz"
LABELS = "labels.json"
VOLUMETRY = "volumetry.csv"
LESIONS = "lesions.csv"
REPORT = "report.json"
MASKS = "segmentations"
_LABEL_MAP_SUFFIXES = (".nii.gz", ".nii")


def output_target(out: str | Path) -> tuple[Path, str]:
    """(folder, label-map file name) for ``-o``: ``X.nii.gz``/``X.nii`` (not an existing folder) names
    the label map itself and the other files go beside it; anything else is the output folder."""
    out = Path(out)
    if names_label_map(out):
        return out.parent, out.name
    return out, SEGMENTATION


def output_folder(out: str | Path, *, studies: int = 1) -> Path:
    """The folder ``-o`` writes into; UsageError when it names one label map for several studies."""
    if studies > 1 and names_label_map(out):
        from volseg.errors import UsageError

        raise UsageError(f"-o {Path(out).name} names one label map but {studies} inputs were given",
                         hint="give an output folder (one sub-folder per study)")
    return output_target(out)[0]


def names_label_map(out: str | Path) -> bool:
    """True when ``-o`` names the label-map file (``.nii.gz``/``.nii``, not an existing folder)."""
    out = Path(out)
    return out.name.lower().endswith(_LABEL_MAP_SUFFIXES) and not out.is_dir()


def write_masks(folder: str | Path, label_map: Volume, labels: LabelTable) -> dict[str, Path]:
    """``<folder>/<name>.nii.gz`` for every class in ``labels`` (empty ones too): uint8 0/1 on exactly
    the label map's grid, each written atomically."""
    import numpy as np

    out = ensure_writable_dir(folder)
    written: dict[str, Path] = {}
    for index, info in labels.items():
        mask = label_map.with_array((label_map.array == index).astype(np.uint8))
        written[f"mask:{info.name}"] = write_nifti(mask, out / f"{info.name}.nii.gz", dtype=np.uint8)
    return written


@dataclass(frozen=True)
class LabelMapFiles:
    """What needs the label map and the image only, made before the report exists (beside the
    measuring, :func:`write_label_map_files`): the label-map files written and the overview pictures."""

    written: dict[str, Path]
    overview: list[Picture] | None  # None: no report.html


def write_label_map_files(out_dir: str | Path, labels: LabelTable, segmentation: Volume | None, *,
                          label_map: Volume | None = None, image: Volume | None = None, is_ct: bool = False,
                          html: bool = True, masks: bool = False) -> LabelMapFiles:
    """``segmentation`` written as :func:`write_study` writes it (with ``masks``) and, with ``html``,
    the overview pictures of ``label_map`` (default ``segmentation``) drawn on ``image``."""
    folder, seg_name = output_target(out_dir)
    out = ensure_writable_dir(folder)
    written: dict[str, Path] = {}
    label_map = label_map if label_map is not None else segmentation
    if segmentation is not None:
        max_label = max(labels) if len(labels) else 0
        written["segmentation"] = write_nifti(segmentation, out / seg_name, dtype=label_dtype(max_label))
        if masks:
            written.update(write_masks(out / MASKS, segmentation, labels))
    overview = None
    if html and label_map is not None:
        from volseg.reports.html import draw_overview

        overview = draw_overview(labels, label_map, image, is_ct=is_ct)
    return LabelMapFiles(written, overview)


def write_study(out_dir: str | Path, report: Report, labels: LabelTable, segmentation: Volume | None, *,
                image: LoadedImage | None = None, label_map: Volume | None = None, html: bool = True,
                dicom: bool = False, rtstruct: bool = False, anonymize: bool = False, masks: bool = False,
                progress: Callable[[str, int, int], None] | None = None,
                ready: LabelMapFiles | None = None) -> dict[str, Path]:
    """Write the study's files. ``segmentation`` is written as segmentation.nii.gz (or as the file
    ``out_dir`` names, the other files beside it); ``masks`` adds one file per class; ``label_map``
    (default: ``segmentation``) is what pictures and DICOM outputs draw from when it is not written.
    ``image`` (the input) gives the pictures their background and the DICOM outputs their source.
    ``ready``: what :func:`write_label_map_files` already made of the same arguments.
    ``progress(stage, done, total)`` hears of the stages: writing (NIfTI, tables), DICOM outputs,
    pictures (report.json, written last, is quick)."""
    progress = progress or _no_progress
    progress("writing", 0, 1)
    folder, _ = output_target(out_dir)
    out = ensure_writable_dir(folder)
    label_map = label_map if label_map is not None else segmentation
    if ready is None:
        ready = write_label_map_files(out_dir, labels, segmentation, html=False, masks=masks)
    written = dict(ready.written)
    written["labels"] = write_text(out / LABELS, labels.to_json())
    written.update(write_colour_tables(out, labels))
    written["volumetry"] = write_volumetry_csv(report, out / VOLUMETRY)
    if report.instances or report.lesion_classes:
        written["lesions"] = write_lesions_csv(report, out / LESIONS)
    progress("writing", 1, 1)
    if (dicom or rtstruct) and label_map is not None and image is not None and image.source.kind == "dicom" \
            and label_map.array.any():  # a SEG/RTSTRUCT needs one segment at least (api warns when empty)
        from volseg.reports.dicom_outputs import write_dicom_outputs
        from volseg.reports.html import instances

        progress("DICOM outputs", 0, 1)
        written.update(write_dicom_outputs(out, report, labels, label_map, image.source, anonymize=anonymize,
                                           seg_sr=dicom, rtstruct=rtstruct, instances=instances(report)))
        progress("DICOM outputs", 1, 1)
    if html and label_map is not None:
        from volseg.reports.html import write_report_html

        progress("pictures", 0, 1)
        written["html"] = write_report_html(out, report, labels, label_map,
                                            image.volume if image is not None else None, overview=ready.overview)
        progress("pictures", 1, 1)
    written["report"] = write_text(out / REPORT, report.to_json())
    return written


def _no_progress(stage: str, done: int, total: int) -> None:
    """No one listens."""
