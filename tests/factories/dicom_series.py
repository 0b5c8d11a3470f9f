"""Synthetic DICOM series for tests, written with pydicom (CT Image Storage, explicit VR LE).

``write_series`` writes one file per slice of ``array_ijk`` (values in modality units, e.g. HU)
on the grid of a RAS affine (or spacing / LPS cosines / origin), with file names and
InstanceNumbers shuffled so that neither matches the slice order. It returns a
:class:`WrittenSeries` with the expected volume array and RAS affine, for known-answer tests.

All patient identifiers are fixed, obviously fake values (``PATIENT_NAME``, ``PATIENT_ID``): tests
check that they never appear in error messages.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
ENHANCED_CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2.1"
BASIC_TEXT_SR = "1.2.840.10008.5.1.4.1.1.88.11"
GRAYSCALE_PR = "1.2.840.10008.5.1.4.1.1.11.1"
PATIENT_NAME = "PHANTOM^ZEBEDEE"
PATIENT_ID = "ZB-0042-PID"
BIRTH_DATE = "19010203"
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


@dataclass(frozen=True)
class WrittenSeries:
    folder: Path
    series_uid: str
    study_uid: str
    frame_of_reference_uid: str
    files: tuple[Path, ...]  # in slice order (k = 0 first) for the slices that were written
    positions: np.ndarray  # (n, 3) LPS ImagePositionPatient of the written slices, slice order
    array: np.ndarray  # expected volume array (written slices only)
    affine_ras: np.ndarray  # expected RAS affine (k column = the step vector)


def rotation(ax_deg: float = 0.0, ay_deg: float = 0.0, az_deg: float = 0.0) -> np.ndarray:
    """3×3 rotation: about x, then y, then z (degrees)."""
    a, b, c = np.radians([ax_deg, ay_deg, az_deg])
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    return rz @ ry @ rx


def ras_affine(spacing, directions_ras: np.ndarray | None = None, origin_ras=(0.0, 0.0, 0.0)) -> np.ndarray:
    aff = np.eye(4)
    aff[:3, :3] = (np.eye(3) if directions_ras is None else np.asarray(directions_ras)) * np.asarray(spacing)
    aff[:3, 3] = origin_ras
    return aff


def base_dataset(sop_class: str, *, series_uid: str, study_uid: str, modality: str,
                 series_number: int | None = 1, description: str | None = "synthetic phantom") -> Dataset:
    """A dataset with file meta, patient/study/series modules filled with fake values."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.PatientName = PATIENT_NAME
    ds.PatientID = PATIENT_ID
    ds.PatientBirthDate = BIRTH_DATE
    ds.AccessionNumber = "ACC-ZEBEDEE-77"
    ds.StudyDate = "20200102"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.Modality = modality
    if series_number is not None:
        ds.SeriesNumber = series_number
    if description is not None:
        ds.SeriesDescription = description
    return ds


def _image_pixels(ds: Dataset, values: np.ndarray, slope: float, intercept: float) -> None:
    """Store ``values`` (modality units, [row, column]) as 16-bit stored values."""
    stored = (np.asarray(values, dtype=np.float64) - intercept) / slope
    raw = np.rint(stored)
    assert np.allclose(raw, stored, atol=1e-6), "values are not representable with this slope/intercept"
    signed = raw.min() < 0
    assert raw.min() >= (-32768 if signed else 0) and raw.max() <= (32767 if signed else 65535)
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = raw.shape
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    ds.PixelRepresentation = 1 if signed else 0
    ds.RescaleSlope = f"{slope:g}"
    ds.RescaleIntercept = f"{intercept:g}"
    ds.RescaleType = "HU"
    ds.PixelData = raw.astype(np.int16 if signed else np.uint16).tobytes()


def _per_slice(value, n: int) -> list:
    if isinstance(value, (list, tuple, np.ndarray)):
        assert len(value) == n
        return list(value)
    return [value] * n


