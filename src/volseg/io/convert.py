"""Images given as Python objects rather than paths, under the same geometry rules as the readers.

:func:`as_loaded_image` takes a path (read with :func:`volseg.io.read_image`), a nibabel image
(the NIfTI rules of :mod:`volseg.io.nifti`: sform, then qform, then pixdim), a SimpleITK image
(LPS → RAS as in :mod:`volseg.io.itk`), a :class:`~volseg.volume.Volume` or a
:class:`~volseg.io.types.LoadedImage`. A bare numpy array is refused: it has no affine.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from volseg.io.types import ImageSource, LoadedImage
from volseg.volume import Volume

#: what the API accepts as an image, for TypeError messages
ACCEPTED = ("a path (str or pathlib.Path), a nibabel image, a SimpleITK image, "
            "a volseg.volume.Volume or a volseg.io.LoadedImage")
#: the study id of an image given as an object (no file name to take it from)
DEFAULT_STUDY_ID = "study"


def is_path(obj: object) -> bool:
    return isinstance(obj, (str, os.PathLike))


def as_loaded_image(obj: object, *, series: str | None = None, name: str = DEFAULT_STUDY_ID) -> LoadedImage:
    """``obj`` as a LoadedImage; ``name`` stands for the file name of an in-memory image in messages."""
    if isinstance(obj, LoadedImage):
        return obj
    if is_path(obj):
        from volseg.io import read_image

        return read_image(Path(obj), series=series)  # type: ignore[arg-type]
    if isinstance(obj, Volume):
        return LoadedImage(obj, ImageSource(kind="volume", path=name, modality=obj.meta.get("modality")))
    if isinstance(obj, np.ndarray):
        raise TypeError(
            "a numpy array has no affine (voxel size, orientation, position): wrap it as "
            "volseg.volume.Volume(array, affine) or nibabel.Nifti1Image(array, affine); "
            f"accepted: {ACCEPTED}"
        )
    module = type(obj).__module__.split(".")[0]
    if module == "nibabel":
        return _from_nibabel(obj, name)
    if module == "SimpleITK":
        return _from_sitk(obj, name)
    raise TypeError(f"cannot take a {type(obj).__name__} as an image; accepted: {ACCEPTED}")


def as_volume(obj: object, *, series: str | None = None) -> Volume:
    """``obj`` (anything :func:`as_loaded_image` takes) as a Volume; the modality, when known, in its meta."""
    if isinstance(obj, Volume):
        return obj
    image = as_loaded_image(obj, series=series)
    if image.source.modality and "modality" not in image.volume.meta:
        return Volume(image.volume.array, image.volume.affine,
                      {**image.volume.meta, "modality": image.source.modality})
    return image.volume


def _from_nibabel(img, name: str) -> LoadedImage:
    import nibabel as nib

    from volseg.io.nifti import from_nibabel

    if not isinstance(img, nib.spatialimages.SpatialImage):
        raise TypeError(f"cannot take a {type(img).__name__} as an image; accepted: {ACCEPTED}")
    if isinstance(img, (nib.Nifti1Image, nib.Nifti2Image)):
        # a fresh image whose header follows img.affine (nibabel syncs them only on saving)
        img = type(img)(img.dataobj, img.affine, img.header)
    else:  # MGH, Analyze, ...: voxel data (scaled) and affine as nibabel gives them
        img = nib.Nifti1Image(np.asanyarray(img.dataobj), img.affine)
    return from_nibabel(img, path=name, kind="nibabel")


def _from_sitk(image, name: str) -> LoadedImage:
    import SimpleITK as sitk

    from volseg.io.itk import from_sitk

    if not isinstance(image, sitk.Image):
        raise TypeError(f"cannot take a {type(image).__name__} as an image; accepted: {ACCEPTED}")
    return from_sitk(image, path=name, kind="simpleitk")
