"""Finding the studies under a folder, and naming them from their relative path.

A study is one image file (NIfTI, NRRD, MHA/MHD) or one DICOM series. DICOM files are grouped by
the top-most folder that holds them directly (its *DICOM root*); each series under a root is one
study (read with ``series=<uid>``). A series whose files lie under several roots is one study
read from their common folder.

Study ids come from the path relative to the input folder, never from patient tags:
``site1/case 7.nii.gz`` → ``site1__case_7``. Characters outside ``[A-Za-z0-9._-]`` become ``_``;
ids that would collide get ``-<8 hex of the relative path>`` appended, so every id is unique and
the same folder always gives the same ids. Hidden files and folders (``.name``) are skipped, and so
is the output folder when it lies inside the input folder.
"""
from __future__ import annotations

import errno
import hashlib
import logging
import os
import re
import stat
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from volseg.batch.layout import LOGS
from volseg.errors import UsageError
from volseg.io import DICOM_SUFFIXES, ITK_SUFFIXES, NIFTI_SUFFIXES

log = logging.getLogger(__name__)

#: names a study folder may not take (they are the batch's own folders in the output)
RESERVED_IDS = frozenset({LOGS})
#: files that are never images (skipped without opening them)
_NOT_IMAGES = (".json", ".csv", ".txt", ".md", ".html", ".pdf", ".png", ".jpg", ".jpeg", ".xml",
               ".log", ".py", ".sh", ".zip", ".gz", ".tar", ".raw", ".zraw", ".npy", ".npz", ".pkl")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class Study:
    """One study to segment: where it is (relative to the input folder) and its id."""

    study_id: str
    path: str  # absolute path of the file, or of the DICOM folder
    rel_path: str  # POSIX path relative to the input folder ("." for the folder itself)
    kind: str  # "nifti", "itk" or "dicom"
    series: str | None = None  # DICOM SeriesInstanceUID to read from the folder


@dataclass(frozen=True)
class SkippedInput:
    """An input file left out of the batch: a symlink loop, a dangling link or an alias."""

    rel_path: str
    reason: str


@dataclass(frozen=True)
class Discovery:
    studies: tuple[Study, ...]
    skipped: tuple[SkippedInput, ...] = ()


def discover_studies(input_dir: str | Path, *, exclude: str | Path | None = None) -> list[Study]:
    """Every study under ``input_dir``, sorted by study id (a deterministic order)."""
    return list(discover(input_dir, exclude=exclude).studies)


def discover(input_dir: str | Path, *, exclude: str | Path | None = None) -> Discovery:
    """The studies under ``input_dir`` (sorted by id) and the image files skipped, each with a
    warning: symbolic-link loops, dangling links and aliases (a second path to a file already
    found, through a symbolic or hard link). One bad entry never stops the batch."""
    root = Path(input_dir)
    if not root.is_dir():
        raise UsageError(f"{root}: not a folder", hint="volseg batch takes a folder of studies")
    root = root.resolve()
    skip = Path(exclude).resolve() if exclude is not None else None
    files, dicom_dirs = _walk(root, skip)
    files, skipped = _usable_files(root, files)
    found: list[tuple[str, str, str, str | None, str]] = []  # (raw id, path, rel, series, kind)
    for path in files:
        rel = path.relative_to(root).as_posix()
        found.append((_strip_suffix(rel), str(path), rel, None, _file_kind(path)))
    if dicom_dirs:
        found.extend(_dicom_studies(root, dicom_dirs))
    ids = assign_ids([raw for raw, *_ in found])
    studies = [Study(study_id=i, path=p, rel_path=rel, kind=kind, series=series)
               for i, (_, p, rel, series, kind) in zip(ids, found)]
    studies.sort(key=lambda s: s.study_id)
    log.debug("found %d studies under %s", len(studies), root.name)
    return Discovery(tuple(studies), tuple(skipped))


def _usable_files(root: Path, files: list[Path]) -> tuple[list[Path], list[SkippedInput]]:
    """``files`` without link loops, dangling links and aliases (plain files win over links)."""
    seen: dict[tuple[int, int], str] = {}
    reasons: dict[Path, str] = {}
    for path in sorted(files, key=lambda p: (p.is_symlink(), str(p))):
        rel = path.relative_to(root).as_posix()
        try:
            st = path.stat()
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                reasons[path] = "symbolic link loop"
            elif path.is_symlink():
                reasons[path] = "dangling symbolic link"
            else:
                reasons[path] = f"cannot be read ({exc.strerror})"
            continue
        except RuntimeError:  # pragma: no cover - older Pythons report some loops this way
            reasons[path] = "symbolic link loop"
            continue
        if not stat.S_ISREG(st.st_mode):
            reasons[path] = "not a regular file"
            continue
        key = (st.st_dev, st.st_ino)
        if key in seen:
            reasons[path] = f"alias of {seen[key]} (the same file)"
            continue
        seen[key] = rel
    skipped = [SkippedInput(p.relative_to(root).as_posix(), r) for p, r in sorted(reasons.items())]
    for item in skipped:
        log.warning("%s: skipped: %s", item.rel_path, item.reason)
    return [p for p in files if p not in reasons], skipped


