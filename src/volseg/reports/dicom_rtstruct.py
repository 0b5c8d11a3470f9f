"""DICOM RT Structure Set (RTSTRUCT) of a label map on a DICOM source series, written with pydicom.

* One ROI per label present in the label map, numbered 1..N in label order (the SEG's segment
  numbers), named by the class's display name, coloured with its label colour, interpreted as
  ``ORGAN`` (RTROIInterpretedType) and generated ``AUTOMATIC``.
* Contours per source slice: ``skimage.measure.find_contours`` at level 0.5 on the slice's mask
  (padded, so structures touching the border close), holes as separate contours (a reader fills a
  slice by XOR / even-odd of its contours, as RT planning systems do), points on straight runs
  dropped (exactly collinear, vectorised: the contours of a body label hold many thousands). Each contour is CLOSED_PLANAR, in patient LPS mm through
  the label map's affine, and references its slice's SOP Instance UID (ContourImageSequence).
* The structure set references the frame of reference, study, series and every source slice;
  patient and study attributes come from the same allowlisted source headers as the SEG and SR
  (:mod:`volseg.reports.dicom_source`), so they share identity (or the same anonymised mapping).
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from volseg import __version__
from volseg.errors import InputError
from volseg.labels import LabelInfo, LabelTable
from volseg.reports.dicom_seg import MANUFACTURER
from volseg.reports.dicom_source import SourceSeries, check_on_source_grid
from volseg.volume import Volume

RTSTRUCT_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.481.3"
STUDY_REFERENCE_SOP_CLASS = "1.2.840.10008.3.1.2.3.1"  # the conventional (retired) Detached Study Management
RTSTRUCT_SERIES_NUMBER = 9703
_COLLINEAR_TOL = 1e-9
_CONTOUR_DATA = 0x30060050
_PATIENT_STUDY = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID", "StudyID",
                  "StudyDate", "StudyTime", "AccessionNumber", "ReferringPhysicianName")


def slice_contours(mask: np.ndarray) -> list[np.ndarray]:
    """Closed contours (n, 2) in (i, j) voxel indices of a 2-D mask, holes as separate contours."""
    from skimage.measure import find_contours

    hits = np.argwhere(mask)
    if hits.size == 0:
        return []
    (i0, j0), (i1, j1) = hits.min(axis=0), hits.max(axis=0) + 1
    crop = np.pad(mask[i0:i1, j0:j1].astype(np.float32), 1)  # padded: border structures close
    offset = np.array([i0 - 1.0, j0 - 1.0])
    contours = []
    for contour in find_contours(crop, 0.5):
        simple = drop_collinear(contour[:-1])  # closed: the last point repeats the first
        if len(simple) >= 3:
            contours.append(simple + offset)
    return contours


def drop_collinear(points: np.ndarray) -> np.ndarray:
    """The vertices of the closed polygon ``points`` (n, 2) that are not on a straight run."""
    before = points - np.roll(points, 1, axis=0)
    after = np.roll(points, -1, axis=0) - points
    cross = before[:, 0] * after[:, 1] - before[:, 1] * after[:, 0]
    straight = (np.abs(cross) <= _COLLINEAR_TOL) & (np.sum(before * after, axis=1) > 0)
    return points[~straight]


def contour_points_lps(contour_ij: np.ndarray, k: int, affine: np.ndarray) -> np.ndarray:
    """(n, 3) patient LPS mm of contour points (i, j) on slice ``k`` through the RAS ``affine``."""
    ijk1 = np.column_stack([contour_ij, np.full(len(contour_ij), float(k)), np.ones(len(contour_ij))])
    ras = ijk1 @ np.asarray(affine, dtype=np.float64).T
    return ras[:, :3] * np.array([-1.0, -1.0, 1.0])


def build_rtstruct(sources: SourceSeries, labels: Volume, table: LabelTable, *, model_name: str,
                   numbers: Mapping[int, int], series_uid: str, sop_uid: str):
    """The pydicom ``FileDataset`` of the structure set of ``labels`` (on the source grid)."""
    check_on_source_grid(sources, labels)
    if not numbers:
        raise InputError("the label map is empty: no RTSTRUCT to write")
    ds = _header(sources, model_name=model_name, series_uid=series_uid, sop_uid=sop_uid)
    frame_uid = str(sources.first.FrameOfReferenceUID)
    ds.ReferencedFrameOfReferenceSequence = [_frame_reference(sources, frame_uid)]
    array = np.asarray(labels.array)
    ds.StructureSetROISequence, ds.ROIContourSequence, ds.RTROIObservationsSequence = [], [], []
    for label, number in numbers.items():
        info = table[label] if label in table else LabelInfo(label, f"label_{label}", f"Label {label}", (255, 255, 255))
        ds.StructureSetROISequence.append(_roi(number, info, frame_uid, model_name))
        ds.ROIContourSequence.append(_roi_contours(number, info, array == label, labels.affine, sources))
        ds.RTROIObservationsSequence.append(_observation(number))
    return ds


def _header(sources: SourceSeries, *, model_name: str, series_uid: str, sop_uid: str):
    import datetime

    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, UID, ImplicitVRLittleEndian

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(RTSTRUCT_SOP_CLASS)
    meta.MediaStorageSOPInstanceUID = UID(sop_uid)
    # implicit VR: 32-bit value lengths, so a long contour keeps its 0.01 mm digits (explicit VR's DS
    # values stop at 64 KiB); the DICOM default transfer syntax, which every reader supports
    meta.TransferSyntaxUID = ImplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    # no file behind this dataset: pydicom takes None at run time, its hints leave it out
    ds = FileDataset(None, {}, file_meta=meta, preamble=b"\0" * 128)  # type: ignore[arg-type]
    now = datetime.datetime.now()
    date, time = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID, ds.SOPInstanceUID = RTSTRUCT_SOP_CLASS, sop_uid
    ds.InstanceCreationDate, ds.InstanceCreationTime = date, time
    for keyword in _PATIENT_STUDY:
        setattr(ds, keyword, sources.first.get(keyword, ""))
    for keyword in ("PatientIdentityRemoved", "DeidentificationMethod"):
        if keyword in sources.first:
            setattr(ds, keyword, sources.first.get(keyword))
    ds.FrameOfReferenceUID = str(sources.first.FrameOfReferenceUID)
    ds.PositionReferenceIndicator = sources.first.get("PositionReferenceIndicator", "")
    ds.Modality = "RTSTRUCT"
    ds.SeriesInstanceUID, ds.SeriesNumber = series_uid, RTSTRUCT_SERIES_NUMBER
    ds.SeriesDescription = f"volseg {model_name} RTSTRUCT"[:64]
    ds.OperatorsName = ""
    ds.Manufacturer, ds.ManufacturerModelName = MANUFACTURER, model_name[:64]
    ds.SoftwareVersions = f"volseg {__version__}"
    ds.InstanceNumber = 1
    ds.StructureSetLabel = "VOLSEG"
    ds.StructureSetName = f"{model_name}"[:64]
    ds.StructureSetDate, ds.StructureSetTime = date, time
    ds.ApprovalStatus = "UNAPPROVED"
    return ds


def _image_reference(source):
    from pydicom.dataset import Dataset

    item = Dataset()
    item.ReferencedSOPClassUID = source.SOPClassUID
    item.ReferencedSOPInstanceUID = source.SOPInstanceUID
    return item


def _frame_reference(sources: SourceSeries, frame_uid: str):
    from pydicom.dataset import Dataset

    series = Dataset()
    series.SeriesInstanceUID = str(sources.first.SeriesInstanceUID)
    series.ContourImageSequence = [_image_reference(ds) for ds in sources.datasets]
    study = Dataset()
    study.ReferencedSOPClassUID = STUDY_REFERENCE_SOP_CLASS
    study.ReferencedSOPInstanceUID = str(sources.first.StudyInstanceUID)
    study.RTReferencedSeriesSequence = [series]
    frame = Dataset()
    frame.FrameOfReferenceUID = frame_uid
    frame.RTReferencedStudySequence = [study]
    return frame


def _roi(number: int, info: LabelInfo, frame_uid: str, model_name: str):
    from pydicom.dataset import Dataset

    roi = Dataset()
    roi.ROINumber = number
    roi.ReferencedFrameOfReferenceUID = frame_uid
    roi.ROIName = info.display_name[:64]
    roi.ROIDescription = info.name[:64]
    roi.ROIGenerationAlgorithm = "AUTOMATIC"
    roi.ROIGenerationDescription = f"volseg {model_name}"[:64]
    return roi


def _roi_contours(number: int, info: LabelInfo, mask: np.ndarray, affine: np.ndarray, sources: SourceSeries):
    from pydicom.dataset import Dataset

    item = Dataset()
    item.ROIDisplayColor = [int(c) for c in info.color]
    item.ReferencedROINumber = number
    contours: list[Dataset] = []
    for k in np.flatnonzero(mask.any(axis=(0, 1))):
        for contour in slice_contours(mask[:, :, k]):
            points = contour_points_lps(contour, int(k), affine)
            entry = Dataset()
            entry.ContourImageSequence = [_image_reference(sources.datasets[int(k)])]
            entry.ContourGeometricType = "CLOSED_PLANAR"
            entry.NumberOfContourPoints = len(points)
            entry.ContourNumber = len(contours) + 1
            entry[_CONTOUR_DATA] = contour_data_element(points)
            contours.append(entry)
    item.ContourSequence = contours
    return item


def contour_data_element(points: np.ndarray):
    """ContourData (DS, "x\\y\\z\\...", 0.01 mm) as a raw implicit-VR element: a body label has hundreds
    of thousands of points, which pydicom would otherwise parse and validate one number at a time."""
    from pydicom.dataelem import RawDataElement
    from pydicom.tag import Tag

    value = "\\".join(f"{v:.2f}" for v in points.ravel()).encode("ascii")
    value += b" " * (len(value) % 2)
    if len(value) > 0xFFFFFFFE:
        raise InputError(f"a contour of {len(points)} points does not fit one DICOM ContourData element")
    return RawDataElement(Tag(_CONTOUR_DATA), "DS", len(value), value, 0, True, True)


def _observation(number: int):
    from pydicom.dataset import Dataset

    item = Dataset()
    item.ObservationNumber = number
    item.ReferencedROINumber = number
    item.RTROIInterpretedType = "ORGAN"
    item.ROIInterpreter = ""
    return item
