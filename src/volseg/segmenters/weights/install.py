"""Installing a model's weights as one transaction, from the network or from local files.

Every file is hashed while it is copied into a staging folder and checked against the catalogue's
sha256 (or the lock file's, for files the publisher does not pin); archives are then extracted
safely, a manifest of every file's sha256 is written, and the staging folder is renamed into
place. Anything that fails leaves the previous installation (or none) untouched.
"""
from __future__ import annotations

import logging
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

from volseg.errors import ModelError
from volseg.segmenters.base import ProgressCallback, no_progress
from volseg.segmenters.catalogue import ModelEntry, WeightFile, get_entry
from volseg.segmenters.weights.archive import safe_extract
from volseg.segmenters.weights.cache import (
    MANIFEST_NAME,
    InstalledFile,
    Manifest,
    cached_sha256,
    downloads_dir,
    file_digest,
    model_dir,
    offline_mode,
    read_manifest,
    sha256_file,
)
from volseg.segmenters.weights.lock import default_lock_path, read_lock, write_lock

log = logging.getLogger(__name__)
_BLOCK = 1 << 20


@dataclass(frozen=True)
class InstallResult:
    name: str
    version: str
    path: Path | None  # None: the model needs no weights
    files: tuple[InstalledFile, ...] = ()
    source: str = "download"
    already_installed: bool = False

    @property
    def recorded(self) -> tuple[str, ...]:
        """Files whose sha256 this install recorded in the lock (the publisher gives none)."""
        return tuple(f.name for f in self.files if f.pinned_by == "recorded")


def install_hint(name: str) -> str:
    if offline_mode():
        return (f"offline: on a connected machine run `volseg models export {name} -o {name}.zip`, "
                f"copy it here, then `volseg models install {name}.zip`")
    return (f"run `volseg models download {name}`; "
            f"offline: `volseg models install BUNDLE.zip|DIR --model {name}`")


def installed_path(name: str) -> Path | None:
    """The model's installed folder, or None when it is not installed (or needs no weights)."""
    entry = get_entry(name)
    if not entry.needs_weights or read_manifest(entry.name, entry.version) is None:
        return None
    return model_dir(entry.name, entry.version)


def require_installed(name: str, *, check_hashes: bool = True) -> Path:
    """The installed folder of ``name``; a ModelError naming the install command otherwise.

    Checks that every installed file is present with its recorded size and, with ``check_hashes``,
    that every file a backend loads (plain weight files and files extracted from archives) still
    has the sha256 the install recorded: hashed once per process per (path, size, mtime, inode).
    """
    entry = get_entry(name)
    if not entry.needs_weights:
        raise ModelError(f"model {name!r} has no weights to install")
    manifest = read_manifest(entry.name, entry.version)
    if manifest is None:
        raise ModelError(f"model {name!r} ({entry.version}) is not installed", hint=install_hint(name))
    folder = model_dir(entry.name, entry.version)
    for f in manifest.files:
        path = folder / f.name
        if not path.is_file() or path.stat().st_size != f.size_bytes:
            raise ModelError(f"installed weights of {name!r} are incomplete ({f.name} missing or resized)",
                             hint=f"run `volseg models verify {name}`, then reinstall")
    if check_hashes:
        _check_recorded_hashes(entry, manifest, folder)
    return folder


def _check_recorded_hashes(entry: ModelEntry, manifest: Manifest, folder: Path) -> None:
    """A ModelError (exit 7) naming the first loaded file whose sha256 differs from the record."""
    archives = {w.name for w in entry.weights if w.archive is not None}  # only their contents load
    recorded = [(f.name, f.sha256) for f in manifest.files if f.name not in archives]
    for rel, expected in [*recorded, *sorted(manifest.extracted.items())]:
        path = folder / rel
        try:
            actual = cached_sha256(path)
        except OSError as exc:
            raise ModelError(f"installed weight file is missing or unreadable ({exc.strerror})", path=path,
                             hint=f"run `volseg models verify {entry.name}`, then reinstall") from exc
        if actual != expected:
            raise ModelError(f"installed weight file does not match its install record: expected sha256 "
                             f"{expected}, got {actual}", path=path,
                             hint=f"the file is corrupt or was changed; reinstall with "
                                  f"`volseg models download {entry.name} --force` or `volseg models install`")


