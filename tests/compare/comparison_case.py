"""A hand-built :class:`Comparison` with known answers, and its two studies' label maps and CT images on
disk, for the HTML page and the DICOM SR tests.

The follow-up is the baseline moved by ``MATRIX`` (rotated 8° about S, shifted (12, -6, 4) mm) on a grid
centred on the shift. Lesions (liver_tumor, label 6), baseline → follow-up:
A grows (r 8 → 10 mm, matched), B disappears, C is new, D splits in two, E1 + E2 merge into one.
RECIST targets A and B: sums 28 mm → 20 mm (-28.6 %), PD by the new lesion C.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tests.factories.follow_up import NAMES, Blob, Scene, grid, render, rigid, sphere
from volseg.compare.results import (
    CompareSettings,
    Comparison,
    LesionMatch,
    LesionMeasurement,
    OrganChange,
    RecistAssessment,
    RecistTarget,
    RecistTimepoint,
    Registration,
    StudyRef,
)
from volseg.io.nifti import write_nifti
from volseg.labels import LabelTable

MATRIX = rigid(8.0, (12.0, -6.0, 4.0))
TUMOUR = 6
PHI_FOLDER = "Doe_John_19700101"  # a folder named after a patient: must never reach the page or the SR
RULE = "new lesion(s) since the baseline: T1:liver_tumor-2"

BASELINE = {  # id -> blob, in baseline space
    "liver_tumor-1": sphere(TUMOUR, (-24.0, 8.0, 14.0), 8.0),   # A
    "liver_tumor-2": sphere(TUMOUR, (-20.0, -14.0, -6.0), 6.0),  # B
    "liver_tumor-3": sphere(TUMOUR, (10.0, -30.0, 30.0), 9.0),   # D
    "liver_tumor-4": sphere(TUMOUR, (-16.0, 25.0, -30.0), 4.0),  # E1
    "liver_tumor-5": sphere(TUMOUR, (-4.0, 25.0, -30.0), 4.0),   # E2
}
FOLLOW_UP = {  # id -> blob, in baseline space (rendered through MATRIX)
    "liver_tumor-1": sphere(TUMOUR, (-24.0, 8.0, 14.0), 10.0),   # A'
    "liver_tumor-2": sphere(TUMOUR, (30.0, 12.0, 12.0), 5.0),    # C, new
    "liver_tumor-3": sphere(TUMOUR, (4.0, -30.0, 30.0), 4.0),    # D1
    "liver_tumor-4": sphere(TUMOUR, (16.0, -30.0, 30.0), 4.0),   # D2
    "liver_tumor-5": sphere(TUMOUR, (-10.0, 25.0, -30.0), 8.0),  # E
}
MATCHES = (("matched", ["liver_tumor-1"], ["liver_tumor-1"]), ("disappeared", ["liver_tumor-2"], []),
           ("new", [], ["liver_tumor-2"]), ("split", ["liver_tumor-3"], ["liver_tumor-3", "liver_tumor-4"]),
           ("merged", ["liver_tumor-4", "liver_tumor-5"], ["liver_tumor-5"]))
TRACKS = {(0, i): i for i in BASELINE} | {(1, "liver_tumor-1"): "liver_tumor-1",
                                          (1, "liver_tumor-2"): "T1:liver_tumor-2"}


@dataclass(frozen=True)
class Case:
    comparison: Comparison
    root: Path


def moved(point) -> tuple[float, float, float]:
    return tuple(float(v) for v in MATRIX[:3, :3] @ np.asarray(point, dtype=float) + MATRIX[:3, 3])  # type: ignore


def volume_ml(blob: Blob) -> float:
    return 4.0 / 3.0 * math.pi * blob.axes_mm[0] ** 3 / 1000.0


def build_case(root: Path, *, poor: bool = False, image_kind: str = "nifti",
               followup_image: Path | None = None) -> Case:
    """Write both studies (label map, CT, labels.json) under ``root`` and return their Comparison."""
    refs = [_write_study(root, 0, Scene(lesions=tuple(BASELINE.values())), None, image_kind="nifti"),
            _write_study(root, 1, Scene(lesions=tuple(FOLLOW_UP.values())), MATRIX, image_kind=image_kind,
                         image=followup_image)]
    warning = "mean organ Dice 0.41 < 0.6 after alignment" if poor else None
    registration = Registration(
        from_timepoint=0, to_timepoint=1, matrix_ras_mm=tuple(tuple(float(v) for v in row) for row in MATRIX),
        method="rigid (Euler3D) + affine, Mattes mutual information", registered_on="image",
        initialisation="organ_centroids", n_centroid_pairs=5, metric_name="Mattes", metric_value=-0.6,
        rotation_deg=8.0, translation_mm=(12.0, -6.0, 4.0), mean_organ_dice=0.41 if poor else 0.93,
        centroid_residual_mm=0.4, quality="poor" if poor else "good", warning=warning)
    lesions = [_lesion(0, i, b) for i, b in BASELINE.items()] + [_lesion(1, i, b) for i, b in FOLLOW_UP.items()]
    comparison = Comparison(
        volseg_version="test", created_utc="2026-01-01T00:00:00+00:00", studies=refs, registrations=[registration],
        organs=[OrganChange(name="liver", from_timepoint=0, to_timepoint=1, volume_ml_before=35.2,
                            volume_ml_after=33.1, volume_change_ml=-2.1, volume_change_percent=-5.97,
                            mean_intensity_before=60.0, mean_intensity_after=61.0, mean_intensity_change=1.0,
                            intensity_unit="HU")],
        lesions=lesions, matches=[_match(s, b, a) for s, b, a in MATCHES], recist=_recist(),
        settings=CompareSettings(match_tolerance_mm=15.0, min_match_dice=0.1, poor_residual_mm=10.0, poor_dice=0.6,
                                 registration="auto"),
        warnings=["T1: lymph_node: empty (not found in this image)"])
    return Case(comparison, root)


def _write_study(root: Path, t: int, scene: Scene, matrix, *, image_kind: str, image: Path | None = None) -> StudyRef:
    affine = grid(centre=(12.0, -6.0, 4.0)) if matrix is not None else None
    labels, ct = render(scene, moved=matrix, affine=affine)
    folder = root / f"T{t}-study"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "labels.json").write_text(LabelTable.from_names(NAMES).to_json())
    seg = write_nifti(labels, folder / "segmentation.nii.gz")
    if image is None:
        (root / PHI_FOLDER).mkdir(exist_ok=True)
        image = write_nifti(ct, root / PHI_FOLDER / f"ct_{t}.nii.gz")
    return StudyRef(timepoint=t, name=f"T{t}-study", output_dir=str(folder), label_map_path=str(seg),
                    image_path=str(image), image_kind=image_kind, study_id=f"study-{t}", model_name="phantom",
                    model_version="1", modality="CT", spacing_mm=labels.spacing, shape=labels.shape,
                    days_from_baseline=0.0 if t == 0 else 91.0, days_source="option")


def _lesion(t: int, lesion_id: str, blob: Blob) -> LesionMeasurement:
    d = 2.0 * blob.axes_mm[0]
    role = "new" if (t, lesion_id) == (1, "liver_tumor-2") else (
        "target" if lesion_id in ("liver_tumor-1", "liver_tumor-2") and t == 0 else
        "non_target" if t == 0 else "target" if lesion_id == "liver_tumor-1" else "untracked")
    return LesionMeasurement(
        timepoint=t, lesion_id=lesion_id, class_name="liver_tumor", kind="lesion", volume_ml=volume_ml(blob),
        longest_diameter_mm=d, short_axis_mm=d, recist_diameter_mm=d,
        centroid_mm=moved(blob.centre_mm) if t else blob.centre_mm, centroid_baseline_mm=blob.centre_mm,
        measurable=d >= 10.0, recist_role=role, track_id=TRACKS.get((t, lesion_id)))


def _match(status: str, before: list[str], after: list[str]) -> LesionMatch:
    v0 = sum(volume_ml(BASELINE[i]) for i in before) if before else None
    v1 = sum(volume_ml(FOLLOW_UP[i]) for i in after) if after else None
    d0 = max(2.0 * BASELINE[i].axes_mm[0] for i in before) if before else None
    d1 = max(2.0 * FOLLOW_UP[i].axes_mm[0] for i in after) if after else None
    both = v0 is not None and v1 is not None
    return LesionMatch(
        from_timepoint=0, to_timepoint=1, status=status, before_ids=before, after_ids=after,  # type: ignore[arg-type]
        class_name="liver_tumor", kind="lesion", method="overlap" if both else None,
        volume_ml_before=v0, volume_ml_after=v1, volume_change_ml=(v1 - v0) if both else None,  # type: ignore
        volume_change_percent=100.0 * (v1 / v0 - 1.0) if both else None,  # type: ignore[operator]
        longest_diameter_mm_before=d0, longest_diameter_mm_after=d1,
        diameter_change_percent=100.0 * (d1 / d0 - 1.0) if both else None,  # type: ignore[operator]
        interval_days=91.0)


def _recist() -> RecistAssessment:
    return RecistAssessment(
        targets=[RecistTarget(lesion_id="liver_tumor-1", class_name="liver_tumor", kind="lesion", organ="liver",
                              measure="long_axis", diameters_mm=[16.0, 20.0],
                              ids_by_timepoint=[["liver_tumor-1"], ["liver_tumor-1"]]),
                 RecistTarget(lesion_id="liver_tumor-2", class_name="liver_tumor", kind="lesion", organ="liver",
                              measure="long_axis", diameters_mm=[12.0, 0.0], ids_by_timepoint=[["liver_tumor-2"], []])],
        non_target_ids=["liver_tumor-3", "liver_tumor-4", "liver_tumor-5"], new_lesion_ids=["T1:liver_tumor-2"],
        timepoints=[RecistTimepoint(timepoint=0, sum_mm=28.0),
                    RecistTimepoint(timepoint=1, sum_mm=20.0, change_from_baseline_percent=-28.571,
                                    nadir_sum_mm=28.0, nadir_timepoint=0, change_from_nadir_percent=-28.571,
                                    change_from_nadir_mm=-8.0, new_lesion_ids=["T1:liver_tumor-2"], category="PD",
                                    rule=RULE)],
        baseline_sum_mm=28.0, nadir_sum_mm=28.0, nadir_timepoint=0, category="PD", rule=RULE)
