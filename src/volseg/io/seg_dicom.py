"""DICOM SEG (Segmentation Storage) as a segmentation input: one label map on the SEG's own frame
geometry (highdicom), with the segment numbers as labels and the segment labels as names.

Overlapping segments are refused by highdicom's combination (a label map holds one class per voxel).
"""
from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np

from volseg.errors import GeometryError, InputError
from volseg.io.types import ImageSource, LoadedImage
from volseg.labels import LabelTable
from volseg.volume import Volume

log = logging.getLogger(__name__)

SEGMENTATION_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"
_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def is_dicom_seg(path: str | Path) -> bool:
    """True for a DICOM file whose SOP Class is Segmentation Storage (header read only)."""
    path = Path(path)
    if not path.is_file():
        return False
    import pydicom

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["SOPClassUID"])
    except Exception:  # noqa: BLE001 - not DICOM at all
        return False
    return str(getattr(ds, "SOPClassUID", "")) == SEGMENTATION_STORAGE


def find_dicom_seg(path: str | Path) -> Path | None:
    """``path`` when it is a SEG file, or the one SEG file directly in folder ``path``, else None."""
    path = Path(path)
    if path.is_file():
        return path if is_dicom_seg(path) else None
    if not path.is_dir():
        return None
    found = [p for p in sorted(path.iterdir()) if p.is_file() and not p.name.startswith(".") and is_dicom_seg(p)]
    if len(found) > 1:
        raise InputError(f"{len(found)} DICOM SEG files in this folder; give one of them", path=path)
    return found[0] if found else None


def read_dicom_seg(path: str | Path) -> tuple[LoadedImage, LabelTable]:
    """The SEG as a label map on its own frame geometry (RAS affine) and its segment names."""
    import highdicom as hd

    path = Path(path)
    try:
        seg = hd.seg.segread(str(path))
        volume = seg.get_volume(combine_segments=True)
    except (ValueError, RuntimeError, AttributeError, KeyError) as exc:
        raise InputError(f"DICOM SEG cannot be read as a label map ({_short(exc)})", path=path) from exc
    if volume is None:
        raise GeometryError("DICOM SEG frames do not form a regular 3-D grid", path=path)
    array = np.transpose(np.asarray(volume.array), (2, 1, 0))  # highdicom (slice, row, col) → (col, row, slice)
    affine = _LPS_TO_RAS @ np.asarray(volume.affine, dtype=np.float64)[:, [2, 1, 0, 3]]
    labels = segment_table(seg.SegmentSequence)
    source = ImageSource(kind="dicom", path=str(path), modality="SEG")
    return LoadedImage(Volume(np.ascontiguousarray(array), affine), source), labels


def segment_table(segments) -> LabelTable:
    """Segment number → a label name from its SegmentLabel (made a valid name, unique)."""
    names: dict[int, str] = {}
    for item in segments:
        number = int(item.SegmentNumber)
        name = _as_name(str(getattr(item, "SegmentLabel", "") or f"segment_{number}")) or f"segment_{number}"
        if name in names.values():
            name = f"{name}_{number}"
        names[number] = name
    return LabelTable.from_names(names)


def _as_name(text: str) -> str:
    """'Liver' → 'liver', 'Left kidney' → 'left_kidney' (letters, digits, '_', '.', '-')."""
    name = re.sub(r"[^A-Za-z0-9_.\-]+", "_", text.strip().lower()).strip("_.-")
    return name


def _short(exc: Exception) -> str:
    return " ".join(str(exc).split())[:160]
