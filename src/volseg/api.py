"""volseg's Python API: what the CLI wraps, one function per job.

>>> from volseg import api
>>> seg = api.load_model("classic-ct")                     # load once ...
>>> result = api.segment("ct.nii.gz", "out/", segmenter=seg)  # ... predict many
>>> result.report.structure("lung_left").volume_ml

Images are paths, nibabel or SimpleITK images or Volumes. Every function takes keyword options,
raises :class:`~volseg.errors.VolsegError` subclasses for expected problems, logs (never prints)
and reports progress through a callback.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from volseg.io import read_image
from volseg.options import MeasureOptions, SegmentOptions
from volseg.pipeline.model import ModelLoader
from volseg.pipeline.results import StudyFailure, StudyResult
from volseg.pipeline.write import check_outputs, write_outputs  # noqa: F401  (re-exported: public API)
from volseg.segmenters.base import ProgressCallback, Segmenter, no_progress
from volseg.segmenters.engine.settings import EngineOverrides

__all__ = [
    "StudyResult", "StudyFailure", "DemoResult", "ImageInfo", "ModelStatus", "load_model", "segment",
    "check_outputs", "write_outputs", "segment_many", "measure", "demo", "batch", "render_report", "collect",
    "info", "list_series", "download_models", "export_lock", "export_models", "install_models",
    "model_statuses", "show_model", "verify_models", "evaluate", "EvaluationResult",
    "compare", "compare_cohort", "CompareOptions", "CompareResult",
]


def load_model(model: str | None = None, *, device: str = "auto", trust: bool = False,
               engine: EngineOverrides | Mapping[str, Any] | None = None) -> Segmenter:
    """Load a model once (default: the best installed, else the built-in ``classic-ct``).

    ``model`` is a catalogue name or a path (nnU-Net folder, ``.onnx`` with its sidecar, MONAI
    bundle folder); ``trust=True`` lets a custom MONAI bundle's config, which can run code, be
    instantiated; ``engine`` overrides engine settings (an :class:`EngineOverrides`, as
    ``SegmentOptions.engine``, or a mapping of its field names).
    """
    from volseg.pipeline.model import load_model as _load

    return _load(model, device=device, trust=trust, engine=engine)


def segment(input: Any, out_dir: str | Path, *, options: SegmentOptions = SegmentOptions(),
            segmenter: Segmenter | None = None, progress: ProgressCallback = no_progress,
            study_id: str | None = None) -> StudyResult:
    """Segment one study; writes segmentation.nii.gz (or ``out_dir`` when it names ``X.nii.gz``),
    labels.json, colour tables, volumetry.csv, report.html (``options.html``), DICOM SEG + SR
    (``options.dicom``, DICOM inputs), per-class masks (``options.masks``) and report.json.

    ``input`` is a path, a nibabel or SimpleITK image or a Volume (study id: ``study_id``, else the
    file name, else "study"). The model must fit the input (modality, HU, body region) unless
    ``options.force``: checked before its weights are loaded, else before it predicts.
    """
    from volseg.pipeline.study import segment_study

    return segment_study(input, out_dir, options, ModelLoader(options, segmenter), progress=progress,
                         study_id=study_id)


def segment_many(inputs: Iterable[str | Path], out_dir: str | Path, *,
                 options: SegmentOptions = SegmentOptions(), progress: ProgressCallback = no_progress,
                 on_done: Callable[[StudyResult | StudyFailure], None] | None = None,
                 ) -> list[StudyResult | StudyFailure]:
    """Segment several studies with one loaded model; a failing study is recorded, the rest go on.

    One input writes into ``out_dir`` (a folder, or ``X.nii.gz``); several into ``out_dir/<study name>/``.
    """
    from volseg.pipeline.study import segment_studies

    return segment_studies(inputs, out_dir, options, progress=progress, on_done=on_done)


def measure(segmentation: str | Path, out_dir: str | Path, *, image: str | Path | None = None,
            labels: str | Path | None = None, options: MeasureOptions = MeasureOptions(),
            instances: Sequence[str] | None = None, organs: str | Path | None = None,
            organ_labels: str | Path | None = None) -> StudyResult:
    """Report and CSVs for an existing label map, masks folder or DICOM SEG (and its image, for
    intensity statistics); a label map stored with another axis order or reversed axes than the
    image is reoriented onto the image's grid (never resampled), a different grid is refused.

    ``instances`` names the lesion-type classes to split into lesions/nodes (default: classes whose
    names say tumour, lesion, nodule, metastasis, cyst or lymph node); they go to lesions.csv.
    ``organs`` is an organ label map of the same study on the same grid (``organ_labels`` its
    names): host organs and lymph-node station landmarks come from it (default: the
    segmentation's own other classes).
    """
    from volseg.pipeline.measure import measure_study

    return measure_study(segmentation, out_dir, image=image, labels=labels, options=options,
                         instances=instances, organs=organs, organ_labels=organ_labels)


@dataclass(frozen=True)
class DemoResult:
    result: StudyResult
    true_volumes_ml: dict[str, float]
    dice: dict[str, float]
    phantom_path: Path


def demo(out_dir: str | Path, *, progress: ProgressCallback = no_progress) -> DemoResult:
    """The whole path offline on the built-in CT phantom, whose true volumes are known."""
    from volseg.io.atomic import ensure_writable_dir
    from volseg.io.nifti import write_nifti
    from volseg.phantom import PHANTOM_CLASSES, make_phantom
    from volseg.postprocess.compare import dice_per_label

    out = ensure_writable_dir(out_dir)
    phantom = make_phantom()
    ct_path = write_nifti(phantom.image, out / "phantom_ct.nii.gz")
    write_nifti(phantom.truth, out / "phantom_truth.nii.gz")
    result = segment(ct_path, out / "phantom_ct", options=SegmentOptions(model="classic-ct"),
                     progress=progress)
    predicted = read_image(result.outputs["segmentation"]).volume.array
    scores = dice_per_label(predicted, phantom.truth.array, PHANTOM_CLASSES)
    return DemoResult(result, phantom.true_volumes_ml(), scores, ct_path)


def batch(input_dir: str | Path, out_dir: str | Path, *, options=None, on_event=None):
    """Segment a folder of studies, resumably and fault-isolated (see :mod:`volseg.batch`).

    ``options`` is a :class:`volseg.batch.BatchOptions`; ``on_event(BatchEvent)`` receives progress.
    Returns a :class:`volseg.batch.BatchSummary` (done / skipped / failed, ``exit_code``).
    """
    from volseg.batch import BatchOptions, run_batch

    return run_batch(input_dir, out_dir, options=options or BatchOptions(), on_event=on_event)


def render_report(report: str | Path, *, fmt: str = "html", out: str | Path | None = None,
                  image: str | Path | None = None, segmentation: str | Path | None = None,
                  labels: str | Path | None = None) -> list[Path]:
    """Re-render report.html or volumetry.csv from a study's report.json without re-segmenting."""
    from volseg.reports.render import render_report as _render

    return _render(report, fmt=fmt, out=out, image=image, segmentation=segmentation, labels=labels)


def collect(out_dir: str | Path, *, html: bool = True):
    """Cohort tables (cohort_volumetry.csv, cohort_lesions.csv) and index.html for every study's
    report.json under ``out_dir`` (recursively); returns a :class:`~volseg.reports.cohort.CohortResult`."""
    from volseg.reports.cohort import collect as _collect

    return _collect(out_dir, html=html)


# ---- re-exported from their own modules (one API namespace): evaluation against a reference,
# ---- input inspection, model management (catalogue and weights) ------------------------------
from volseg.api_compare import CompareOptions, CompareResult, compare, compare_cohort  # noqa: E402,F401
from volseg.api_evaluate import EvaluationResult, evaluate  # noqa: E402,F401
from volseg.api_inputs import ImageInfo, info, list_series  # noqa: E402,F401
from volseg.api_models import (  # noqa: E402,F401
    ModelStatus,
    download_models,
    export_lock,
    export_models,
    install_models,
    model_statuses,
    show_model,
    verify_models,
)
