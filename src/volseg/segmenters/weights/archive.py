"""Safe extraction of zip and tar archives.

Every member is checked before anything is written: no absolute paths, no ``..``, no links or
device files, a cap on the number of members, on each member's and the total uncompressed size
(counted while writing too, not trusted from headers), on the compression ratio (per zip member
and of the whole archive) and the free disk space the total needs. Extraction goes
into a temporary folder beside the target, which is renamed into place only when complete.
"""
from __future__ import annotations

import shutil
import stat
import tarfile
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from volseg.errors import ModelError

_BLOCK = 1 << 20
_RATIO_FLOOR = 64 * 1024  # members (and archives) smaller than this are never bombs worth refusing


@dataclass(frozen=True)
class ArchiveLimits:
    max_members: int = 10_000
    max_total_bytes: int = 64 * 1024**3
    max_member_bytes: int = 16 * 1024**3
    max_ratio: float = 200.0  # uncompressed / compressed: per zip member above 64 KiB, and overall
    min_free_bytes: int = 256 * 1024**2  # disk space left free after extraction


@dataclass(frozen=True)
class _Member:
    name: str  # normalised relative POSIX path
    size: int
    is_dir: bool
    handle: object  # ZipInfo or TarInfo


def archive_kind(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(".zip"):
        return "zip"
    if name.endswith((".tar.gz", ".tgz")):
        return "tar.gz"
    if name.endswith(".tar"):
        return "tar"
    raise ModelError("not a zip or tar archive", path=path)


def safe_member_name(raw: str, archive: Path) -> str:
    """The member's path relative to the target, or an error if it could escape it."""
    text = raw.replace("\\", "/")
    if text.startswith("/") or (len(text) > 1 and text[1] == ":"):
        raise ModelError(f"archive member {raw!r} has an absolute path", path=archive)
    parts = [p for p in PurePosixPath(text).parts if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise ModelError(f"archive member {raw!r} escapes the target folder ('..')", path=archive)
    if not parts:
        raise ModelError(f"archive member {raw!r} has an empty name", path=archive)
    return "/".join(parts)


def list_members(path: Path, kind: str | None = None,
                 limits: ArchiveLimits = ArchiveLimits()) -> list[_Member]:
    """Check every member of an archive against the rules and limits; nothing is extracted."""
    kind = kind or archive_kind(path)
    members = _zip_members(path, limits) if kind == "zip" else _tar_members(path, kind)
    if len(members) > limits.max_members:
        raise ModelError(f"archive has {len(members)} members, more than the limit {limits.max_members}",
                         path=path)
    total = sum(m.size for m in members)
    if total > limits.max_total_bytes:
        raise ModelError(f"archive would expand to {total} bytes, more than the limit "
                         f"{limits.max_total_bytes}", path=path)
    archive_bytes = max(path.stat().st_size, 1)
    if total > _RATIO_FLOOR and total / archive_bytes > limits.max_ratio:
        raise ModelError(f"archive of {archive_bytes} bytes would expand to {total} bytes "
                         f"({total // archive_bytes}:1, limit {limits.max_ratio:g}:1; an archive bomb?)",
                         path=path)
    for m in members:
        if m.size > limits.max_member_bytes:
            raise ModelError(f"archive member {m.name!r} is {m.size} bytes, more than the limit", path=path)
    names = [m.name for m in members if not m.is_dir]
    if len(set(names)) != len(names):
        raise ModelError("archive holds the same member twice", path=path)
    return members


def _zip_members(path: Path, limits: ArchiveLimits) -> list[_Member]:
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise ModelError(f"not a readable zip archive ({exc})", path=path) from exc
    members = []
    for info in infos:
        name = safe_member_name(info.filename, path)
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise ModelError(f"archive member {info.filename!r} is a symbolic link (not allowed)", path=path)
        if stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):  # 0: no Unix type recorded
            raise ModelError(f"archive member {info.filename!r} is not a regular file", path=path)
        if (info.file_size > _RATIO_FLOOR and info.compress_size
                and info.file_size / info.compress_size > limits.max_ratio):
            ratio = info.file_size // info.compress_size
            raise ModelError(f"archive member {info.filename!r} is compressed {ratio}:1 "
                             "(an archive bomb?)", path=path)
        members.append(_Member(name, info.file_size, info.is_dir(), info))
    return members


def _tar_members(path: Path, kind: str) -> list[_Member]:
    try:
        with tarfile.open(path, "r:gz" if kind == "tar.gz" else "r:") as tf:
            infos = tf.getmembers()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ModelError(f"not a readable tar archive ({exc})", path=path) from exc
    members = []
    for info in infos:
        name = safe_member_name(info.name, path)
        if info.issym() or info.islnk():
            raise ModelError(f"archive member {info.name!r} is a link to {info.linkname!r} (not allowed)",
                             path=path)
        if not (info.isfile() or info.isdir()):
            raise ModelError(f"archive member {info.name!r} is not a regular file or folder", path=path)
        members.append(_Member(name, info.size, info.isdir(), info))
    return members


def safe_extract(path: str | Path, target: str | Path, *,
                 limits: ArchiveLimits = ArchiveLimits()) -> list[str]:
    """Extract ``path`` into the folder ``target`` (created; must not exist yet). Returns file paths."""
    path, target = Path(path), Path(target)
    kind = archive_kind(path)
    members = list_members(path, kind, limits)
    if target.exists():
        raise ModelError(f"extraction target {target.name!r} already exists", path=target)
    _check_free_space(sum(m.size for m in members), target, path, limits)
    tmp = target.with_name(f".extract-{uuid.uuid4().hex[:12]}-{target.name}")
    tmp.mkdir(parents=True)
    try:
        _write_members(path, kind, members, tmp, limits)
        tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return sorted(m.name for m in members if not m.is_dir)


def _check_free_space(total: int, target: Path, archive: Path, limits: ArchiveLimits) -> None:
    """Refuse before writing anything when the extracted files would not fit on the disk."""
    folder = target.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    free = shutil.disk_usage(folder).free
    if total + limits.min_free_bytes > free:
        raise ModelError(f"archive expands to {total} bytes; the disk has "
                         f"{free} bytes free (keeping {limits.min_free_bytes} spare)", path=archive)


def _write_members(path: Path, kind: str, members: list[_Member], root: Path, limits: ArchiveLimits) -> None:
    budget = [limits.max_total_bytes]
    if kind == "zip":
        with zipfile.ZipFile(path) as zf:
            for m in members:
                _write_one(m, root, lambda m=m: zf.open(m.handle), limits, budget, path)
    else:
        with tarfile.open(path, "r:gz" if kind == "tar.gz" else "r:") as tf:
            for m in members:
                _write_one(m, root, lambda m=m: tf.extractfile(m.handle), limits, budget, path)


def _write_one(member: _Member, root: Path, opener, limits: ArchiveLimits, budget: list[int],
               archive: Path) -> None:
    dest = root.joinpath(*member.name.split("/"))
    if not dest.resolve().is_relative_to(root.resolve()):  # belt and braces after safe_member_name
        raise ModelError(f"archive member {member.name!r} escapes the target folder", path=archive)
    if member.is_dir:
        dest.mkdir(parents=True, exist_ok=True)
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with opener() as src, open(dest, "xb") as out:
        while block := src.read(_BLOCK):
            written += len(block)
            budget[0] -= len(block)
            if written > max(member.size, 0) or written > limits.max_member_bytes or budget[0] < 0:
                raise ModelError(f"archive member {member.name!r} expands beyond its declared size "
                                 "or the limit (an archive bomb?)", path=archive)
            out.write(block)
