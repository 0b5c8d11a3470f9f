"""Reading and writing volumes. All axis and coordinate conventions are handled in this package.

``read_image`` accepts a NIfTI file, a DICOM folder (searched recursively) or one of its files, or
another format SimpleITK reads (NRRD, MHA/MHD). Every reader returns a
:class:`~volseg.io.types.LoadedImage` whose volume has a RAS affine.
"""
from __future__ import annotations

from pathlib import Path

from volseg.errors import InputError
from volseg.io.types import ImageSource, LoadedImage

NIFTI_SUFFIXES = (".nii", ".nii.gz")
ITK_SUFFIXES = (".nrrd", ".nhdr", ".mha", ".mhd")
DICOM_SUFFIXES = (".dcm", ".dicom", ".ima")

__all__ = ["ImageSource", "LoadedImage", "read_image", "image_kind", "study_name"]


def image_kind(path: str | Path) -> str | None:
    """'nifti', 'itk', 'dicom' or None for a path, judged without reading voxel data."""
    path = Path(path)
    name = path.name.lower()
    if path.is_dir():
        return "dicom"
    if name.endswith(NIFTI_SUFFIXES):
        return "nifti"
    if name.endswith(ITK_SUFFIXES):
        return "itk"
    if name.endswith(DICOM_SUFFIXES):
        return "dicom"
    if path.is_file():
        from volseg.io.dicom import is_dicom_file

        if is_dicom_file(path):
            return "dicom"
    return None


def read_image(path: str | Path, *, series: str | None = None) -> LoadedImage:
    """Read one 3-D image from a file or a DICOM folder (NaN/±Inf voxels counted in a warning)."""
    return _note_nonfinite(_read(Path(path), series))


def _note_nonfinite(image: LoadedImage) -> LoadedImage:
    """Add a warning counting NaN and ±Inf voxels; measurements leave them out of statistics."""
    import dataclasses
    import logging

    import numpy as np

    array = image.volume.array
    if array.dtype.kind != "f":
        return image
    finite = np.isfinite(array)
    bad = int(array.size - np.count_nonzero(finite))
    if not bad:
        return image
    nan = int(np.count_nonzero(np.isnan(array)))
    text = (f"{bad} voxels are not finite ({nan} NaN, {bad - nan} ±Inf): left out of intensity "
            "statistics and never taken as the edge of the field of view")
    logging.getLogger(__name__).warning("%s: %s", Path(image.source.path).name, text)
    source = dataclasses.replace(image.source, warnings=(*image.source.warnings, text))
    return LoadedImage(image.volume, source)


def _read(path: Path, series: str | None) -> LoadedImage:
    if not path.exists():
        raise InputError("no such file or folder", path=path)
    kind = image_kind(path)
    if kind == "nifti":
        from volseg.io.nifti import read_nifti

        return read_nifti(path)
    if kind == "itk":
        from volseg.io.itk import read_itk

        return read_itk(path)
    if kind == "dicom":
        from volseg.io.dicom import read_dicom_series

        return read_dicom_series(path, series=series)
    raise InputError(
        "unrecognised image format",
        path=path,
        hint="volseg reads .nii/.nii.gz, .nrrd/.mha/.mhd and DICOM folders or files",
    )


def study_name(path: str | Path) -> str:
    """A study name from a path alone (never from patient tags): the file name minus its suffix."""
    path = Path(path)
    name = path.name
    for suffix in (*NIFTI_SUFFIXES[::-1], *ITK_SUFFIXES, *DICOM_SUFFIXES):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)] or name
    return name
