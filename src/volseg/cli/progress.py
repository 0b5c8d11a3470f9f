"""Rendering the library's ``progress(stage, done, total)`` calls on stderr.

* On a terminal: one Rich display, a row per stage (spinner, bar, done/total, elapsed, remaining);
  Rich refreshes it on its own, so it never looks frozen while a stage has no count to report.
* Not on a terminal (log file, pipe, nohup, SLURM): :class:`LineProgress`, one plain line per
  stage start and end and at most every ``interval_s`` in between (30 s), with elapsed and
  remaining time; a heartbeat thread repeats the current line when a stage reports nothing.
* ``--json-log``: :class:`JsonProgress`, batch's event shape (``study_started``,
  ``study_progress``, ``study_done``, ``study_failed``), one JSON object per line.

Remaining time is estimated here, from done/total and the time since the stage began.
"""
from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

#: at most one plain progress line this often (seconds) while a stage goes on; the environment
#: variable VOLSEG_PROGRESS_INTERVAL (seconds) changes it, e.g. for a SLURM log
LINE_INTERVAL_S = 30.0
#: JSON progress events at most this often per study (as ``volseg batch``), plus every 0 and done
JSON_INTERVAL_S = 0.2


def format_seconds(seconds: float) -> str:
    """'42 s', '3 min 05 s', '1 h 02 min'."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def remaining_s(done: int, total: int, elapsed: float) -> float | None:
    """Seconds left at the rate so far; None while nothing is done or the total is unknown."""
    if total <= 0 or done <= 0:
        return None
    return max(0.0, elapsed * (total - done) / done)


@dataclass
class _Stage:
    name: str
    started: float
    done: int = 0
    total: int = 0


class LineProgress:
    """Plain progress lines for a stream that is not a terminal; ``clock`` and ``write`` injectable.

    A line is written when a stage begins, when its first unit of a count completes (the first
    estimate of the time remaining), when it completes, and otherwise at most every ``interval_s``; :meth:`tick` (called by a heartbeat) writes the current state when nothing was
    written for ``interval_s``.
    """

    def __init__(self, write: Callable[[str], None], *, clock: Callable[[], float] = time.monotonic,
                 interval_s: float = LINE_INTERVAL_S, wall: Callable[[], str] | None = None) -> None:
        self._write, self._clock, self.interval_s = write, clock, float(interval_s)
        self._wall = wall or (lambda: time.strftime("%H:%M:%S"))
        self._stage: _Stage | None = None
        self._last_line = float("-inf")
        self._lock = threading.Lock()

    def __call__(self, stage: str, done: int, total: int) -> None:
        with self._lock:
            now = self._clock()
            current = self._stage
            if current is None or current.name != stage or (done < current.done and done == 0):
                self._stage = _Stage(stage, now, done, total)
                self._emit(now, self._stage)
                return
            finished = done >= total > 0 and current.done < current.total
            first_estimate = current.done == 0 < done < total
            current.done, current.total = done, total
            if finished or first_estimate or now - self._last_line >= self.interval_s:
                self._emit(now, current)

    def tick(self) -> None:
        """Repeat the current state if no line was written for ``interval_s``."""
        with self._lock:
            now = self._clock()
            if self._stage is not None and now - self._last_line >= self.interval_s:
                self._emit(now, self._stage)

    def _emit(self, now: float, stage: _Stage) -> None:
        self._last_line = now
        self._write(self.line(now, stage))

    def line(self, now: float, s: _Stage) -> str:
        elapsed = now - s.started
        count = f"{s.done}/{s.total}" if s.total > 0 else str(s.done)
        if s.total > 0 and s.done >= s.total:
            tail = "done"
        else:
            left = remaining_s(s.done, s.total, elapsed)
            tail = "remaining " + ("unknown" if left is None else "~" + format_seconds(left))
        return f"[{self._wall()}] progress: {s.name} {count}, elapsed {format_seconds(elapsed)}, {tail}"


class JsonProgress:
    """``--json-log``: progress as batch's JSON events, one line each on stderr (``write``)."""

    def __init__(self, write: Callable[[str], None], *, clock: Callable[[], float] = time.monotonic,
                 interval_s: float = JSON_INTERVAL_S) -> None:
        self._write, self._clock, self.interval_s = write, clock, float(interval_s)
        self.study_id: str | None = None
        self._last = float("-inf")

    def event(self, kind: str, study_id: str | None, data: dict | None = None) -> None:
        from volseg.batch.events import BatchEvent

        self._write(BatchEvent(kind, study_id, dict(data or {})).to_json())

    def start(self, study_id: str) -> None:
        self.study_id = study_id
        self._last = float("-inf")
        self.event("study_started", study_id, {"worker": 0})

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = self._clock()
        if done in (0, total) or now - self._last >= self.interval_s:
            self._last = now
            self.event("study_progress", self.study_id, {"stage": stage, "done": done, "total": total})