class HashPolicy:
    """Which sha256 a file must have: the catalogue's, else the lock's; ``require_lock`` demands the lock."""

    def __init__(self, *, require_lock: bool = False, lock_path: str | Path | None = None) -> None:
        self.home_lock = read_lock()
        self.lock_path = Path(lock_path) if lock_path else default_lock_path()
        self.required = read_lock(self.lock_path) if require_lock else None

    def expected(self, entry: ModelEntry, wf: WeightFile) -> tuple[str | None, str]:
        if wf.sha256:
            return wf.sha256, "catalogue"
        for lock in (self.home_lock, self.required):
            pinned = lock.sha256(entry.name, entry.version, wf.name) if lock else None
            if pinned:
                return pinned, "lock"
        return None, "recorded"

    def refuse_unlocked(self, entry: ModelEntry, wf: WeightFile, actual: str | None = None) -> None:
        if self.required is None:
            return
        pinned = self.required.sha256(entry.name, entry.version, wf.name)
        if pinned is None or (actual is not None and actual != pinned):
            what = f"sha256 {actual}" if actual else "its hash"
            raise ModelError(f"--require-lock: {entry.name} {entry.version} {wf.name} ({what}) "
                             "is not in the lock file", path=self.lock_path,
                             hint="export a lock on a trusted machine with `volseg models lock -o FILE`")

    def check(self, entry: ModelEntry, wf: WeightFile, path: Path, actual: str, origin: str) -> str:
        expected, pinned_by = self.expected(entry, wf)
        if expected and actual != expected:
            raise ModelError(f"{origin}: {wf.name} of {entry.name} {entry.version} does not match: "
                             f"expected sha256 {expected}, got {actual}",
                             hint="nothing was installed; the file is corrupt, tampered with or "
                                  "of another version")
        self.refuse_unlocked(entry, wf, actual)
        size = path.stat().st_size
        if wf.size_bytes is not None and size != wf.size_bytes:
            raise ModelError(f"{origin}: {wf.name} of {entry.name} is {size} bytes, expected {wf.size_bytes}")
        if wf.publisher_hash:
            got = file_digest(path, wf.publisher_hash.algorithm)
            if got != wf.publisher_hash.value:
                algorithm, value = wf.publisher_hash.algorithm, wf.publisher_hash.value
                raise ModelError(f"{origin}: {wf.name} of {entry.name} does not match the publisher's "
                                 f"{algorithm}: expected {value}, got {got}")
        return pinned_by