def assign_ids(raw_names: list[str]) -> list[str]:
    """Sanitised, unique ids for relative names (``a/b c`` → ``a__b_c``), in the same order."""
    clean = [sanitise(name) for name in raw_names]
    counts = Counter(clean)
    taken = set(clean)
    out = []
    for raw, name in zip(raw_names, clean):
        if counts[name] > 1 or name in RESERVED_IDS:
            name = f"{name}-{_short_hash(raw)}"
            while name in taken:  # pragma: no cover - a hash collision within one cohort
                name = f"{name}-{_short_hash(name)}"
            taken.add(name)
        out.append(name)
    return out


def sanitise(rel_name: str) -> str:
    """A folder-name-safe id: path parts joined by ``__``, never hidden (``.x`` → ``_x``)."""
    parts = [p for p in rel_name.replace("\\", "/").split("/") if p not in ("", ".", "..")]
    clean = (re.sub(r"^\.+", "_", _UNSAFE.sub("_", p).strip("_")) or "_" for p in parts)
    return "__".join(clean) or "study"


# ---- walking the tree ----------------------------------------------------------------------
def _walk(root: Path, skip: Path | None) -> tuple[list[Path], list[Path]]:
    """Image files, and folders that directly hold possible DICOM files, under ``root``."""
    files: list[Path] = []
    dicom_dirs: list[Path] = []
    for folder, dirs, names in os.walk(root):
        here = Path(folder)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and (skip is None or here / d != skip))
        has_dicom = False
        for name in sorted(names):
            if name.startswith("."):
                continue
            lower = name.lower()
            if lower.endswith((*NIFTI_SUFFIXES, *ITK_SUFFIXES)):
                files.append(here / name)
            elif not has_dicom and _maybe_dicom(here / name, lower):
                has_dicom = True
        if has_dicom:
            dicom_dirs.append(here)
    return files, dicom_dirs


def _maybe_dicom(path: Path, lower: str) -> bool:
    if lower.endswith(DICOM_SUFFIXES):
        return True
    if lower.endswith(_NOT_IMAGES):
        return False
    from volseg.io.dicom import is_dicom_file

    return is_dicom_file(path)


def _file_kind(path: Path) -> str:
    return "nifti" if path.name.lower().endswith(NIFTI_SUFFIXES) else "itk"


def _strip_suffix(rel: str) -> str:
    lower = rel.lower()
    for suffix in (*NIFTI_SUFFIXES[::-1], *ITK_SUFFIXES):
        if lower.endswith(suffix):
            return rel[: -len(suffix)]
    return rel


# ---- DICOM -------------------------------------------------------------------------------
def _dicom_studies(root: Path, dicom_dirs: list[Path]):
    """(raw id, folder, rel, series uid or None, "dicom") per series under the DICOM roots."""
    from volseg.io.dicom import list_series

    roots = _top_most(dicom_dirs)
    where: dict[str, list[Path]] = defaultdict(list)  # series uid → roots holding it
    info: dict[str, object] = {}
    for folder in roots:
        try:
            series = list_series(folder)
        except Exception as exc:  # noqa: BLE001 - a folder that cannot be scanned is one failed study
            log.warning("%s: DICOM folder cannot be scanned (%s)", _rel(root, folder), type(exc).__name__)
            series = []
        if not series:  # nothing readable: still a study, so that the batch reports it as failed
            where[f"unreadable:{folder}"].append(folder)
            continue
        for s in series:
            where[s.uid].append(folder)
            info[s.uid] = s
    per_folder: dict[Path, list[str]] = defaultdict(list)
    for uid, folders in where.items():
        per_folder[_common(folders)].append(uid)
    for folder, uids in sorted(per_folder.items()):
        rel = _rel(root, folder)
        if len(uids) == 1:
            uid = uids[0]
            yield rel if rel != "." else root.name, str(folder), rel, _real_uid(uid), "dicom"
            continue
        numbers = Counter(getattr(info.get(u), "number", None) for u in uids)
        for uid in uids:
            number = getattr(info.get(uid), "number", None)
            tag = f"s{number}" if number is not None else "s"
            if number is None or numbers[number] > 1:
                tag += f"-{_short_hash(uid)}"
            base = rel if rel != "." else root.name
            yield f"{base}/{tag}", str(folder), rel, _real_uid(uid), "dicom"


def _real_uid(uid: str) -> str | None:
    """The series to read (always named: a folder may hold other series too)."""
    return None if uid.startswith("unreadable:") else uid


def _top_most(folders: list[Path]) -> list[Path]:
    """Folders none of whose ancestors is in the list (the DICOM roots)."""
    chosen: list[Path] = []
    for folder in sorted(folders, key=lambda p: (len(p.parts), str(p))):
        if not any(folder.is_relative_to(c) for c in chosen):
            chosen.append(folder)
    return chosen


def _common(folders: list[Path]) -> Path:
    return Path(os.path.commonpath([str(f) for f in folders]))


def _rel(root: Path, folder: Path) -> str:
    return folder.relative_to(root).as_posix() if folder != root else "."


def _short_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:8]
