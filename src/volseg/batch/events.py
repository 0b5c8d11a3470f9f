"""What a batch tells its caller: events as they happen, and a summary at the end.

The library never prints: the CLI renders events as Rich progress bars, or as JSON lines
(``--json-log``). Event kinds and their ``data``:

* ``waiting_for_lock``: holder (``--wait``: another run holds the output folder)
* ``batch_started``: found, selected (this shard), to_run, skip, failed_before, skipped_inputs
  (links that loop or dangle, aliases: listed in the run's log), shard, workers, executor, log_file
* ``model_loaded``: worker, device, models, seconds
* ``study_started``: worker · ``study_progress``: stage, done, total (from the model)
* ``study_done``: seconds, outputs · ``study_skipped``: reason
* ``study_failed``: stage, error_class, exit_code, error, previous (recorded by an earlier run)
* ``collected``: outputs (cohort tables) · ``batch_finished``: done, skipped, failed, skipped_inputs, seconds,
  exit_code
"""
from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("volseg.batch.run")  # one line per event: the run log file


@dataclass(frozen=True)
class BatchEvent:
    kind: str
    study_id: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    time: float = field(default_factory=time.time)

    def to_json(self) -> str:
        return json.dumps({"event": self.kind, "time": round(self.time, 3), "study_id": self.study_id,
                           **self.data}, sort_keys=False, default=str)


EventCallback = Callable[[BatchEvent], None]


@dataclass(frozen=True)
class FailedStudy:
    study_id: str
    stage: str
    error_class: str
    exit_code: int
    error: str
    previous: bool = False  # recorded by an earlier run and not retried


@dataclass(frozen=True)
class BatchSummary:
    out_dir: Path
    shard: str
    done: tuple[str, ...]
    skipped: tuple[str, ...]
    failed: tuple[FailedStudy, ...]
    log_file: Path | None
    cohort: dict[str, Path]
    seconds: float
    skipped_inputs: int = 0  # input files left out: symbolic-link loops, dangling links, aliases

    @property
    def exit_code(self) -> int:
        """0 when no study failed; else the largest exit code among the failures."""
        return max((f.exit_code for f in self.failed), default=0)


class Tally:
    """Thread-safe event sink: counts outcomes, logs each event, forwards it to the caller."""

    def __init__(self, callback: EventCallback | None) -> None:
        self._callback = callback
        self._lock = threading.Lock()
        self.done: list[str] = []
        self.skipped: list[str] = []
        self.failed: list[FailedStudy] = []

    def emit(self, kind: str, study_id: str | None = None, data: dict | None = None) -> None:
        event = BatchEvent(kind, study_id, dict(data or {}))
        with self._lock:
            if study_id is None:  # not a study's event (the study kinds always name their study)
                pass
            elif kind == "study_done":
                self.done.append(study_id)
            elif kind == "study_skipped":
                self.skipped.append(study_id)
            elif kind == "study_failed":
                self.failed.append(FailedStudy(study_id, **{k: event.data[k] for k in (
                    "stage", "error_class", "exit_code", "error", "previous")}))
            _log_event(event)
            if self._callback is not None:
                self._callback(event)


def _log_event(event: BatchEvent) -> None:
    d = event.data
    if event.kind == "study_progress":
        return
    if event.kind == "study_failed":
        log.warning("%s failed%s: %s: %s", event.study_id, " (earlier run)" if d.get("previous") else "",
                    d.get("error_class"), d.get("error"))
    elif event.kind == "study_done":
        log.info("%s done in %.1f s", event.study_id, d.get("seconds", 0.0))
    elif event.kind == "study_skipped":
        log.debug("%s skipped: %s", event.study_id, d.get("reason"))
    elif event.kind == "study_started":
        log.debug("%s started on worker %s", event.study_id, d.get("worker"))
    else:
        log.info("%s %s", event.kind, json.dumps(d, default=str, sort_keys=True))