def write_series(
    folder: str | Path,
    array_ijk: np.ndarray,
    affine_ras: np.ndarray | None = None,
    *,
    spacing: Sequence[float] = (1.0, 1.0, 1.0),
    row_cos: Sequence[float] = (1.0, 0.0, 0.0),
    col_cos: Sequence[float] = (0.0, 1.0, 0.0),
    origin_lps: Sequence[float] = (0.0, 0.0, 0.0),
    shuffle_files: bool = True,
    tilt_deg: float = 0.0,
    slope: float | Sequence[float] = 1.0,
    intercept: float | Sequence[float] = -1024.0,
    series_uid: str | None = None,
    study_uid: str | None = None,
    series_number: int | None = 1,
    modality: str = "CT",
    description: str | None = "synthetic phantom",
    drop_slices: Sequence[int] = (),
    duplicate_slice: int | None = None,
    slice_overrides: dict[int, dict[str, Any]] | None = None,
    seed: int = 0,
    prefix: str = "IM",
) -> WrittenSeries:
    """Write ``array_ijk`` as a CT series; see the module docstring.

    Geometry: ``affine_ras`` (voxel → RAS mm) if given, else ``spacing`` (i, j, k), LPS ``row_cos``
    (direction of i), ``col_cos`` (direction of j) and ``origin_lps``. ``tilt_deg`` shifts each
    successive slice along the column direction by step·tan(tilt) (a gantry-tilted acquisition,
    GantryDetectorTilt set). ``drop_slices`` are not written; ``duplicate_slice`` is written twice
    (a second instance at the same position); ``slice_overrides`` sets header attributes per slice.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    array_ijk = np.asarray(array_ijk)
    ni, nj, nk = array_ijk.shape
    if affine_ras is None:
        row, col = np.asarray(row_cos, float), np.asarray(col_cos, float)
        lps = np.eye(4)
        lps[:3, 0], lps[:3, 1] = row * spacing[0], col * spacing[1]
        lps[:3, 2] = np.cross(row, col) * spacing[2]
        lps[:3, 3] = origin_lps
    else:
        lps = LPS_TO_RAS @ np.asarray(affine_ras, dtype=np.float64)
    dx, dy = np.linalg.norm(lps[:3, 0]), np.linalg.norm(lps[:3, 1])
    row, col = lps[:3, 0] / dx, lps[:3, 1] / dy
    step = lps[:3, 2].copy()
    if tilt_deg:
        step = step + np.linalg.norm(step) * np.tan(np.radians(tilt_deg)) * col
    lps[:3, 2] = step
    series_uid = series_uid or generate_uid()
    study_uid = study_uid or generate_uid()
    frame_uid = generate_uid()
    slopes, intercepts = _per_slice(slope, nk), _per_slice(intercept, nk)
    overrides = slice_overrides or {}

    rng = np.random.default_rng(seed)
    plan = [k for k in range(nk) if k not in set(drop_slices)]
    if duplicate_slice is not None:
        plan.append(duplicate_slice)
    names = rng.permutation(len(plan)) if shuffle_files else np.arange(len(plan))
    instance_numbers = rng.permutation(len(plan)) + 1 if shuffle_files else np.arange(len(plan)) + 1
    files: dict[int, Path] = {}
    for idx, k in enumerate(plan):
        ds = base_dataset(CT_IMAGE, series_uid=series_uid, study_uid=study_uid, modality=modality,
                          series_number=series_number, description=description)
        ds.FrameOfReferenceUID = frame_uid
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.InstanceNumber = int(instance_numbers[idx])
        ds.ImagePositionPatient = [f"{v:.6f}" for v in lps[:3, 3] + k * step]
        ds.ImageOrientationPatient = [f"{v:.8f}" for v in (*row, *col)]
        ds.PixelSpacing = [f"{dy:.6f}", f"{dx:.6f}"]  # [between rows, between columns]
        ds.SliceThickness = f"{abs(lps[:3, 2] @ np.cross(row, col)):.4f}"
        ds.GantryDetectorTilt = f"{tilt_deg:g}"
        _image_pixels(ds, array_ijk[:, :, k].T, slopes[k], intercepts[k])
        for key, value in overrides.get(k, {}).items():
            setattr(ds, key, value)
        path = folder / f"{prefix}{int(names[idx]):04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        files.setdefault(k, path)
    kept = [k for k in range(nk) if k not in set(drop_slices)]
    ras = LPS_TO_RAS @ lps
    return WrittenSeries(
        folder=folder, series_uid=series_uid, study_uid=study_uid, frame_of_reference_uid=frame_uid,
        files=tuple(files[k] for k in kept), positions=np.array([lps[:3, 3] + k * step for k in kept]),
        array=array_ijk[:, :, kept], affine_ras=ras,
    )


def add_localizer(folder: str | Path, *, series_uid: str | None = None, study_uid: str | None = None,
                  series_number: int = 1, flagged: bool = True, shape=(16, 12),
                  name: str = "LOC0001.dcm") -> Path:
    """A sagittal scout image; ``flagged`` puts LOCALIZER in ImageType (else only its
    orientation differs). With ``series_uid`` it joins that series."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ds = base_dataset(CT_IMAGE, series_uid=series_uid or generate_uid(),
                      study_uid=study_uid or generate_uid(), modality="CT",
                      series_number=series_number, description="scout")
    ds.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER" if flagged else "OTHER"]
    ds.InstanceNumber = 1
    ds.ImagePositionPatient = ["0", "-100", "100"]
    ds.ImageOrientationPatient = ["0", "1", "0", "0", "0", "-1"]
    ds.PixelSpacing = ["2", "2"]
    _image_pixels(ds, np.full(shape, 100.0), 1.0, -1024.0)
    path = folder / name
    ds.save_as(path, enforce_file_format=True)
    return path


