"""Reading studies in child processes, so that a crash inside a reader fails one study, not the batch.

A :class:`ReaderPool` keeps ``n`` spawned processes alive for the whole batch (their imports are
paid once). Each reads one study at a time and sends the :class:`~volseg.io.LoadedImage` back
through a pipe. When a process dies while reading (a segfault in a C++ reader, the OOM killer),
that study gets a ``ReaderCrash`` failure naming the signal, and a fresh process takes its place.

The reader is ``"module:function"`` with the signature of :func:`volseg.io.read_image`
(``reader(path, *, series=None) -> LoadedImage``); the default is ``volseg.io:read_image``.
"""
from __future__ import annotations

import importlib
import logging
import multiprocessing as mp
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any, TypeVar

from volseg.batch import failures
from volseg.errors import UsageError, VolsegError

log = logging.getLogger(__name__)

DEFAULT_READER = "volseg.io:read_image"
T = TypeVar("T")


@dataclass(frozen=True)
class Loaded:
    """A study read by a reader process, and how long the read took there."""

    image: Any  # volseg.io.LoadedImage
    seconds: float


def resolve_reader(spec: str | None) -> Callable[..., Any]:
    """The callable named by ``"module:function"`` (the default reader for None)."""
    spec = spec or DEFAULT_READER
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise UsageError(f"invalid reader {spec!r}", hint="use module:function, e.g. volseg.io:read_image")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise UsageError(f"reader {spec!r} cannot be imported ({type(exc).__name__})") from exc


def _child_main(conn, reader_spec: str | None) -> None:  # runs in the reader process
    quiet = logging.getLogger("volseg")  # reader warnings travel in LoadedImage.source.warnings
    quiet.handlers[:] = [logging.NullHandler()]
    quiet.propagate = False
    reader = resolve_reader(reader_spec)
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):  # the batch is gone
            return
        if task is None:
            return
        path, series = task
        try:
            start = time.perf_counter()
            image = reader(path, series=series)
            conn.send(("ok", image, time.perf_counter() - start))
        except VolsegError as exc:
            conn.send(("error", type(exc).__name__, exc.exit_code, exc.message, exc.hint, exc.path))
        except MemoryError:
            conn.send(("error", "OutOfMemory", 7, "out of memory while reading", None, path))
        except Exception as exc:  # noqa: BLE001 - any reader bug is this study's failure
            text = (" ".join(str(exc).split()) or "")[:200]
            conn.send(("error", "ReaderError", failures.INTERNAL_EXIT_CODE, f"{type(exc).__name__}: {text}",
                       None, path))


class _Child:
    def __init__(self, ctx, reader_spec: str | None) -> None:
        self.conn, child_conn = ctx.Pipe(duplex=True)
        self.proc = ctx.Process(target=_child_main, args=(child_conn, reader_spec), daemon=True,
                                name="volseg-reader")
        self.proc.start()
        child_conn.close()
        self.task: Any = None  # the item being read, or None when idle

    def stop(self, timeout: float = 5.0) -> None:
        try:
            self.conn.send(None)
        except (OSError, ValueError):
            pass
        self.proc.join(timeout)
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(timeout)
        self.conn.close()


class ReaderPool:
    """``n`` reader processes; :meth:`imap` yields ``(item, Loaded | Failure)`` as reads finish."""

    def __init__(self, n: int = 1, *, reader: str | None = None, input_root: str | Path | None = None):
        if n < 1:
            raise UsageError(f"need at least one reader process, got {n}")
        resolve_reader(reader)  # fail early, in the parent, on a bad spec
        self._n, self._spec, self._root = n, reader, input_root
        self._ctx = mp.get_context("spawn")
        self._children: list[_Child] = []

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        for child in self._children:
            child.stop()
        self._children.clear()

    def imap(self, items: Iterable[T], where: Callable[[T], tuple[str, str | None]]) -> Iterator[tuple[T, Any]]:
        """Read every item (``where(item) -> (path, series)``), at most ``n`` at a time."""
        pending = deque(items)
        while pending or any(c.task is not None for c in self._children):
            while pending and (idle := self._idle()) is not None:
                item = pending.popleft()
                idle.task = item
                idle.conn.send(where(item))
            yield from self._collect()

    def _idle(self) -> _Child | None:
        for child in self._children:
            if child.task is None:
                return child
        if len(self._children) < self._n:
            self._children.append(_Child(self._ctx, self._spec))
            return self._children[-1]
        return None

    def _collect(self) -> Iterator[tuple[Any, Any]]:
        busy = [c for c in self._children if c.task is not None]
        ready = set(wait([c.conn for c in busy] + [c.proc.sentinel for c in busy]))
        for child in busy:
            if child.conn not in ready and child.proc.sentinel not in ready:
                continue
            item, child.task = child.task, None
            message = self._receive(child)
            outcome: Loaded | failures.Failure
            if message is None:  # the process died while reading this item
                child.proc.join(1.0)
                outcome = failures.crashed("read", child.proc.exitcode)
                log.warning("reader process died (exit code %s); starting another", child.proc.exitcode)
                self._replace(child)
            elif message[0] == "ok":
                outcome = Loaded(message[1], message[2])
            else:
                _, cls, code, text, hint, path = message
                outcome = failures.from_fields("read", cls, code, text, hint, path, self._root)
            yield item, outcome

    def _receive(self, child: _Child):
        try:
            if child.conn.poll():
                return child.conn.recv()
        except (EOFError, OSError):
            pass
        return None

    def _replace(self, child: _Child) -> None:
        child.conn.close()
        self._children[self._children.index(child)] = _Child(self._ctx, self._spec)
