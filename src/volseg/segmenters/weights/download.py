"""HTTP(S) downloads that resume, verify before install, and never run in offline mode.

A file is streamed into ``<dest>.part``; an interrupted transfer leaves the ``.part`` file and the
next attempt asks the server for the rest (``Range: bytes=N-``). Only after the sha256 (and any
publisher checksum and size) matches is the file renamed to ``dest``; a mismatch deletes the
partial file and raises an error naming the URL, the expected and the actual hash.
"""
from __future__ import annotations

import http.client
import logging
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from volseg.errors import ModelError
from volseg.segmenters.base import ProgressCallback, no_progress
from volseg.segmenters.weights.cache import file_digest, offline_mode, sha256_file

log = logging.getLogger(__name__)
_BLOCK = 1 << 16


class _Interrupted(Exception):
    """The transfer stopped early; the ``.part`` file can be resumed."""


@dataclass(frozen=True)
class DownloadResult:
    path: Path
    sha256: str
    size_bytes: int
    requests: int  # HTTP requests made (more than one: the transfer was resumed)


def offline_error(what: str, name: str = "NAME") -> ModelError:
    return ModelError(
        f"offline mode (VOLSEG_OFFLINE=1): {what} is not installed and volseg will not download it",
        hint=f"on a connected machine run `volseg models export {name} -o {name}.zip`, copy it here, "
             f"then `volseg models install {name}.zip`; or `volseg models install DIR --model {name}` "
             "for a folder of its weight files",
    )


def fetch(url: str, dest: str | Path, *, expected_sha256: str | None = None,
          publisher_hash: tuple[str, str] | None = None, expected_size: int | None = None,
          progress: ProgressCallback = no_progress, stage: str | None = None, retries: int = 3,
          timeout_s: float = 60.0) -> DownloadResult:
    """Download ``url`` to ``dest`` (resuming ``dest.part``), verify, then rename into place."""
    if offline_mode():
        raise offline_error(Path(dest).name)
    if not url.startswith(("https://", "http://")):
        raise ModelError(f"refusing to download {url!r}: only http(s) URLs are allowed")
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    stage = stage or dest.name
    requests = 0
    while True:
        requests += 1
        try:
            _transfer(url, part, progress=progress, stage=stage, timeout_s=timeout_s)
            break
        except _Interrupted as exc:
            if requests > retries:
                raise ModelError(f"download of {url} was interrupted ({exc}); {_size(part)} bytes kept",
                                 hint="run the same command again to resume") from None
            log.warning("download of %s interrupted (%s); resuming", url, exc)
    return _verify_and_install(url, part, dest, expected_sha256, publisher_hash, expected_size, requests)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _transfer(url: str, part: Path, *, progress: ProgressCallback, stage: str, timeout_s: float) -> None:
    from volseg import __version__

    have = _size(part)
    request = urllib.request.Request(url, headers={"User-Agent": f"volseg/{__version__}"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout_s)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # nothing left to send: the part file is complete
            return
        raise ModelError(f"download failed: HTTP {exc.code} {exc.reason} for {url}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise _Interrupted(f"cannot reach the server: {getattr(exc, 'reason', exc)}") from None
    with response:
        start = _resume_offset(response, have)
        if start is None:
            part.unlink(missing_ok=True)
            raise _Interrupted("the server resumed at another offset; starting again")
        total = _total_size(response, start)
        with open(part, "ab" if start else "wb") as fh:
            done = start
            while True:
                try:
                    block = response.read(_BLOCK)
                except (OSError, http.client.HTTPException) as exc:
                    raise _Interrupted(f"connection lost after {done} bytes: {exc}") from None
                if not block:
                    break
                fh.write(block)
                done += len(block)
                progress(stage, done, total or 0)
    if total is not None and done < total:
        raise _Interrupted(f"connection closed after {done} of {total} bytes")


def _resume_offset(response, have: int) -> int | None:
    """Bytes to keep from the part file (0: the server sent the whole file); None: unusable."""
    if not have or response.status != 206:
        return 0
    content_range = response.headers.get("Content-Range", "")  # "bytes 100-999/1000"
    try:
        first = int(content_range.split()[1].split("-")[0])
    except (IndexError, ValueError):
        return None
    return have if first == have else None


def _total_size(response, start: int) -> int | None:
    length = response.headers.get("Content-Length")
    return start + int(length) if length and length.isdigit() else None


def _verify_and_install(url: str, part: Path, dest: Path, expected_sha256: str | None,
                        publisher_hash: tuple[str, str] | None, expected_size: int | None,
                        requests: int) -> DownloadResult:
    size = _size(part)
    actual = sha256_file(part)
    problem = None
    if expected_size is not None and size != expected_size:
        problem = f"expected {expected_size} bytes, got {size}"
    elif expected_sha256 and actual != expected_sha256:
        problem = f"expected sha256 {expected_sha256}, got {actual}"
    elif publisher_hash:
        algorithm, value = publisher_hash
        got = file_digest(part, algorithm)
        if got != value:
            problem = f"expected {algorithm} {value}, got {got}"
    if problem:
        part.unlink(missing_ok=True)
        raise ModelError(f"download of {url} failed verification: {problem}",
                         hint="nothing was installed; the file changed upstream or was tampered with")
    os.replace(part, dest)
    log.debug("downloaded %s (%d bytes, sha256 %s)", dest.name, size, actual)
    return DownloadResult(dest, actual, size, requests)
