"""The typed result of ``volseg compare``: one versioned :class:`Comparison` that comparison.json,
lesion_changes.csv, organ_changes.csv, comparison.html and the comparison DICOM SR all render.

Time points are numbered in time order: 0 is the baseline, 1, 2, ... the follow-ups. Lesion matching,
registrations and changes are between consecutive time points (``from_timepoint`` → ``to_timepoint``);
RECIST compares every follow-up with the baseline and with the nadir. Every quantity carries its unit
in its field name; coordinates are RAS millimetres (``*_mm``) in the named study's own space unless a
field says ``baseline``. No patient identifiers: a study is named by its output folder, its study_id
(from report.json) and its model.

``SCHEMA_VERSION`` follows semver like the report's: a new optional field is a minor bump, a renamed
or removed field or a changed meaning is a major bump (``compare/comparison.schema.json`` is generated
from these types and versioned under ``compare/schemas/``).
"""
from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, field_validator, model_validator

from volseg.strict import StrictModel

SCHEMA_VERSION = "1.0.0"

Point = tuple[float, float, float]
Matrix4 = tuple[tuple[float, float, float, float], tuple[float, float, float, float],
                tuple[float, float, float, float], tuple[float, float, float, float]]
MatchStatus = Literal["matched", "new", "disappeared", "merged", "split"]
MatchMethod = Literal["overlap", "centroid"]
Category = Literal["CR", "PR", "SD", "PD", "NE"]
RecistRole = Literal["target", "non_target", "new", "untracked"]


def _finite(value: float | None, name: str) -> float | None:
    if value is not None and not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


class StudyRef(StrictModel):
    """One time point's study: where its outputs are, which model made them, when it was acquired."""

    timepoint: int = Field(ge=0, description="0 = baseline, then follow-ups in time order")
    name: str = Field(description="display name: the output folder's name (or the image's file name)")
    output_dir: str | None = Field(None, description="the study output folder (holds report.json)")
    report_path: str | None = Field(None, description="its report.json")
    label_map_path: str = Field(description="the label map (segmentation.nii.gz) compared")
    image_path: str | None = Field(None, description="the image segmented, when known (registration, pictures)")
    image_kind: str | None = Field(None, description="nifti, dicom or itk (dicom: the SR may reference it)")
    study_id: str | None = Field(None, description="report.json's study_id (never a patient identifier)")
    model_name: str | None = None
    model_version: str | None = None
    modality: str | None = None
    spacing_mm: Point | None = None
    shape: tuple[int, int, int] | None = None
    days_from_baseline: float | None = Field(None, description="acquisition interval from time point 0, in days")
    days_source: Literal["dicom", "option", "pairs_csv"] | None = Field(
        None, description="where days_from_baseline came from; None when unknown")


class Registration(StrictModel):
    """The alignment of two consecutive time points in physical space.

    ``matrix_ras_mm`` maps a point of ``from_timepoint`` (RAS mm) to the corresponding point of
    ``to_timepoint``: ``x_to = M @ [x_from, 1]``. ``quality`` is "poor" whenever a figure crosses its
    threshold; then ``warning`` says which, and matches across this interval are to be read with care.
    """

    from_timepoint: int = Field(ge=0)
    to_timepoint: int = Field(ge=1)
    matrix_ras_mm: Matrix4
    method: str = Field(description="e.g. 'rigid (Euler3D) + affine, Mattes mutual information'")
    registered_on: Literal["image", "label_map", "none"] = Field(
        description="what was registered: the two images, the two label maps, or nothing (identity)")
    initialisation: Literal["organ_centroids", "image_centres", "identity"]
    n_centroid_pairs: int = Field(0, ge=0, description="organs present at both times used to initialise")
    metric_name: str | None = None
    metric_value: float | None = Field(None, description="final registration metric (lower is better)")
    rotation_deg: float = Field(description="rotation angle of the rigid part")
    translation_mm: Point = Field(description="translation of the matrix")
    mean_organ_dice: float | None = Field(None, ge=0.0, le=1.0,
                                          description="mean Dice of organs present at both times after alignment")
    centroid_residual_mm: float | None = Field(
        None, ge=0.0, description="mean distance between matched organ centroids after alignment")
    quality: Literal["good", "poor"]
    warning: str | None = None

    @field_validator("matrix_ras_mm")
    @classmethod
    def _affine(cls, value: Matrix4) -> Matrix4:
        if any(not math.isfinite(v) for row in value for v in row):
            raise ValueError("matrix_ras_mm must be finite")
        if tuple(value[3]) != (0.0, 0.0, 0.0, 1.0):
            raise ValueError(f"matrix_ras_mm's last row must be (0, 0, 0, 1), got {value[3]}")
        return value

    @model_validator(mode="after")
    def _check(self) -> Registration:
        if self.to_timepoint <= self.from_timepoint:
            raise ValueError("to_timepoint must follow from_timepoint")
        if self.quality == "poor" and not self.warning:
            raise ValueError("a poor registration must carry a warning")
        return self


