"""The per-study report: one versioned object; report.json, volumetry.csv and friends render it.

``SCHEMA_VERSION`` follows semver: a new optional field is a minor bump, a renamed or removed field
or a changed meaning is a major bump. Units are part of every measurement's field name.
No patient identifiers: the input is described by file name, geometry and modality only.
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field

from volseg.postprocess.qc import QC_FLAGS
from volseg.strict import StrictModel

SCHEMA_VERSION = "1.4.0"  # 1.1.0: qc_flags/qc_notes, instances, burden, airway; 1.2.0: model details;
# 1.3.0: instances' touches_fov, fragments_on_slice, fragments_sum_mm, fragment_calipers;
# 1.4.0: structures' *_intensity and intensity_unit (statistics for every modality)


class InputSummary(StrictModel):
    file_name: str = Field(description="base name of the input file or DICOM folder")
    kind: str = Field(description="nifti, dicom or itk")
    shape: tuple[int, int, int]
    spacing_mm: tuple[float, float, float]
    orientation: str = Field(description="axis code of the array axes in patient space, e.g. LPS")
    voxel_volume_mm3: float
    modality: str | None = None
    series_number: int | None = None
    n_files: int | None = None
    intensity_min: float | None = None
    intensity_max: float | None = None


class ModelInfo(StrictModel):
    name: str
    version: str
    weights: list[dict[str, Any]] = Field(default_factory=list, description="file name and sha256 of each weight file")
    backend: str | None = None
    details: dict[str, Any] = Field(
        default_factory=dict,
        description="what the backend did: engine settings (precision, export mode, step, mirroring), "
                    "windows, stage timings, reorientation")


class Provenance(StrictModel):
    volseg_version: str
    created_utc: str
    model: ModelInfo | None = None
    device: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    timings_s: dict[str, float] = Field(default_factory=dict)
    fallbacks: list[str] = Field(default_factory=list, description="fallbacks taken (e.g. smaller window batch after out-of-memory)")
    environment: dict[str, str] = Field(default_factory=dict)


class StructureRow(StrictModel):
    label: int
    name: str
    display_name: str | None = None
    voxel_count: int
    volume_ml: float
    mean_hu: float | None = None
    std_hu: float | None = None
    median_hu: float | None = None
    p5_hu: float | None = None
    p95_hu: float | None = None
    min_hu: float | None = None
    max_hu: float | None = None
    mean_intensity: float | None = Field(None, description="in intensity_unit (the *_hu fields repeat them for HU)")
    std_intensity: float | None = None
    median_intensity: float | None = None
    p5_intensity: float | None = None
    p95_intensity: float | None = None
    min_intensity: float | None = None
    max_intensity: float | None = None
    intensity_unit: str | None = Field(None, description="'HU' for CT in HU, else 'image units (<modality>)'")
    centroid_ras_mm: tuple[float, float, float] | None = None
    bbox_min_ras_mm: tuple[float, float, float] | None = None
    bbox_max_ras_mm: tuple[float, float, float] | None = None
    n_components: int
    largest_component_ml: float
    touches_fov: bool = Field(description="cut by the scan's field of view: volume_ml is a lower bound")
    empty: bool
    qc_flags: list[str] = Field(default_factory=list, description="among " + ", ".join(QC_FLAGS))
    qc_notes: list[str] = Field(default_factory=list, description="human explanations of qc_flags")


Point = tuple[float, float, float]


class FragmentCaliper(StrictModel):
    """One piece of a lesion's cross-section on its measurement slice, measured on its own."""

    model_config = StrictModel.model_config | ConfigDict(from_attributes=True)
    length_mm: float = Field(description="the piece's longest in-plane diameter")
    endpoints_ras_mm: tuple[Point, Point]


class InstanceRow(StrictModel):
    """One lesion or lymph node: a connected component of a lesion-type class."""

    instance_id: str = Field(description="<class name>-<n>, n = 1 for the largest of its class")
    label: int
    class_name: str
    kind: Literal["lesion", "lymph_node"]
    voxel_count: int
    volume_ml: float
    long_axis_mm: float = Field(description="RECIST long axis: longest in-plane diameter of one connected piece "
                                            "of an axial cross-section, over the axial slices")
    short_axis_mm: float = Field(description="longest diameter perpendicular to the long axis, same piece and slice")
    long_axis_slice: int = Field(description="index along axial_axis of the slice holding the long axis")
    axial_axis: int = Field(description="array axis (0, 1, 2) closest to the patient's S-I direction")
    long_axis_endpoints_ras_mm: tuple[Point, Point]
    short_axis_endpoints_ras_mm: tuple[Point, Point] | None = None
    feret_max_mm: float = Field(description="maximum 3-D diameter")
    mean_hu: float | None = None
    std_hu: float | None = None
    min_hu: float | None = None
    max_hu: float | None = None
    centroid_ras_mm: Point
    host_organ: str | None = None
    short_axis_class: Literal["<10 mm", "10-<15 mm", ">=15 mm"] | None = None
    station: str | None = Field(None, description="IASLC station (lymph nodes), 'unknown' without landmarks")
    station_zone: str | None = None
    station_note: str | None = Field(None, description="why this station, or which landmark is missing")
    recist_target: bool = False
    touches_fov: bool = Field(False, description="cut by the array edge or the CT's field of view: sizes are lower "
                                                 "bounds; never a RECIST target")
    fragments_on_slice: int = Field(1, description="separate pieces of the cross-section on the long-axis slice")
    fragments_sum_mm: float | None = Field(None, description="RECIST 1.1 fragmented-lesion sum: the long axes of "
                                                             "the pieces on the long-axis slice, added")
    fragment_calipers: list[FragmentCaliper] = Field(
        default_factory=list, description="each piece's long-axis caliper on that slice, longest first")


class BurdenRow(StrictModel):
    class_name: str = Field(description="a lesion class, or 'all'")
    lesion_count: int
    total_volume_ml: float
    recist_target_sum_mm: float = Field(description="sum of target long axes (short axes for nodes)")
    n_recist_targets: int
    short_axis_class_counts: dict[str, int] | None = Field(None, description="lymph nodes per short-axis class")


class AirwayBranch(StrictModel):
    branch_id: int
    parent_id: int | None = None
    generation: int = Field(description="trachea = 0, main bronchi = 1, ...")
    length_mm: float
    mean_diameter_mm: float
    start_ras_mm: Point
    end_ras_mm: Point


class AirwayMetrics(StrictModel):
    structures: list[str] = Field(default_factory=list, description="classes joined into the airway mask")
    branch_count: int
    max_generation: int
    branches_per_generation: dict[int, int]
    total_centreline_length_mm: float
    trachea_length_mm: float | None = None
    trachea_diameter_mm: float | None = None
    lumen_volume_ml: float
    leak_suspected: bool
    leak_reasons: list[str] = Field(default_factory=list)
    branches: list[AirwayBranch] = Field(default_factory=list)


class Report(StrictModel):
    schema_version: str = SCHEMA_VERSION
    study_id: str
    input: InputSummary
    provenance: Provenance
    structures: list[StructureRow]
    lesion_classes: list[str] = Field(default_factory=list, description="classes split into instances")
    instances: list[InstanceRow] = Field(default_factory=list)
    burden: list[BurdenRow] = Field(default_factory=list)
    airway: AirwayMetrics | None = None
    warnings: list[str] = Field(default_factory=list)

    def to_json(self) -> str:
        return self.model_dump_json(indent=2) + "\n"

    def structure(self, name: str) -> StructureRow:
        for row in self.structures:
            if row.name == name:
                return row
        raise KeyError(name)
