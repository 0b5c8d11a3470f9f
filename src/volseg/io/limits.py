"""Resource limits checked before any voxel array is made.

A header states how many voxels a file holds; a lying header (an 81-byte ``.nii.gz`` claiming
4 GB, a DICOM with 65535×65535 pixels) must be refused from the header alone, with the numbers,
never by allocating first. Two checks, both before allocation:

* **File size**: an uncompressed voxel block cannot be larger than the bytes in the file; a
  compressed one cannot exceed the file's size times the format's best ratio (deflate: 1032:1).
* **Memory**: the block (times the copies the reader will make) must fit in the memory available
  now (``MemAvailable`` from ``/proc/meminfo``, else ``os.sysconf``).
"""
from __future__ import annotations

import os
from pathlib import Path

from volseg.errors import InputError

#: deflate's largest possible compression ratio (zlib technical details: 1032:1)
DEFLATE_MAX_RATIO = 1032
_DEFLATE_SLACK_BYTES = 1 << 16  # gzip header, small files


def available_memory_bytes() -> int | None:
    """Memory available to a new allocation now (None when the system does not say)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return None


def human_bytes(n: int | float) -> str:
    n = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"  # pragma: no cover


def shape_text(shape) -> str:
    return "×".join(str(int(n)) for n in shape)


def check_stored_size(*, shape, itemsize: int, file_bytes: int, path: str | Path,
                      compressed: bool, header_bytes: int = 0, what: str = "header") -> int:
    """The voxel block's size in bytes; an InputError when the file cannot hold it."""
    needed = _product(shape) * int(itemsize)
    if compressed:
        ceiling = max(file_bytes, 0) * DEFLATE_MAX_RATIO + _DEFLATE_SLACK_BYTES
        if needed + header_bytes > ceiling:
            raise InputError(
                f"{what} claims {shape_text(shape)} voxels ({human_bytes(needed)}) but the compressed file "
                f"is {file_bytes} bytes (at most {human_bytes(ceiling)} uncompressed): "
                "truncated or corrupt header", path=path)
    elif header_bytes + needed > file_bytes:
        raise InputError(
            f"{what} claims {shape_text(shape)} voxels ({human_bytes(needed)} from byte {header_bytes}) "
            f"but the file is {file_bytes} bytes: truncated file or corrupt header", path=path)
    return needed


def check_memory(nbytes: int, *, path: str | Path, copies: float = 1.0,
                 available: int | None = None) -> None:
    """An InputError when ``nbytes`` (× ``copies``) does not fit in the memory available now."""
    available = available_memory_bytes() if available is None else available
    if available is None:
        return
    wanted = int(nbytes * copies)
    if wanted > available:
        raise InputError(
            f"image needs {human_bytes(wanted)} of memory, {human_bytes(available)} available",
            path=path, hint="free memory, or crop/downsample the image first")


def _product(shape) -> int:
    out = 1
    for n in shape:
        out *= max(int(n), 0)
    return out
