"""Source-image headers for the DICOM outputs: an allowlisted copy of each slice's header.

Built from the header summary the series reader kept on the loaded image
(:attr:`volseg.io.types.ImageSource.headers`): the source files are read once, by :mod:`volseg.io`.

The DICOM SEG, SR and RTSTRUCT copy patient and study attributes from the images they reference.
volseg never hands them the original headers: it builds a minimal copy of each source slice holding
only what the outputs need (UIDs, geometry, pixel description) plus the patient/study identification:

* default: the source's patient and study (PatientName, PatientID, birth date, sex, StudyInstanceUID,
  StudyID, study date/time, accession number, referring physician) **copied as they are**, as every
  segmentation tool's derived objects do, so that viewers and PACS file them with their images.
* ``anonymize=True``: a coherent de-identified set. PatientName ``ANONYMOUS^``, PatientID ``ANON-`` +
  12 hex digits of sha256(mapped StudyInstanceUID), the other identifying attributes empty,
  PatientIdentityRemoved ``YES``; every source UID (Study, Series, Frame of Reference, SOP Instance)
  replaced by a UID derived deterministically from it (:func:`anonymized_uid`, one mapping for the
  whole output set), so the references inside the set stay consistent but point to mapped UIDs: they
  only resolve against an anonymised copy of the images made with the same mapping.

Anonymised sources sometimes lack UIDs: SOP Class/Instance UIDs are then taken from the file meta
header; a missing Study/Series/Frame-of-Reference UID is derived deterministically from the source
SOP Instance UIDs (``pydicom.uid.generate_uid(entropy_srcs=...)``) and a warning says so.
"""
from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from volseg.errors import GeometryError, InputError
from volseg.io.dicom_headers import GEOMETRY, IDENTIFYING
from volseg.io.types import ImageSource
from volseg.volume import Volume

PLACEHOLDER_NAME = "ANONYMOUS^"
DEIDENTIFICATION_METHOD = "volseg: identifiers removed, UIDs mapped"  # LO: ≤ 64 chars
UID_SALT = "volseg-anonymize-1"
_EMPTY_WITHOUT_PHI = ("PatientBirthDate", "PatientSex", "StudyDate", "StudyTime", "StudyID", "AccessionNumber",
                      "ReferringPhysicianName")
#: Type 2 attributes of the Patient and General Study modules the outputs copy from their source
_TYPE2_PATIENT_STUDY = ("PatientName", "PatientID", *_EMPTY_WITHOUT_PHI)
_GEOMETRY_ATOL_MM = 0.01


@dataclass(frozen=True)
class SourceSeries:
    """Minimal header copies of the source slices in the volume's k order, and what was derived."""

    datasets: tuple  # pydicom Datasets, one per k slice
    warnings: tuple[str, ...]

    @property
    def first(self):
        return self.datasets[0]


def source_series(source: ImageSource, *, anonymize: bool = False) -> SourceSeries:
    """Header copies of a DICOM series' slices (k order), identifiers handled as the module says.

    Built from the headers the reader kept (``source.headers``, :mod:`volseg.io.dicom_headers`); the
    source files are not read again."""
    headers = source.headers
    if not headers:
        raise InputError("the input has no DICOM source files to reference")
    folder = Path(source.files[0]).parent if source.files else Path(source.path)
    if any(int(ds.get("NumberOfFrames") or 1) > 1 for ds in headers):
        raise InputError("DICOM SEG/SR from multi-frame (enhanced) source images is not supported yet", path=folder)
    warnings: list[str] = []
    sop_uids = [_text(ds.get("SOPInstanceUID")) or _text(_meta(ds, "MediaStorageSOPInstanceUID")) for ds in headers]
    if not all(sop_uids):
        raise InputError("a source DICOM file has no SOP Instance UID: the outputs could not reference it",
                         path=folder)
    shared = {}
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID"):
        value = _text(headers[0].get(keyword))
        if not value:
            value = _derived_uid(keyword, sop_uids)
            warnings.append(f"the source images have no {keyword}: the DICOM SEG/SR use {value}, derived from "
                            "the source SOP Instance UIDs")
        shared[keyword] = value
    if anonymize:
        shared = {keyword: anonymized_uid(value) for keyword, value in shared.items()}
        sop_uids = [anonymized_uid(uid) for uid in sop_uids]
    copies = tuple(_minimal_copy(ds, uid, shared, anonymize=anonymize) for ds, uid in zip(headers, sop_uids))
    return SourceSeries(copies, tuple(warnings))


