"""Atomic file writes: write a temp file next to the target, flush it to disk, then rename.

A reader never sees a half-written output, and a failed write leaves nothing behind: the temp
file is removed and an :class:`~volseg.errors.OutputError` is raised.
"""
from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from volseg.errors import OutputError


def _temp_name(final: Path) -> Path:
    # keep the full suffix (".nii.gz") so writers that choose a format by extension still work
    return final.with_name(f".tmp-{uuid.uuid4().hex[:12]}-{final.name}")


@contextmanager
def atomic_path(final: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``final`` atomically."""
    final = Path(final)
    tmp = _temp_name(final)
    try:
        yield tmp
        if not tmp.exists():
            raise OutputError("the writer produced no file", path=final)
        _fsync(tmp)
        os.replace(tmp, final)
    except OSError as exc:
        _remove(tmp)
        raise OutputError(f"cannot write: {exc.strerror or exc}", path=final) from exc
    except BaseException:
        _remove(tmp)
        raise


def write_bytes(path: str | Path, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
    return Path(path)


def write_text(path: str | Path, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def ensure_writable_dir(folder: str | Path) -> Path:
    """Create ``folder`` if needed and prove it is writable, before any work is done."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".volseg-write-test-{uuid.uuid4().hex[:8]}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise OutputError(f"output folder is not writable: {exc.strerror or exc}", path=folder) from exc
    return folder


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError:  # pragma: no cover - best effort clean-up
        pass
