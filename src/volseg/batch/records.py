"""Completion and failure records: what makes a study count as done, and what a rerun trusts.

``<OUT>/<study>/.volseg-done.json`` is written last, atomically, once every output of the study is
in place. It holds the input's fingerprint (path, size, mtime and sha256 of each input file), the
models (name, version) and options, and the size and SHA-256 of every output file. A rerun skips
a study only when the record parses and all of that still holds; otherwise the study is redone.
A folder without a record is a partial study (a killed run) and is redone from scratch.

``<OUT>/<study>/.volseg-failed.json`` records a failed study: the stage, the error class, its exit
code and its one-line message (paths relative to the input folder; no patient identifiers).
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from volseg.batch.discover import Study
from volseg.io.atomic import write_text
from volseg.segmenters.weights.cache import sha256_file

DONE = ".volseg-done.json"
FAILED = ".volseg-failed.json"
RECORD_SCHEMA = "volseg-batch-record/1"


@dataclass(frozen=True)
class RunKey:
    """What a study's outputs depend on besides the input: the models and the options."""

    models: tuple[tuple[str, str], ...]  # (name, version) in run order
    options: tuple[tuple[str, Any], ...] = ()

    def to_json(self) -> dict:
        return {"models": [{"name": n, "version": v} for n, v in self.models],
                "options": dict(self.options)}


@dataclass(frozen=True)
class StudyState:
    status: str  # "new" | "done" | "stale" | "partial" | "failed" | "failed_stale"
    reason: str = ""


# ---- fingerprints --------------------------------------------------------------------------
def input_fingerprint(study: Study) -> dict:
    """The content of every file the study is read from: each file's relative path, size, mtime
    and streamed sha256, hashed together (for a DICOM folder, the sorted file list with their hashes).
    Size and mtime alone are not trusted: a file replaced by another of the same size with its
    mtime restored must make the study be redone."""
    digest = hashlib.sha256()
    n_files = n_bytes = 0
    for rel, size, content in _input_files(study):
        digest.update(f"{rel}\0{size}\0{content}\n".encode("utf-8", "surrogateescape"))
        n_files, n_bytes = n_files + 1, n_bytes + max(size, 0)
    series = hashlib.sha256(study.series.encode()).hexdigest()[:16] if study.series else None
    return {"kind": study.kind, "rel_path": study.rel_path, "series_sha256_16": series,
            "n_files": n_files, "n_bytes": n_bytes, "content_sha256": digest.hexdigest()}


def _input_files(study: Study):
    path = Path(study.path)
    if study.kind == "dicom":
        for folder, dirs, names in os.walk(path):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(names):
                yield _stat(Path(folder) / name, path)
        return
    if path.name.lower().endswith((".mhd", ".nhdr")):  # header + data file(s) beside it
        stem = path.name.rsplit(".", 1)[0]
        for sibling in sorted(path.parent.iterdir()):
            if sibling.is_file() and sibling.name.rsplit(".", 1)[0] == stem:
                yield _stat(sibling, path.parent)
        return
    yield _stat(path, path.parent)


def _stat(path: Path, base: Path) -> tuple[str, int, str]:
    """(relative path, size, "mtime sha256") of one input file; size -1 when it cannot be read."""
    rel = path.relative_to(base).as_posix()
    try:
        st = path.stat()
        return rel, st.st_size, f"{st.st_mtime_ns} {sha256_file(path)}"
    except OSError:
        return rel, -1, "unreadable"


def hash_outputs(folder: str | Path) -> dict[str, dict]:
    """{relative path: {size, sha256}} of every file under ``folder`` except the records."""
    folder = Path(folder)
    out: dict[str, dict] = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        if path.name in (DONE, FAILED):
            continue
        out[path.relative_to(folder).as_posix()] = {"size": path.stat().st_size, "sha256": sha256_file(path)}
    return out


# ---- writing records ---------------------------------------------------------------------
def write_done(study_dir: Path, study: Study, key: RunKey, *, fingerprint: dict,
               outputs: dict[str, dict], seconds: float | None = None) -> Path:
    from volseg import __version__

    record = {"schema": RECORD_SCHEMA, "status": "done", "study_id": study.study_id,
              "input": fingerprint, **key.to_json(), "outputs": outputs,
              "seconds": None if seconds is None else round(seconds, 3),
              "volseg_version": __version__, "finished_at": _now()}
    return write_text(Path(study_dir) / DONE, json.dumps(record, indent=1, sort_keys=True) + "\n")


def write_failed(study_dir: Path, study: Study, key: RunKey, *, fingerprint: dict, stage: str,
                 error_class: str, exit_code: int, error: str) -> Path:
    from volseg import __version__

    record = {"schema": RECORD_SCHEMA, "status": "failed", "study_id": study.study_id,
              "input": fingerprint, **key.to_json(), "stage": stage, "error_class": error_class,
              "exit_code": int(exit_code), "error": " ".join(error.split()),
              "volseg_version": __version__, "at": _now()}
    Path(study_dir).mkdir(parents=True, exist_ok=True)
    return write_text(Path(study_dir) / FAILED, json.dumps(record, indent=1, sort_keys=True) + "\n")


def read_record(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("schema") == RECORD_SCHEMA else None


# ---- judging a study folder ----------------------------------------------------------------
def study_state(study_dir: Path, key: RunKey, fingerprint: dict) -> StudyState:
    """Whether ``study_dir`` holds this study done, failed, partial, stale, or nothing yet."""
    if not study_dir.exists():
        return StudyState("new")
    done = study_dir / DONE
    if done.exists():
        problem = verify_done(study_dir, key, fingerprint)
        return StudyState("done") if problem is None else StudyState("stale", problem)
    failed = read_record(study_dir / FAILED)
    if failed is not None:
        if _same_run(failed, key, fingerprint) is None:
            return StudyState("failed", failed.get("error", ""))
        return StudyState("failed_stale", _same_run(failed, key, fingerprint) or "")
    return StudyState("partial", "no completion record (an interrupted run)")


def verify_done(study_dir: Path, key: RunKey, fingerprint: dict) -> str | None:
    """None when the completion record holds; else why the study must be redone."""
    record = read_record(study_dir / DONE)
    if record is None or record.get("status") != "done":
        return "completion record unreadable"
    problem = _same_run(record, key, fingerprint)
    if problem:
        return problem
    outputs = record.get("outputs")
    if not isinstance(outputs, Mapping) or not outputs:
        return "completion record lists no outputs"
    for rel, meta in outputs.items():
        path = study_dir / rel
        if not path.is_file():
            return f"output {rel} missing"
        if path.stat().st_size != meta.get("size") or sha256_file(path) != meta.get("sha256"):
            return f"output {rel} changed since it was written"
    return None


def _same_run(record: Mapping, key: RunKey, fingerprint: dict) -> str | None:
    expected = key.to_json()
    if record.get("models") != expected["models"]:
        return "models or model versions changed"
    if record.get("options") != expected["options"]:
        return "options changed"
    if record.get("input") != fingerprint:
        return "input changed"
    return None


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
