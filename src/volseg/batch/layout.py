"""Where a batch writes: one folder per study, built in a work folder and moved into place.

``OUT/.volseg-work/<study>.<token>/`` receives a study's outputs while it runs. When they are all
written, any previous ``OUT/<study>/`` (partial, stale or failed) is moved aside and deleted, the
work folder is renamed to ``OUT/<study>/`` (one rename on the same file system), and only then is
the completion record written. A killed run leaves at most a work folder, which the next run of
the same studies deletes before it starts.
"""
from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Iterable
from pathlib import Path

from volseg.errors import OutputError

WORK = ".volseg-work"
LOGS = "logs"
_WORK_NAME = re.compile(r"^(?P<study>.+)\.(?P<token>[0-9a-f]{12})(?P<old>\.old)?$")


def study_dir(out_dir: Path, study_id: str) -> Path:
    return Path(out_dir) / study_id


def new_work_dir(out_dir: Path, study_id: str) -> Path:
    path = Path(out_dir) / WORK / f"{study_id}.{uuid.uuid4().hex[:12]}"
    try:
        _mkdir_in_work(path)
    except OSError as exc:
        raise OutputError(f"cannot create a work folder: {exc.strerror or exc}", path=path) from exc
    return path


def _mkdir_in_work(path: Path, tries: int = 5) -> None:
    """mkdir under the work root, which another shard may remove (when empty) at any moment."""
    for attempt in range(tries):
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            path.mkdir()
            return
        except FileNotFoundError:
            if attempt == tries - 1:
                raise


def clean_work(out_dir: Path, study_ids: Iterable[str]) -> int:
    """Delete what killed runs left in the work folder for these studies (other shards' are kept)."""
    root = Path(out_dir) / WORK
    if not root.is_dir():
        return 0
    ids = set(study_ids)
    removed = 0
    for entry in root.iterdir():
        match = _WORK_NAME.match(entry.name)
        if entry.name == WORK or (match and match.group("study") in ids):  # WORK: a nested one left behind
            _remove_tree(entry)
            removed += 1
    remove_work_root_if_empty(out_dir)
    return removed


def remove_work_root_if_empty(out_dir: Path) -> None:
    try:
        (Path(out_dir) / WORK).rmdir()
    except OSError:  # not empty (another shard is running) or already gone
        pass


def remove_work(work_dir: Path) -> None:
    """Delete a study's own work folder (nobody else uses it: no need to move it aside first)."""
    _remove_tree(Path(work_dir))


def remove_if_empty(path: Path) -> None:
    try:
        Path(path).rmdir()
    except OSError:  # not empty, or gone
        pass


def discard(path: Path) -> None:
    """Remove a study folder that must be redone, safely: rename it away first, then delete."""
    if not path.exists():
        return
    trash = Path(path).parent / WORK / f"{path.name}.{uuid.uuid4().hex[:12]}.old"
    _mkdir_in_work(trash)  # an empty folder: os.replace may replace it by the study folder
    os.replace(path, trash)
    _remove_tree(trash)


def finalize(work_dir: Path, final_dir: Path) -> Path:
    """Move a finished work folder to ``final_dir``, replacing whatever was there."""
    try:
        discard(final_dir)
        os.replace(work_dir, final_dir)
    except OSError as exc:
        raise OutputError(f"cannot move the study into place: {exc.strerror or exc}",
                          path=final_dir) from exc
    return final_dir


def _remove_tree(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            path.unlink()
        except OSError:
            pass