class Heartbeat:
    """Calls ``tick`` every ``every_s`` seconds on a daemon thread until stopped."""

    def __init__(self, tick: Callable[[], None], every_s: float) -> None:
        self._tick, self._every = tick, every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="volseg-progress", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            self._tick()

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=1.0)


def line_interval_s() -> float:
    """:data:`LINE_INTERVAL_S`, or $VOLSEG_PROGRESS_INTERVAL when it holds a positive number."""
    import os

    from volseg.errors import UsageError

    given = os.environ.get("VOLSEG_PROGRESS_INTERVAL", "").strip()
    if not given:
        return LINE_INTERVAL_S
    try:
        value = float(given)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise UsageError(f"VOLSEG_PROGRESS_INTERVAL must be a positive number of seconds, got {given!r}")
    return value


def write_err(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


@contextmanager
def progress_view(err, *, enabled: bool = True, interval_s: float | None = None
                  ) -> Iterator[Callable[[str, int, int], None]]:
    """The progress callback for the stderr console ``err``: Rich display, plain lines, or nothing."""
    interval_s = line_interval_s() if interval_s is None else interval_s
    if not enabled:
        yield lambda stage, done, total: None
    elif err.is_terminal:
        with rich_progress(err) as update:
            yield update
    else:
        lines = LineProgress(write_err, interval_s=interval_s)
        with Heartbeat(lines.tick, min(5.0, interval_s)):
            yield lines


@contextmanager
def rich_progress(console) -> Iterator[Callable[[str, int, int], None]]:
    """One Rich display for every stage: a row per stage, the previous one completed on change."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TaskID,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    tasks: dict[str, TaskID] = {}
    last: list[str] = []
    with Progress(SpinnerColumn(finished_text="✓"), TextColumn("{task.description}"), BarColumn(),
                  MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(), console=console,
                  transient=True) as bar:

        def update(stage: str, done: int, total: int) -> None:
            if not last or last[-1] != stage:
                if last:
                    previous = next(t for t in bar.tasks if t.id == tasks[last[-1]])
                    bar.update(previous.id, completed=previous.total or previous.completed)
                    bar.stop_task(previous.id)
                if stage in tasks:
                    bar.reset(tasks[stage], total=total or None)
                else:
                    tasks[stage] = bar.add_task(stage, total=total or None)
                last.append(stage)
            bar.update(tasks[stage], completed=done, total=total or None)

        yield update


class JsonStudies:
    """``volseg segment --json-log``: batch's study events around :func:`volseg.api.segment_many`.

    ``progress`` is the callback to give the API; :meth:`on_done` receives each outcome and starts
    the next study's events.
    """

    def __init__(self, study_ids: list[str], write: Callable[[str], None] = write_err, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.progress = JsonProgress(write, clock=clock)
        self._ids, self._clock, self._next, self._started = list(study_ids), clock, 0, 0.0

    def start_next(self) -> None:
        if self._next < len(self._ids):
            self._started = self._clock()
            self.progress.start(self._ids[self._next])
            self._next += 1

    def on_done(self, outcome) -> None:
        seconds = round(self._clock() - self._started, 3)
        error = getattr(outcome, "error", None)
        if error is None:
            self.progress.event("study_done", outcome.study_id, {
                "seconds": seconds, "outputs": sorted(p.name for p in outcome.outputs.values())})
        else:
            self.progress.event("study_failed", outcome.study_id, {
                "stage": "segment", "error_class": type(error).__name__, "exit_code": error.exit_code,
                "error": error.one_line(), "previous": False})
        self.start_next()
