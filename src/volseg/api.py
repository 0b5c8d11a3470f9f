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

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from volseg.api_inputs import ModelLoader, fitting_segmenter, input_names, naming
from volseg.errors import InputError, ModelError, UsageError, VolsegError, unknown_choice_hint
from volseg.io import LoadedImage, read_image, study_name
from volseg.labels import LabelTable
from volseg.options import MeasureOptions, SegmentOptions
from volseg.reports.model import Report
from volseg.segmenters.base import ProgressCallback, Segmenter, no_progress
from volseg.segmenters.subset import keep_classes
from volseg.volume import Volume

log = logging.getLogger(__name__)

__all__ = [
    "StudyResult", "StudyFailure", "DemoResult", "ImageInfo", "ModelStatus", "load_model", "segment",
    "check_outputs", "write_outputs", "segment_many", "measure", "demo", "batch", "render_report", "collect",
    "info", "list_series", "download_models", "export_lock", "export_models", "install_models",
    "model_statuses", "show_model", "verify_models", "evaluate", "EvaluationResult",
]


@dataclass(frozen=True)
class StudyResult:
    """One segmented or measured study: its report and the files written (name → path)."""

    study_id: str
    report: Report
    outputs: dict[str, Path] = field(default_factory=dict)

    def labels_nifti(self):
        """The label map written (segmentation.nii.gz) as a nibabel image."""
        import nibabel as nib

        if "segmentation" not in self.outputs:
            raise UsageError(f"study {self.study_id!r} wrote no label map (measure writes none)")
        return nib.load(str(self.outputs["segmentation"]))


@dataclass(frozen=True)
class StudyFailure:
    """A study that could not be done, with the error saying why."""

    study_id: str
    input: str
    error: VolsegError


def load_model(model: str | None = None, *, device: str = "auto", trust: bool = False,
               engine: dict[str, Any] | None = None) -> Segmenter:
    """Load a model once (default: the best installed, else the built-in ``classic-ct``).

    ``model`` is a catalogue name or a path (nnU-Net folder, ``.onnx`` with its sidecar, MONAI
    bundle folder); ``trust=True`` lets a custom MONAI bundle's config, which can run code, be
    instantiated; ``engine`` overrides the sliding-window settings (``SegmentOptions.engine``).
    """
    from volseg.segmenters.registry import load_segmenter

    return load_segmenter(model, device=device, trust=trust, engine=engine)


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
    return _segment(input, out_dir, options, ModelLoader(options, segmenter), progress, study_id)


def _segment(input, out_dir, options: SegmentOptions, loader: ModelLoader, progress: ProgressCallback,
             study_id: str | None) -> StudyResult:
    from volseg.io.atomic import ensure_writable_dir
    from volseg.io.convert import as_loaded_image, is_path
    from volseg.reports.outputs import output_folder

    ensure_writable_dir(output_folder(out_dir))
    timings: dict[str, float] = {}
    study_id, about = input_names(input, study_id)
    t = time.perf_counter()
    progress("read", 0, 1)
    image = as_loaded_image(input, series=options.series, name=study_id)
    progress("read", 1, 1)
    timings["read"] = time.perf_counter() - t
    with naming(about):
        segmenter = fitting_segmenter(image, loader, about=about, timings=timings)
        warnings = check_outputs(image, segmenter, options=options)
        t = time.perf_counter()
        labels = segmenter.predict(image.volume, modality=image.source.modality, progress=progress)
        timings["segment"] = time.perf_counter() - t
        warnings = [*warnings, *labels.meta.get("segmenter_warnings", ())]
    return write_outputs(image, labels, out_dir, study_id=study_id, segmenter=segmenter, options=options,
                         timings=timings, warnings=warnings, input=input if is_path(input) else None,
                         progress=progress)


def check_outputs(image: LoadedImage, segmenter: Segmenter, *,
                  options: SegmentOptions = SegmentOptions()) -> list[str]:
    """Before predicting: report warnings for the asked outputs, or an error if one cannot be written."""
    return _dicom_preflight(image, segmenter.labels, options)