def commit(entry: ModelEntry, sources: dict[str, Path], *, policy: HashPolicy, origin: str,
           move: bool = False) -> InstallResult:
    """Install ``sources`` (weight file name → path) as ``entry``: verify, extract, manifest, swap."""
    dest = model_dir(entry.name, entry.version)
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = dest.parent / f".staging-{entry.version}-{uuid.uuid4().hex[:12]}"
    staging.mkdir()
    moved: list[tuple[Path, Path]] = []
    try:
        files = []
        for wf in entry.weights:
            out = staging / wf.name
            src = sources[wf.name]
            actual = _move_hashed(src, out, moved) if move else _copy_hashed(src, out)
            pinned_by = policy.check(entry, wf, out, actual, origin)
            files.append(InstalledFile(wf.name, actual, out.stat().st_size, pinned_by))
        extracted = _extract_archives(entry, staging)
        from volseg.io.atomic import write_text

        write_text(staging / MANIFEST_NAME,
                   Manifest(entry.name, entry.version, origin, tuple(files), extracted).to_json())
        _swap(staging, dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        for src, out in moved:  # give verified downloads back so a retry need not fetch them again
            if out.exists() and not src.exists():
                os.replace(out, src)
        raise
    _record_in_lock(entry, files, policy)
    log.debug("installed %s %s (%d files, from %s)", entry.name, entry.version, len(files), origin)
    return InstallResult(entry.name, entry.version, dest, tuple(files), origin)


def _copy_hashed(src: Path, out: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(src, "rb") as fin, open(out, "xb") as fout:
        while block := fin.read(_BLOCK):
            digest.update(block)
            fout.write(block)
    return digest.hexdigest()


def _move_hashed(src: Path, out: Path, moved: list[tuple[Path, Path]]) -> str:
    try:
        os.replace(src, out)
        moved.append((src, out))
    except OSError:  # another file system
        return _copy_hashed(src, out)
    return sha256_file(out)


def _extract_archives(entry: ModelEntry, staging: Path) -> dict[str, str]:
    extracted: dict[str, str] = {}
    for wf in entry.weights:
        if wf.archive is None:
            continue
        folder = staging / wf.extract_to if wf.extract_to else staging
        tmp = staging / f".extract-{uuid.uuid4().hex[:8]}"
        names = safe_extract(staging / wf.name, tmp)
        folder.mkdir(exist_ok=True)
        for child in sorted(tmp.iterdir()):
            target = folder / child.name
            if target.exists():
                raise ModelError(f"{wf.name}: archive entry {child.name!r} collides with another file "
                                 f"of {entry.name}")
            child.rename(target)
        tmp.rmdir()
        missing = [m for m in wf.members if not (folder / m).is_file()]
        if missing:
            raise ModelError(f"{wf.name} of {entry.name} lacks expected member(s) {missing[:3]}",
                             hint="the archive layout differs from the catalogue; nothing was installed")
        prefix = f"{wf.extract_to}/" if wf.extract_to else ""
        for name in names:
            extracted[prefix + name] = sha256_file(folder / name)
    return extracted


def _swap(staging: Path, dest: Path) -> None:
    old = None
    if dest.exists():
        old = dest.with_name(f".old-{dest.name}-{uuid.uuid4().hex[:8]}")
        dest.rename(old)
    try:
        staging.rename(dest)
    except OSError:
        if old is not None:
            old.rename(dest)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _record_in_lock(entry: ModelEntry, files: list[InstalledFile], policy: HashPolicy) -> None:
    lock = read_lock()
    changed = False
    for f in files:
        if f.pinned_by == "catalogue" or lock.sha256(entry.name, entry.version, f.name) == f.sha256:
            continue
        lock.record(entry.name, entry.version, f.name, sha256=f.sha256, size_bytes=f.size_bytes,
                    url=entry.weight(f.name).url)
        changed = True
    if changed:
        write_lock(lock)


# ---- downloads ------------------------------------------------------------------------------
def source_url(entry: ModelEntry, wf: WeightFile) -> str:
    """The publisher's URL, or ``$VOLSEG_MIRROR/<name>/<version>/<file>`` for an internal mirror."""
    mirror = os.environ.get("VOLSEG_MIRROR", "").strip()
    if mirror:
        return f"{mirror.rstrip('/')}/{entry.name}/{entry.version}/{wf.name}"
    return wf.url


def download_model(name: str, *, require_lock: bool = False, lock_path: str | Path | None = None,
                   force: bool = False, progress: ProgressCallback = no_progress) -> InstallResult:
    """Download, verify and install every weight file of ``name`` (resuming interrupted files)."""
    from volseg.segmenters.weights.download import fetch, offline_error

    entry = get_entry(name)
    if not entry.needs_weights:
        return InstallResult(entry.name, entry.version, None, source="builtin", already_installed=True)
    if not force and installed_path(entry.name) is not None:
        try:
            folder = require_installed(entry.name)
        except ModelError as exc:  # damaged installation: fetch it again
            log.warning("%s; downloading it again", exc.message)
        else:
            manifest = read_manifest(entry.name, entry.version)
            return InstallResult(entry.name, entry.version, folder, manifest.files if manifest else (),
                                 "download", already_installed=True)
    if offline_mode():
        raise offline_error(f"model {name!r}", entry.name)
    policy = HashPolicy(require_lock=require_lock, lock_path=lock_path)
    cache = downloads_dir(entry.name, entry.version)
    paths: dict[str, Path] = {}
    for wf in entry.weights:
        policy.refuse_unlocked(entry, wf)  # before spending bandwidth
        expected, _ = policy.expected(entry, wf)
        dest = cache / wf.name
        if not (dest.is_file() and (expected is None or sha256_file(dest) == expected)):
            publisher = (wf.publisher_hash.algorithm, wf.publisher_hash.value) if wf.publisher_hash else None
            fetch(source_url(entry, wf), dest, expected_sha256=expected, publisher_hash=publisher,
                  expected_size=wf.size_bytes, progress=progress, stage=f"{entry.name}: {wf.name}")
        paths[wf.name] = dest
    result = commit(entry, paths, policy=policy, origin="download", move=True)
    shutil.rmtree(cache, ignore_errors=True)
    for empty in (cache.parent, cache.parent.parent):
        try:
            empty.rmdir()
        except OSError:  # not empty: other downloads in progress
            break
    return result
