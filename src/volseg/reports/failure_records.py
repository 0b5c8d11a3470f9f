"""Failure records read back from an output folder (``<OUT>/<study>/.volseg-failed.json``), for the cohort.

``volseg batch`` writes them (:mod:`volseg.batch.records`); the cohort tables and page list them.
Reading needs nothing from ``batch``: the file name and record schema are fixed here, and
``tests/reports`` checks that they agree with the writer's.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

FAILED_RECORD = ".volseg-failed.json"
RECORD_SCHEMA = "volseg-batch-record/1"
INTERNAL_EXIT_CODE = 1  # an unexpected error (a bug), and the exit code of a record that lacks one


@dataclass(frozen=True)
class RecordedFailure:
    """A study whose latest run failed, read back from its ``.volseg-failed.json``."""

    study_id: str
    folder: str  # the study folder, relative to the output folder
    model: str  # model names of the run, "+"-joined
    model_version: str
    stage: str
    error_class: str
    exit_code: int
    error: str  # one line, no patient identifiers
    time: str  # when it failed (UTC, ISO 8601)


def find_failures(out_dir: str | Path) -> list[RecordedFailure]:
    """Every failure record under ``out_dir`` (recursively, hidden folders skipped), by study id."""
    root = Path(out_dir)
    found = []
    for path in sorted(root.rglob(FAILED_RECORD)):
        rel = path.parent.relative_to(root)
        if any(part.startswith(".") for part in rel.parts):
            continue
        record = _read_record(path)
        if record is None or record.get("status") != "failed":
            continue
        found.append(_recorded(record, rel))
    return sorted(found, key=lambda f: (f.study_id, f.folder))


def _recorded(record: dict, rel: Path) -> RecordedFailure:
    models = [m for m in record.get("models") or [] if isinstance(m, dict)]
    return RecordedFailure(
        study_id=str(record.get("study_id") or rel.as_posix()), folder=rel.as_posix() or ".",
        model="+".join(str(m.get("name", "?")) for m in models),
        model_version="+".join(str(m.get("version", "?")) for m in models),
        stage=str(record.get("stage", "")), error_class=str(record.get("error_class", "")),
        exit_code=int(record.get("exit_code", INTERNAL_EXIT_CODE)),
        error=" ".join(str(record.get("error", "")).split()), time=str(record.get("at", "")))


def _read_record(path: Path) -> dict | None:
    """The record as a dict, or None when it is unreadable or not a volseg batch record."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("schema") == RECORD_SCHEMA else None