def write_outputs(image: LoadedImage, labels: Volume, out_dir: str | Path, *, study_id: str,
                  segmenter: Segmenter, options: SegmentOptions = SegmentOptions(),
                  timings: dict[str, float] | None = None, warnings: Iterable[str] = (),
                  input: str | Path | None = None, progress: ProgressCallback = no_progress) -> StudyResult:
    """Measure ``labels`` (``segmenter``'s prediction for ``image``) and write what :func:`segment` writes.

    The second half of :func:`segment`, for callers that read and predict themselves (``volseg batch``).
    """
    labels, table = keep_classes(labels, segmenter.labels, options.roi_subset, model=segmenter.name)
    warnings = list(warnings)
    if (options.dicom or options.rtstruct) and image.source.kind == "dicom" and not labels.array.any():
        warnings.append("--dicom/--rtstruct: nothing was segmented, so no DICOM SEG/SR/RTSTRUCT was written")
    from volseg.segmenters.landmarks import segmenter_landmarks

    landmarks = segmenter_landmarks(segmenter, image.volume, warnings)
    return _measure_and_write(
        study_id, image, labels, table, out_dir,
        model=segmenter.provenance(), options={"model": segmenter.name, "device": options.device,
                                               "series": options.series, "html": options.html,
                                               "dicom": options.dicom, "rtstruct": options.rtstruct,
                                               "anonymize": options.anonymize, "keep_phi": options.keep_phi,
                                               "fast": options.fast, "masks": options.masks,
                                               "roi_subset": list(options.roi_subset or []) or None,
                                               "landmarks": landmarks.provenance() if landmarks else None,
                                               **(_input_path(input, options) if input is not None else {})},
        timings=dict(timings or {}), extra_warnings=warnings,
        outputs={"html": options.html, "dicom": options.dicom, "rtstruct": options.rtstruct,
                 "anonymize": options.anonymize,
                 "masks": options.masks},
        instance_classes=_catalogue_instance_classes(segmenter), progress=progress,
        organs=landmarks.volume if landmarks else None, organ_table=landmarks.table if landmarks else None,
    )



def segment_many(inputs: Iterable[str | Path], out_dir: str | Path, *,
                 options: SegmentOptions = SegmentOptions(), progress: ProgressCallback = no_progress,
                 on_done: Callable[[StudyResult | StudyFailure], None] | None = None,
                 ) -> list[StudyResult | StudyFailure]:
    """Segment several studies with one loaded model; a failing study is recorded, the rest go on.

    One input writes into ``out_dir`` (a folder, or ``X.nii.gz``); several into ``out_dir/<study name>/``.
    """
    from volseg.io.atomic import ensure_writable_dir
    from volseg.reports.outputs import output_folder

    inputs = [Path(p) for p in inputs]
    ensure_writable_dir(output_folder(out_dir, studies=len(inputs)))
    loader = ModelLoader(options)  # loaded once, after the first input is checked against the model
    results: list[StudyResult | StudyFailure] = []
    names = _unique_study_names(inputs)
    for path, name in zip(inputs, names):
        target = Path(out_dir) if len(inputs) == 1 else Path(out_dir) / name
        try:
            outcome: StudyResult | StudyFailure = _segment(path, target, options, loader, progress, None)
        except (InputError, ModelError) as exc:  # this study cannot be done: record it, go on
            if loader.failed:  # the model itself cannot be loaded: no study can be done
                raise
            log.debug("study %s failed: %s", name, exc.one_line())  # the caller reports it
            outcome = StudyFailure(name, str(path), exc)
        results.append(outcome)
        if on_done:
            on_done(outcome)
    return results


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
    from volseg.io.atomic import ensure_writable_dir
    from volseg.io.label_inputs import read_measure_inputs, read_organs

    ensure_writable_dir(out_dir)
    t = time.perf_counter()
    inputs = read_measure_inputs(segmentation, image=image, labels=labels)  # onto the image's grid
    label_volume, table, source = inputs.labels, inputs.table, inputs.image
    organ_volume, organ_table = read_organs(organs, organ_labels, label_volume)
    if instances is not None:
        _check_class_names(instances, table, labels or segmentation)
    timings = {"read": time.perf_counter() - t}
    return _measure_and_write(
        study_name(image or segmentation), source or inputs.segmentation, label_volume, table, out_dir,
        model=None, options={"connectivity": options.connectivity, "mode": "measure",
                             "instances": list(instances) if instances is not None else None,
                             "organs": Path(organs).name if organs else None,
                             "min_instance_volume_mm3": options.min_instance_volume_mm3},
        timings=timings, has_intensity=source is not None, connectivity=options.connectivity,
        extra_warnings=inputs.warnings,
        write_segmentation=False, instance_classes=instances, organs=organ_volume, organ_table=organ_table,
        min_instance_volume_mm3=options.min_instance_volume_mm3,
    )


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