class OrganChange(StrictModel):
    """One organ (structure) between two time points: volume and mean intensity at both, and the change."""

    name: str
    from_timepoint: int = Field(ge=0)
    to_timepoint: int = Field(ge=1)
    volume_ml_before: float | None = Field(None, ge=0.0, description="None when absent at that time")
    volume_ml_after: float | None = Field(None, ge=0.0)
    volume_change_ml: float | None = None
    volume_change_percent: float | None = Field(None, description="None when absent at either time")
    mean_intensity_before: float | None = None
    mean_intensity_after: float | None = None
    mean_intensity_change: float | None = None
    intensity_unit: str | None = Field(None, description="'HU' for CT, else 'image units (<modality>)'")
    touches_fov_before: bool = False
    touches_fov_after: bool = False
    note: str | None = Field(None, description="e.g. 'absent at follow-up' or 'cut by the field of view'")

    @model_validator(mode="after")
    def _check(self) -> OrganChange:
        for name in ("volume_change_ml", "volume_change_percent", "mean_intensity_change"):
            _finite(getattr(self, name), name)
        return self


class LesionMeasurement(StrictModel):
    """One lesion (or lymph node) at one time point, as its study's report measured it."""

    timepoint: int = Field(ge=0)
    lesion_id: str = Field(description="the study's instance_id, e.g. 'liver_tumor-1'")
    class_name: str
    kind: Literal["lesion", "lymph_node"]
    volume_ml: float = Field(ge=0.0)
    longest_diameter_mm: float = Field(ge=0.0, description="RECIST long axis (axial)")
    short_axis_mm: float = Field(ge=0.0)
    recist_diameter_mm: float = Field(ge=0.0, description="what RECIST sums: short axis for nodes, else long axis")
    centroid_mm: Point = Field(description="RAS mm in this study's space")
    centroid_baseline_mm: Point = Field(description="the centroid mapped into time point 0's space")
    host_organ: str | None = None
    touches_fov: bool = False
    measurable: bool = Field(description="RECIST 1.1 measurable (>= 10 mm long axis; nodes >= 15 mm short axis)")
    recist_role: RecistRole = Field(description="target / non_target (from the baseline selection), new, "
                                                "or untracked (its baseline lesion is unknown: merged/split)")
    track_id: str | None = Field(None, description="the lesion track (baseline lesion id or 'new@T<n>:<id>')")


class LesionMatch(StrictModel):
    """How lesions of two consecutive time points correspond.

    ``matched``: one to one; ``split``: one before, several after; ``merged``: several before, one after;
    ``new``: none before; ``disappeared``: none after. Volumes are summed over the ids on each side.
    """

    from_timepoint: int = Field(ge=0)
    to_timepoint: int = Field(ge=1)
    status: MatchStatus
    before_ids: list[str] = Field(default_factory=list)
    after_ids: list[str] = Field(default_factory=list)
    class_name: str
    kind: Literal["lesion", "lymph_node"]
    method: MatchMethod | None = Field(None, description="overlap after alignment, else nearest centroid")
    dice: float | None = Field(None, ge=0.0, le=1.0, description="Dice of the aligned masks (overlap matches)")
    centroid_distance_mm: float | None = Field(None, ge=0.0, description="after alignment")
    volume_ml_before: float | None = Field(None, ge=0.0)
    volume_ml_after: float | None = Field(None, ge=0.0)
    volume_change_ml: float | None = None
    volume_change_percent: float | None = None
    longest_diameter_mm_before: float | None = Field(None, ge=0.0)
    longest_diameter_mm_after: float | None = Field(None, ge=0.0)
    diameter_change_percent: float | None = None
    interval_days: float | None = Field(None, gt=0.0)
    doubling_time_days: float | None = Field(
        None, description="V-doubling time: interval * ln 2 / ln(V_after / V_before); negative = shrinking, "
                          "None when unknown (see doubling_time_note)")
    doubling_time_note: str | None = None

    @model_validator(mode="after")
    def _check(self) -> LesionMatch:
        before, after = len(self.before_ids), len(self.after_ids)
        expected = {"matched": (before == 1 and after == 1), "new": (before == 0 and after >= 1),
                    "disappeared": (before >= 1 and after == 0), "merged": (before >= 2 and after == 1),
                    "split": (before == 1 and after >= 2)}[self.status]
        if not expected:
            raise ValueError(f"status {self.status!r} does not fit {before} lesion(s) before and {after} after")
        if self.to_timepoint <= self.from_timepoint:
            raise ValueError("to_timepoint must follow from_timepoint")
        for name in ("volume_change_percent", "diameter_change_percent", "doubling_time_days"):
            _finite(getattr(self, name), name)
        return self


