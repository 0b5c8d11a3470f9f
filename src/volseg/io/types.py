"""What a reader returns: the :class:`~volseg.volume.Volume` plus where it came from."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from volseg.volume import Volume


@dataclass(frozen=True)
class ImageSource:
    """Where an image came from, without patient identifiers.

    ``files`` lists, for a DICOM series, the instance files in the order of the volume's k axis
    (slice 0 first); later steps (DICOM SEG/SR) reference the source through them.
    ``headers`` holds, for a DICOM series read by :mod:`volseg.io.dicom`, one slim header per file of
    ``files`` (same order; pydicom Datasets without pixel data, :mod:`volseg.io.dicom_headers`): what the
    DICOM outputs need, so that they never read the series again. Empty for any other image (an image
    not read from a DICOM series has nothing to reference). Never shown in ``repr`` (patient names).
    ``warnings`` are geometry or header oddities a reader accepted but a user should see.
    """

    kind: str  # "nifti", "dicom" or "itk"
    path: str
    modality: str | None = None  # "CT", "MR", ... when the file says so
    series_uid: str | None = None
    series_number: int | None = None
    files: tuple[str, ...] = ()
    warnings: tuple[str, ...] = field(default_factory=tuple)
    headers: tuple[Any, ...] = field(default=(), repr=False, compare=False)


@dataclass(frozen=True)
class LoadedImage:
    volume: Volume
    source: ImageSource
