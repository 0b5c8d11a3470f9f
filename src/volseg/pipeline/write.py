"""The outputs a study asks for: checked before predicting (:func:`check_outputs`), written after
(:func:`write_outputs`, the second half of ``volseg segment``, also run by ``volseg batch``)."""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from volseg.options import SegmentOptions
from volseg.pipeline.outputs import OutputOptions
from volseg.segmenters.base import ProgressCallback, no_progress

if TYPE_CHECKING:
    from volseg.io import LoadedImage
    from volseg.pipeline.results import StudyResult
    from volseg.segmenters.base import Segmenter
    from volseg.volume import Volume


def check_outputs(image: LoadedImage, segmenter: Segmenter, *,
                  options: SegmentOptions = SegmentOptions()) -> list[str]:
    """Before predicting: report warnings for the asked outputs, or an error if one cannot be written
    (``--dicom``/``--rtstruct`` without highdicom fail before segmenting)."""
    if not (options.dicom or options.rtstruct):
        return []
    from volseg.reports.dicom_outputs import dicom_preflight

    return dicom_preflight(image.source, segmenter.labels, anonymize=options.anonymize, seg_sr=options.dicom,
                           rtstruct=options.rtstruct)


def write_outputs(image: LoadedImage, labels: Volume, out_dir: str | Path, *, study_id: str,
                  segmenter: Segmenter, options: SegmentOptions = SegmentOptions(),
                  timings: dict[str, float] | None = None, warnings: Iterable[str] = (),
                  input: str | Path | None = None, progress: ProgressCallback = no_progress) -> StudyResult:
    """Measure ``labels`` (``segmenter``'s prediction for ``image``) and write what ``volseg segment``
    writes, for callers that read and predict themselves."""
    from volseg.pipeline.measure import measure_and_write
    from volseg.segmenters.landmarks import segmenter_landmarks
    from volseg.segmenters.subset import keep_classes

    labels, table = keep_classes(labels, segmenter.labels, options.roi_subset, model=segmenter.name)
    warnings = list(warnings)
    if (options.dicom or options.rtstruct) and image.source.kind == "dicom" and not labels.array.any():
        warnings.append("--dicom/--rtstruct: nothing was segmented, so no DICOM SEG/SR/RTSTRUCT was written")
    landmarks = segmenter_landmarks(segmenter, image.volume, warnings)
    return measure_and_write(
        study_id, image, labels, table, out_dir, model=segmenter.provenance(),
        options=provenance_options(segmenter, options, landmarks=landmarks, input=input),
        timings=dict(timings or {}), extra_warnings=warnings, outputs=OutputOptions.of(options),
        instance_classes=instance_classes(segmenter), progress=progress,
        organs=landmarks.volume if landmarks else None, organ_table=landmarks.table if landmarks else None,
    )


def provenance_options(segmenter: Segmenter, options: SegmentOptions, *, landmarks=None,
                       input: str | Path | None = None) -> dict[str, Any]:
    """report.json's ``provenance.options`` for a segmented study (keys in this order)."""
    return {"model": segmenter.name, "device": options.device, "series": options.series,
            "html": options.html, "dicom": options.dicom, "rtstruct": options.rtstruct,
            "anonymize": options.anonymize, "keep_phi": options.keep_phi, "fast": options.fast,
            "masks": options.masks, "roi_subset": list(options.roi_subset or []) or None,
            "landmarks": landmarks.provenance() if landmarks else None,
            **(input_path(input, options) if input is not None else {})}


def input_path(input: str | Path, options: SegmentOptions) -> dict[str, str]:
    """The input's full path (for re-rendering pictures) only with keep_phi: paths often name patients."""
    return {"input_path": str(Path(input).resolve())} if options.keep_phi else {}


def instance_classes(segmenter: Segmenter) -> list[str] | None:
    """Lesion-type classes the model's catalogue entry declares (None: the naming rule)."""
    declared = segmenter.entry.instance_classes if segmenter.entry is not None else None
    return list(declared) if declared else None