class RecistTarget(StrictModel):
    """A baseline target lesion followed over time: its RECIST diameter at each time point."""

    lesion_id: str = Field(description="baseline instance id")
    class_name: str
    kind: Literal["lesion", "lymph_node"]
    organ: str = Field(description="the organ of the two-per-organ rule")
    measure: Literal["long_axis", "short_axis"] = Field(description="short_axis for lymph nodes")
    diameters_mm: list[float | None] = Field(
        description="per time point; 0.0 when gone, None when not evaluable (merged/split into untracked lesions)")
    ids_by_timepoint: list[list[str]] = Field(description="the lesion ids it corresponds to at each time point")


class RecistNode(StrictModel):
    """A lymph node (target or not) by its short axis; normal when < 10 mm (RECIST 1.1)."""

    lesion_id: str
    role: Literal["target", "non_target", "new"]
    short_axis_mm: list[float | None] = Field(description="per time point; 0.0 when gone, None before it appeared")
    normal_at_last: bool = Field(description="short axis < 10 mm (or gone) at the last time point")


class RecistTimepoint(StrictModel):
    """The RECIST 1.1 sums and the response at one time point."""

    timepoint: int = Field(ge=0)
    sum_mm: float | None = Field(None, ge=0.0, description="sum of target diameters; None when not evaluable")
    change_from_baseline_percent: float | None = None
    nadir_sum_mm: float | None = Field(None, ge=0.0, description="smallest sum before this time point")
    nadir_timepoint: int | None = None
    change_from_nadir_percent: float | None = None
    change_from_nadir_mm: float | None = None
    new_lesion_ids: list[str] = Field(default_factory=list, description="new at this time point")
    category: Category | None = Field(None, description="None at the baseline")
    rule: str | None = Field(None, description="the rule that decided the category, in words")


class RecistAssessment(StrictModel):
    """RECIST 1.1 over all time points: baseline targets, non-targets, new lesions, sums and response."""

    targets: list[RecistTarget] = Field(default_factory=list)
    non_target_ids: list[str] = Field(default_factory=list, description="baseline lesions not chosen as targets")
    new_lesion_ids: list[str] = Field(default_factory=list, description="'T<n>:<id>' for every new lesion")
    lymph_nodes: list[RecistNode] = Field(default_factory=list)
    timepoints: list[RecistTimepoint]
    baseline_sum_mm: float = Field(ge=0.0)
    nadir_sum_mm: float | None = Field(None, ge=0.0, description="smallest sum before the last time point")
    nadir_timepoint: int | None = None
    category: Category = Field(description="the response at the last time point")
    rule: str = Field(description="the rule that decided it")
    notes: list[str] = Field(default_factory=list, description="limits, e.g. non-target progression is not judged")


class CompareSettings(StrictModel):
    """The options the comparison ran with (defaults live in :mod:`volseg.compare.options`)."""

    match_tolerance_mm: float = Field(gt=0.0)
    min_match_dice: float = Field(ge=0.0, le=1.0)
    poor_residual_mm: float = Field(gt=0.0)
    poor_dice: float = Field(ge=0.0, le=1.0)
    registration: Literal["auto", "image", "label_map", "none"]


class Comparison(StrictModel):
    """The whole comparison of two (or more) studies of one patient. comparison.json renders it."""

    schema_version: str = SCHEMA_VERSION
    volseg_version: str
    created_utc: str
    studies: list[StudyRef] = Field(min_length=2)
    registrations: list[Registration] = Field(description="one per consecutive pair of time points")
    organs: list[OrganChange] = Field(default_factory=list, description="per organ and consecutive interval")
    lesions: list[LesionMeasurement] = Field(default_factory=list, description="every lesion at every time point")
    matches: list[LesionMatch] = Field(default_factory=list)
    recist: RecistAssessment | None = Field(None, description="None when the model has no lesion classes")
    settings: CompareSettings
    warnings: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> Comparison:
        if [s.timepoint for s in self.studies] != list(range(len(self.studies))):
            raise ValueError("studies must be numbered 0, 1, 2, ... in time order")
        if len(self.registrations) != len(self.studies) - 1:
            raise ValueError(f"{len(self.studies)} studies need {len(self.studies) - 1} registration(s), "
                             f"got {len(self.registrations)}")
        for i, reg in enumerate(self.registrations):
            if (reg.from_timepoint, reg.to_timepoint) != (i, i + 1):
                raise ValueError(f"registration {i} must go from time point {i} to {i + 1}")
        return self

    def to_json(self) -> str:
        return self.model_dump_json(indent=2) + "\n"

    def lesion(self, timepoint: int, lesion_id: str) -> LesionMeasurement:
        """The lesion ``lesion_id`` at ``timepoint`` (KeyError when absent)."""
        for row in self.lesions:
            if row.timepoint == timepoint and row.lesion_id == lesion_id:
                return row
        raise KeyError(f"{lesion_id} at time point {timepoint}")