def add_non_images(folder: str | Path, *, study_uid: str | None = None) -> list[Path]:
    """A Basic Text SR and a Grayscale Softcopy Presentation State, each in its own series."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    study_uid = study_uid or generate_uid()
    sr = base_dataset(BASIC_TEXT_SR, series_uid=generate_uid(), study_uid=study_uid, modality="SR",
                      series_number=90, description="report")
    sr.ValueType = "CONTAINER"
    sr.ContinuityOfContent = "SEPARATE"
    concept = Dataset()
    concept.CodeValue, concept.CodingSchemeDesignator, concept.CodeMeaning = "121070", "DCM", "Findings"
    sr.ConceptNameCodeSequence = DicomSequence([concept])
    pr = base_dataset(GRAYSCALE_PR, series_uid=generate_uid(), study_uid=study_uid, modality="PR",
                      series_number=91, description="presentation")
    pr.PresentationCreationDate = "20200102"
    pr.ContentLabel = "PR"
    paths = [folder / "SR0001.dcm", folder / "PR0001.dcm"]
    sr.save_as(paths[0], enforce_file_format=True)
    pr.save_as(paths[1], enforce_file_format=True)
    return paths


def write_enhanced(folder: str | Path, array_ijk: np.ndarray, affine_ras: np.ndarray, *,
                   slope: float = 1.0, intercept: float = -1024.0, name: str = "ENH0001.dcm",
                   frame_order: Sequence[int] | None = None) -> Path:
    """One Enhanced CT multi-frame file; per-frame positions, shared orientation/spacing/rescale.
    ``frame_order`` stores slice ``frame_order[f]`` as frame f (default: reversed)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    array_ijk = np.asarray(array_ijk)
    nk = array_ijk.shape[2]
    order = list(frame_order) if frame_order is not None else list(range(nk))[::-1]
    lps = LPS_TO_RAS @ np.asarray(affine_ras, dtype=np.float64)
    dx, dy = np.linalg.norm(lps[:3, 0]), np.linalg.norm(lps[:3, 1])
    ds = base_dataset(ENHANCED_CT_IMAGE, series_uid=generate_uid(), study_uid=generate_uid(), modality="CT")
    ds.ImageType = ["ORIGINAL", "PRIMARY", "VOLUME", "NONE"]
    ds.FrameOfReferenceUID = generate_uid()
    ds.InstanceNumber = 1
    ds.NumberOfFrames = nk
    shared = Dataset()
    measures, orient, rescale = Dataset(), Dataset(), Dataset()
    measures.PixelSpacing = [f"{dy:.6f}", f"{dx:.6f}"]
    measures.SliceThickness = f"{np.linalg.norm(lps[:3, 2]):.4f}"
    orient.ImageOrientationPatient = [f"{v:.8f}" for v in (*lps[:3, 0] / dx, *lps[:3, 1] / dy)]
    rescale.RescaleSlope, rescale.RescaleIntercept, rescale.RescaleType = f"{slope:g}", f"{intercept:g}", "HU"
    shared.PixelMeasuresSequence = DicomSequence([measures])
    shared.PlaneOrientationSequence = DicomSequence([orient])
    shared.PixelValueTransformationSequence = DicomSequence([rescale])
    ds.SharedFunctionalGroupsSequence = DicomSequence([shared])
    per = []
    for k in order:
        item, pos = Dataset(), Dataset()
        pos.ImagePositionPatient = [f"{v:.6f}" for v in lps[:3, 3] + k * lps[:3, 2]]
        item.PlanePositionSequence = DicomSequence([pos])
        per.append(item)
    ds.PerFrameFunctionalGroupsSequence = DicomSequence(per)
    frames = np.stack([array_ijk[:, :, k].T for k in order])
    _image_pixels(ds, frames.reshape(-1, frames.shape[2]), slope, intercept)
    ds.Rows, ds.Columns = frames.shape[1:]
    path = folder / name
    ds.save_as(path, enforce_file_format=True)
    return path


def dataset_of(path: str | Path) -> Dataset:
    return pydicom.dcmread(path)