# ---- helpers ------------------------------------------------------------------------------
def _measure_and_write(study_id: str, image: LoadedImage, labels: Volume, table: LabelTable,
                       out_dir: str | Path, *, model, options, timings, has_intensity: bool = True,
                       connectivity: int = 26, write_segmentation: bool = True,
                       extra_warnings: Iterable[str] = (), outputs: dict | None = None,
                       instance_classes: Sequence[str] | None = None, organs: Volume | None = None,
                       organ_table: LabelTable | None = None, min_instance_volume_mm3: float = 0.0,
                       progress: ProgressCallback = no_progress) -> StudyResult:
    from volseg.postprocess.clinical import clinical_measurements
    from volseg.postprocess.intensity import HU_UNIT, intensity_unit
    from volseg.postprocess.measure import measure_structures, outside_fov_mask
    from volseg.reports.build import build_report, provenance
    from volseg.reports.outputs import write_study

    t = time.perf_counter()
    progress("measuring", 0, 1)
    warnings: list[str] = list(extra_warnings)
    hu = intensity = unit = None
    if has_intensity:
        modality = image.source.modality or image.volume.meta.get("modality")
        intensity, unit = image.volume.array, intensity_unit(image.volume.array, modality)
        hu = intensity if unit == HU_UNIT else None
        if hu is None:
            warnings.append(f"intensity statistics in {unit}, not HU: the image is not CT in HU")
    measurements = measure_structures(
        labels.array, labels.affine, table.names(), image=intensity, intensity_unit=unit or HU_UNIT,
        outside_fov=outside_fov_mask(hu) if hu is not None else None, connectivity=connectivity,
    )
    timings["measure"] = time.perf_counter() - t
    progress("measuring", 1, 1)
    t = time.perf_counter()
    progress("clinical measurements", 0, 1)
    clinical = clinical_measurements(
        labels.array, labels.affine, table.names(), measurements, image=hu, instance_classes=instance_classes,
        organ_map=organs.array if organs is not None else None,
        organ_names=organ_table.names() if organ_table is not None else None,
        connectivity=connectivity, min_instance_volume_mm3=min_instance_volume_mm3,
    )
    timings["clinical"] = time.perf_counter() - t
    progress("clinical measurements", 1, 1)
    prov = provenance(model=model, options=options, timings_s=timings)
    report = build_report(study_id=study_id, image=image, measurements=measurements, labels=table,
                          provenance=prov, warnings=warnings, clinical=clinical)
    written = write_study(out_dir, report, table, labels if write_segmentation else None, label_map=labels,
                          image=image if has_intensity else None, progress=progress, **(outputs or {}))
    return StudyResult(study_id, report, written)


def _input_path(input: str | Path, options: SegmentOptions) -> dict[str, str]:
    """The input's full path (for re-rendering pictures) only with keep_phi: paths often name patients."""
    return {"input_path": str(Path(input).resolve())} if options.keep_phi else {}


def _dicom_preflight(image: LoadedImage, table: LabelTable, options: SegmentOptions) -> list[str]:
    """Report warnings for ``--dicom``/``--rtstruct``; fails before segmenting when highdicom is missing."""
    if not (options.dicom or options.rtstruct):
        return []
    from volseg.reports.dicom_outputs import dicom_preflight

    return dicom_preflight(image.source, table, anonymize=options.anonymize, seg_sr=options.dicom,
                           rtstruct=options.rtstruct)


def _check_class_names(names: Sequence[str], table: LabelTable, path) -> None:
    known = set(table.names().values())
    for name in names:
        if name not in known:
            raise UsageError(f"no class {name!r} in the labels of {Path(path).name}",
                             hint=unknown_choice_hint(name, known))


def _catalogue_instance_classes(segmenter: Segmenter) -> list[str] | None:
    """Lesion-type classes a catalogue entry declares for its model (None: the naming rule)."""
    from volseg.segmenters.catalogue import load_catalogue

    entry = load_catalogue().get(getattr(segmenter, "name", ""))
    declared = getattr(entry, "instance_classes", None) if entry is not None else None
    return list(declared) if declared else None


def _unique_study_names(paths: list[Path]) -> list[str]:
    names: list[str] = []
    for p in paths:
        base = study_name(p)
        name, n = base, 2
        while name in names:
            name, n = f"{base}-{n}", n + 1
        names.append(name)
    return names


# ---- model management (catalogue and weights), in its own module ----------------------------
from volseg.api_models import (  # noqa: E402,F401  (re-exported: one API namespace)
    ModelStatus,
    download_models,
    export_lock,
    export_models,
    install_models,
    model_statuses,
    show_model,
    verify_models,
)
from volseg.api_inputs import ImageInfo, info, list_series  # noqa: E402,F401  (re-exported)


# ---- evaluation against a reference (two label maps, or folders of studies), in its own module ----
from volseg.api_evaluate import EvaluationResult, evaluate  # noqa: E402,F401  (re-exported: one API namespace)
