"""Segmentations as inputs: a label map checked to hold labels, or a folder of per-class masks
(TotalSegmentator's default output) read as one label map.

Each ``<name>.nii.gz`` (or ``.nii``) file is one class, named by its file name; classes are numbered
1..N in alphabetical order of the names. Every mask must lie on the first mask's grid (else a
GeometryError naming the file). A voxel in several masks keeps the class that comes first
alphabetically, and the overlap is reported as a warning with its voxel count (never silent).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from volseg.errors import GeometryError, InputError
from volseg.io.types import LoadedImage
from volseg.labels import LabelTable
from volseg.volume import Volume

log = logging.getLogger(__name__)

MASK_SUFFIXES = (".nii.gz", ".nii")


@dataclass(frozen=True)
class MaskSet:
    """The masks as one label map (``image.volume``, on the masks' grid) and its class names."""

    image: LoadedImage
    labels: LabelTable
    overlap_voxels: int
    warnings: tuple[str, ...] = ()


def mask_files(folder: str | Path) -> list[Path]:
    """The mask files directly in ``folder``, sorted by class name (hidden files ignored)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    files = [p for p in folder.iterdir()
             if p.is_file() and not p.name.startswith(".") and p.name.lower().endswith(MASK_SUFFIXES)]
    return sorted(files, key=_class_name)


def is_masks_folder(path: str | Path) -> bool:
    """True for a folder that holds NIfTI masks directly (a DICOM folder holds none)."""
    return bool(mask_files(path))


def read_masks(folder: str | Path) -> MaskSet:
    """Read every mask in ``folder`` into one label map (see the module docstring for the rules)."""
    from volseg.io.nifti import read_nifti

    files = mask_files(folder)
    if not files:
        raise InputError("no .nii.gz mask files in this folder", path=folder)
    names = [_class_name(p) for p in files]
    _check_names(names, folder)
    first = read_nifti(files[0])
    dtype = np.uint8 if len(files) < 256 else np.uint16
    combined = np.zeros(first.volume.shape, dtype=dtype)
    overlap = 0
    for index, path in enumerate(files, start=1):
        volume = first.volume if index == 1 else read_nifti(path).volume
        if not volume.same_grid(first.volume, atol_mm=1e-2):
            raise GeometryError(f"mask grid {volume.shape} differs from {files[0].name}'s grid "
                                f"{first.volume.shape}", path=path)
        inside = volume.array > 0
        overlap += int(np.count_nonzero(inside & (combined != 0)))
        combined[inside & (combined == 0)] = index
    warnings = _overlap_warning(overlap)
    for warning in warnings:
        log.warning("%s: %s", Path(folder).name, warning)
    image = LoadedImage(first.volume.with_array(combined), first.source)
    return MaskSet(image, LabelTable.from_names(dict(enumerate(names, start=1))), overlap, warnings)


def read_segmentation(path: str | Path) -> tuple[LoadedImage, LabelTable | None, tuple[str, ...]]:
    """A label map (no names: None), a folder of masks (names from the files) or a DICOM SEG file
    (or a folder holding one; names from its segment labels), and warnings."""
    if is_masks_folder(path):
        masks = read_masks(path)
        return masks.image, masks.labels, masks.warnings
    from volseg.io import image_kind, read_image
    from volseg.io.seg_dicom import find_dicom_seg, read_dicom_seg

    seg_file = None if image_kind(path) in ("nifti", "itk") else find_dicom_seg(path)
    if seg_file is not None:
        image, table = read_dicom_seg(seg_file)
        return image, table, ()

    return read_image(path), None, ()


def as_label_volume(volume: Volume, path) -> Volume:
    """``volume`` as a label map: integer labels >= 0 (whole-numbered floats converted), else an
    InputError naming ``path``."""
    array = volume.array
    if array.dtype.kind == "f":
        if not np.all(np.mod(array, 1) == 0):
            raise InputError("segmentation holds non-integer values; expected a label map", path=path)
        array = array.astype(np.int32)
    if array.dtype.kind not in "iu" or (array.size and array.min() < 0):
        raise InputError("segmentation must hold non-negative integer labels", path=path)
    return volume.with_array(array)


def present_labels(volume: Volume) -> LabelTable:
    """A table naming every label present in ``volume`` ``label_<index>`` (no names known)."""
    present = [int(v) for v in np.unique(volume.array) if v > 0]
    return LabelTable.from_names({i: f"label_{i}" for i in present})


def _class_name(path: Path) -> str:
    name = path.name
    for suffix in MASK_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def _check_names(names: list[str], folder) -> None:
    from volseg.labels import LabelInfo

    for name in names:
        try:
            LabelInfo(1, name, name, (0, 0, 0))
        except ValueError:
            raise InputError(f"mask file name {name!r} is not a class name (letters, digits, '_', '.', '-')",
                             path=folder) from None
    lowered = [n.lower() for n in names]
    if len(set(lowered)) != len(lowered):
        raise InputError("two mask files name the same class (e.g. x.nii and x.nii.gz)", path=folder)


def _overlap_warning(overlap: int) -> tuple[str, ...]:
    if not overlap:
        return ()
    return (f"{overlap} voxels lie in more than one mask; each keeps the class that comes first "
            "alphabetically, so those classes' volumes differ from their masks'",)
