"""The DICOM source header summary: what later steps need from each source file, read once.

The series reader (:mod:`volseg.io.dicom`) keeps, for each file of the series it read, a slim copy
of that file's header (:func:`header_summary`): no pixel data, no private or other tags, only

* ``REFERENCES``: the UIDs that the DICOM SEG/SR/RTSTRUCT reference (SOP class and instance, study,
  series, frame of reference) and NumberOfFrames, plus the file meta's SOP class/instance UIDs
  (anonymised files sometimes carry them only there);
* ``GEOMETRY``: slice geometry and pixel description;
* ``IDENTIFYING``: the patient and study identification that derived objects copy.

They travel on :attr:`volseg.io.types.ImageSource.headers` (picklable, a few kB per slice), so the
DICOM outputs never read the series again.
"""
from __future__ import annotations

import logging

log = logging.getLogger(__name__)

REFERENCES = ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID",
              "NumberOfFrames")
GEOMETRY = ("Modality", "Rows", "Columns", "PixelSpacing", "ImageOrientationPatient", "ImagePositionPatient",
            "SliceThickness", "SamplesPerPixel", "PhotometricInterpretation",
            "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation", "InstanceNumber", "SeriesNumber")
IDENTIFYING = ("PatientName", "PatientID", "IssuerOfPatientID", "PatientBirthDate", "PatientSex",
               "StudyDate", "StudyTime", "StudyID", "AccessionNumber", "ReferringPhysicianName")
FILE_META = ("MediaStorageSOPClassUID", "MediaStorageSOPInstanceUID")
KEPT = (*REFERENCES, *GEOMETRY, *IDENTIFYING)


def header_summary(ds):
    """A new pydicom Dataset holding only the ``KEPT`` elements of ``ds`` (and its ``FILE_META``)."""
    from pydicom.dataset import Dataset, FileMetaDataset

    slim = Dataset()
    for keyword in KEPT:
        if keyword in ds:
            try:
                slim.add(ds[keyword])  # the value as ds's character set decodes it
            except Exception as exc:  # noqa: BLE001 - a value pydicom cannot decode: left out, as if absent
                log.debug("header summary: %s left out (%s)", keyword, type(exc).__name__)
    meta = getattr(ds, "file_meta", None)
    if meta is not None:
        slim.file_meta = FileMetaDataset()
        for keyword in FILE_META:
            if keyword in meta:
                slim.file_meta.add(meta[keyword])
    return slim
