"""Measure a label map and write the study's report and files: the last step of every study, and
the whole of ``volseg measure``."""
from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from volseg.errors import UsageError, unknown_choice_hint
from volseg.options import MeasureOptions
from volseg.segmenters.base import ProgressCallback, no_progress

if TYPE_CHECKING:
    from volseg.io import LoadedImage
    from volseg.labels import LabelTable
    from volseg.pipeline.outputs import OutputOptions
    from volseg.pipeline.results import StudyResult
    from volseg.volume import Volume


def measure_study(segmentation: str | Path, out_dir: str | Path, *, image: str | Path | None = None,
                  labels: str | Path | None = None, options: MeasureOptions = MeasureOptions(),
                  instances: Sequence[str] | None = None, organs: str | Path | None = None,
                  organ_labels: str | Path | None = None) -> StudyResult:
    """Report and CSVs for an existing label map (see :func:`volseg.api.measure`)."""
    from volseg.io import study_name
    from volseg.io.atomic import ensure_writable_dir
    from volseg.io.label_inputs import read_measure_inputs, read_organs

    ensure_writable_dir(out_dir)
    t = time.perf_counter()
    inputs = read_measure_inputs(segmentation, image=image, labels=labels)  # onto the image's grid
    label_volume, table, source = inputs.labels, inputs.table, inputs.image
    organ_volume, organ_table = read_organs(organs, organ_labels, label_volume)
    if instances is not None:
        check_class_names(instances, table, labels or segmentation)
    timings = {"read": time.perf_counter() - t}
    return measure_and_write(
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


def measure_and_write(study_id: str, image: LoadedImage, labels: Volume, table: LabelTable,
                      out_dir: str | Path, *, model, options, timings, has_intensity: bool = True,
                      connectivity: int = 26, write_segmentation: bool = True,
                      extra_warnings: Iterable[str] = (), outputs: OutputOptions | None = None,
                      instance_classes: Sequence[str] | None = None, organs: Volume | None = None,
                      organ_table: LabelTable | None = None, min_instance_volume_mm3: float = 0.0,
                      progress: ProgressCallback = no_progress) -> StudyResult:
    """Measurements and clinical measurements of ``labels``, the report (``model`` and ``options``
    its provenance) and the study's files (``outputs``: which optional ones; default html only)."""
    from volseg.pipeline.outputs import OutputOptions
    from volseg.pipeline.results import StudyResult
    from volseg.reports.build import build_report, provenance
    from volseg.reports.outputs import write_label_map_files, write_study

    outputs = outputs or OutputOptions()
    warnings: list[str] = list(extra_warnings)
    intensity, unit, hu = _intensity(image, has_intensity, warnings)
    label_map_files = partial(  # the label map's own files and the overview pictures: no report needed
        write_label_map_files, out_dir, table, labels if write_segmentation else None, label_map=labels,
        image=image.volume if has_intensity else None, is_ct=_is_ct(image, hu, labels),
        html=outputs.html, masks=outputs.masks)
    measurements, clinical, ready = _measure(
        labels, table, intensity, unit, hu, timings, progress, label_map_files, connectivity=connectivity,
        instance_classes=instance_classes, organs=organs, organ_table=organ_table,
        min_instance_volume_mm3=min_instance_volume_mm3)
    prov = provenance(model=model, options=options, timings_s=timings)
    report = build_report(study_id=study_id, image=image, measurements=measurements, labels=table,
                          provenance=prov, warnings=warnings, clinical=clinical)
    written = write_study(out_dir, report, table, labels if write_segmentation else None, label_map=labels,
                          image=image if has_intensity else None, progress=progress, ready=ready,
                          **asdict(outputs))
    return StudyResult(study_id, report, written)


def _is_ct(image: LoadedImage, hu, labels: Volume) -> bool:
    """The pictures' CT window: as the report would say (CT, or a structure measured in HU)."""
    return (image.source.modality or image.volume.meta.get("modality")) == "CT" or \
        (hu is not None and bool(labels.array.any()))


def _intensity(image: LoadedImage, has_intensity: bool, warnings: list[str]):
    """(intensities, their unit, the same as HU or None); warns when they are not CT in HU."""
    from volseg.postprocess.intensity import HU_UNIT, intensity_unit

    if not has_intensity:
        return None, None, None
    modality = image.source.modality or image.volume.meta.get("modality")
    intensity, unit = image.volume.array, intensity_unit(image.volume.array, modality)
    hu = intensity if unit == HU_UNIT else None
    if hu is None:
        warnings.append(f"intensity statistics in {unit}, not HU: the image is not CT in HU")
    return intensity, unit, hu


#: label maps from this size on (a 512×512×128 CT) measure their structures in a child beside the rest
BESIDE_MIN_VOXELS = 1 << 25


def _measure(labels, table, intensity, unit, hu, timings, progress, label_map_files, *, connectivity,
             instance_classes, organs, organ_table, min_instance_volume_mm3):
    """(structures' measurements, clinical measurements, the label map's files). On a large map the
    first and the last run in one forked child beside the clinical measurements here (one child
    only, which takes a worker from the lesions: each process counts its parent's memory again);
    on a smaller one, where measuring the structures takes under a second, they run here after the
    clinical measurements, whose lesions are then shared out over every worker, and the label map's
    files are left to :func:`write_study` (None)."""
    from volseg.parallel import start_forked
    from volseg.postprocess.clinical import clinical_measurements, with_qc
    from volseg.postprocess.intensity import HU_UNIT
    from volseg.postprocess.measure import measure_structures, outside_fov_mask

    outside = outside_fov_mask(hu) if hu is not None else None  # once, for the structures and the lesions
    structures = partial(
        measure_structures, labels.array, labels.affine, table.names(), image=intensity,
        intensity_unit=unit or HU_UNIT, outside_fov=outside, connectivity=connectivity)
    progress("measuring", 0, 2)  # two parts at once: the clinical measurements, the structures'
    big = labels.array.size >= BESIDE_MIN_VOXELS  # else the lesions' workers use the cores better
    with start_forked(partial(_then, structures, label_map_files if big else None), fork=big) as beside:
        t = time.perf_counter()
        clinical = clinical_measurements(
            labels.array, labels.affine, table.names(), image=hu, instance_classes=instance_classes,
            organ_map=organs.array if organs is not None else None,
            organ_names=organ_table.names() if organ_table is not None else None,
            connectivity=connectivity, min_instance_volume_mm3=min_instance_volume_mm3, outside_fov=outside,
        )
        timings["clinical"] = time.perf_counter() - t
        progress("measuring", 1, 2)
        measurements, timings["measure"], ready = beside.result()  # its own time: it ran beside the clinical
    progress("measuring", 2, 2)
    return measurements, with_qc(clinical, measurements, labels.affine, labels.shape), ready


def _then(first, second):
    """(first(), the seconds it took, second() or None without ``second``)."""
    t = time.perf_counter()
    value = first()
    return value, time.perf_counter() - t, second() if second is not None else None


def check_class_names(names: Sequence[str], table: LabelTable, path) -> None:
    """Every name must be a class of ``table`` (``path``: the labels' file, named in the error)."""
    known = set(table.names().values())
    for name in names:
        if name not in known:
            raise UsageError(f"no class {name!r} in the labels of {Path(path).name}",
                             hint=unknown_choice_hint(name, known))
