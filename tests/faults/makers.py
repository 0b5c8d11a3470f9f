"""Bad inputs made in a few lines each (known answers; nothing random)."""
from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

SPACING = (0.8, 0.8, 2.0)


def ramp(shape=(6, 6, 6), dtype=np.int16) -> np.ndarray:
    return np.arange(int(np.prod(shape)), dtype=dtype).reshape(shape)


def nifti_bytes(data: np.ndarray, *, spacing=SPACING, no_geometry: bool = False) -> bytes:
    import nibabel as nib

    raw = nib.Nifti1Image(data, np.diag([*spacing, 1.0])).to_bytes()
    if not no_geometry:
        return raw
    header = nib.Nifti1Header(binaryblock=raw[:348])  # edited after saving: saving resets pixdim
    header["sform_code"] = header["qform_code"] = 0
    header["pixdim"][1:4] = 0.0
    return header.binaryblock + raw[348:]


def stored_gzip(raw: bytes) -> bytes:
    """gzip with deflate 'stored' blocks: byte i of ``raw`` sits at a known offset, so one flipped
    data bit leaves a valid deflate stream whose CRC no longer matches."""
    return gzip.compress(raw, compresslevel=0, mtime=0)


def flip_bit(blob: bytes, index: int, bit: int = 0) -> bytes:
    out = bytearray(blob)
    out[index] ^= 1 << bit
    return bytes(out)


def header_claiming(shape: tuple[int, ...], dtype=np.int16) -> bytes:
    """A NIfTI-1 header (and the 4 extension bytes) that claims ``shape`` voxels, with no data."""
    import nibabel as nib

    header = nib.Nifti1Header()
    header.set_data_dtype(dtype)
    header.set_data_shape(shape)
    header.set_zooms((1.0,) * len(shape))
    header.set_sform(np.eye(4), code=1)
    header["vox_offset"] = 352
    return header.binaryblock + struct.pack("<4x")


def write(path: Path, blob: bytes) -> Path:
    path.write_bytes(blob)
    return path
