"""Which of a study's optional files are written: one typed object, from the study's options."""
from __future__ import annotations

from dataclasses import dataclass

from volseg.options import SegmentOptions


@dataclass(frozen=True)
class OutputOptions:
    """The files a study writes besides its label map, tables and report.json (from
    :class:`~volseg.options.SegmentOptions`; the defaults are :func:`volseg.api.measure`'s)."""

    html: bool = True  # report.html with QC pictures
    dicom: bool = False  # DICOM SEG + SR (DICOM series inputs)
    rtstruct: bool = False  # DICOM RTSTRUCT (DICOM series inputs)
    anonymize: bool = False  # DICOM outputs de-identified with mapped UIDs
    masks: bool = False  # segmentations/<class>.nii.gz

    @classmethod
    def of(cls, options: SegmentOptions) -> OutputOptions:
        return cls(html=options.html, dicom=options.dicom, rtstruct=options.rtstruct,
                   anonymize=options.anonymize, masks=options.masks)