def check_on_source_grid(sources: SourceSeries, labels: Volume) -> None:
    """Raise :class:`GeometryError` unless slice k of ``labels`` lies exactly on source slice k."""
    nx, ny, nz = labels.shape
    if len(sources.datasets) != nz:
        raise GeometryError(f"{len(sources.datasets)} source slices but the label map has {nz}")
    for k, ds in enumerate(sources.datasets):
        if (int(ds.Rows), int(ds.Columns)) != (ny, nx):
            raise GeometryError(f"source slice {k + 1} is {ds.Rows}×{ds.Columns}, the label map {ny}×{nx}")
        expected = lps_position(labels, k)
        if not np.allclose(np.asarray(ds.ImagePositionPatient, dtype=float), expected, atol=_GEOMETRY_ATOL_MM):
            raise GeometryError(f"source slice {k + 1} is not at the label map's slice position {expected}")


def lps_position(volume: Volume, k: int) -> np.ndarray:
    """DICOM ImagePositionPatient (LPS mm) of the first voxel of slice ``k`` of ``volume``."""
    ras = volume.index_to_world(np.array([0.0, 0.0, float(k)]))
    return ras * np.array([-1.0, -1.0, 1.0])


def placeholder_patient_id(study_uid: str) -> str:
    return "ANON-" + hashlib.sha256(study_uid.encode("ascii")).hexdigest()[:12].upper()


def anonymized_uid(uid: str) -> str:
    """The UID that replaces source UID ``uid`` with ``anonymize``: the same for every output (salted hash)."""
    from pydicom.uid import generate_uid

    return str(generate_uid(entropy_srcs=[UID_SALT, uid]))


def _minimal_copy(original, sop_uid: str, shared: dict[str, str], *, anonymize: bool):
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.SOPClassUID = _text(original.get("SOPClassUID")) or _text(_meta(original, "MediaStorageSOPClassUID"))
    ds.SOPInstanceUID = sop_uid
    for keyword, value in shared.items():
        setattr(ds, keyword, value)
    for keyword in GEOMETRY:
        if keyword in original and original[keyword].value not in (None, ""):
            setattr(ds, keyword, original[keyword].value)
    if not anonymize:
        for keyword in IDENTIFYING:
            if keyword in original:
                setattr(ds, keyword, original[keyword].value)
        for keyword in _TYPE2_PATIENT_STUDY:  # Type 2: present, empty when the source lacks them
            if keyword not in ds:
                setattr(ds, keyword, "")
        return ds
    ds.PatientName = PLACEHOLDER_NAME
    ds.PatientID = placeholder_patient_id(shared["StudyInstanceUID"])
    for keyword in _EMPTY_WITHOUT_PHI:
        setattr(ds, keyword, "")
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = DEIDENTIFICATION_METHOD
    return ds


def _derived_uid(keyword: str, sop_uids: Sequence[str]) -> str:
    from pydicom.uid import generate_uid

    return str(generate_uid(entropy_srcs=[f"volseg:{keyword}", *sop_uids]))


def _meta(ds, keyword: str):
    meta = getattr(ds, "file_meta", None)
    return meta.get(keyword) if meta is not None else None


def _text(value) -> str:
    return " ".join(str(value).split()) if value is not None else ""
