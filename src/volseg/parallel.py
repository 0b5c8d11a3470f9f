"""Independent, CPU-bound steps after the network (lesion measurements, pictures) on several cores.

After the network every step is single-threaded numpy/scipy/matplotlib work, so on a machine with
more than one core the rest wait. :func:`map_forked` computes ``[fn(x) for x in items]`` with the
items shared round-robin between this process and forked copies of it (``fork`` only, on Linux:
the label map and the image are shared, not copied or pickled; only the results travel back). The
results, their order and any exception are those of the plain loop: a share whose child fails is
computed again here, so the real exception is raised in this process.

Workers: the cores this process may use (``sched_getaffinity``: SLURM's and taskset's limits), at
most :data:`MAX_WORKERS`; ``VOLSEG_WORKERS=N`` sets it (``1``: never fork). Nothing is forked where
forking is unsafe or refused (not Linux, a daemonic process, a child of this function) — the plain
loop runs instead. The work given must not use torch (its thread pools do not survive a fork).

:func:`start_forked` is the same for one call run beside this process's own next steps: ``fn()``
starts in a forked child and :meth:`Pending.result` gives its value (computed here where no child
could be used or the child failed, so the real exception is raised here). While that child works it
takes one of the workers: :func:`map_forked` forks one fewer, so no more processes run than cores
(and no more copies of this process's pages are counted in the memory of the process tree).
"""
from __future__ import annotations

import logging
import os
import signal
import sys
import weakref
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

MAX_WORKERS = 4
WORKERS_ENV = "VOLSEG_WORKERS"
_IN_CHILD = False
_BESIDE: weakref.WeakSet[Pending] = weakref.WeakSet()  # start_forked's, each takes a worker while it works


def worker_count() -> int:
    """How many processes :func:`map_forked` uses (1: none forked)."""
    given = os.environ.get(WORKERS_ENV, "").strip()
    if given:
        try:
            return max(1, int(given))
        except ValueError:
            log.warning("%s=%r is not a whole number: using the available cores", WORKERS_ENV, given)
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_WORKERS))


def map_forked(fn: Callable[[T], R], items: Iterable[T], *, workers: int | None = None) -> list[R]:
    """``[fn(x) for x in items]``, the items shared between this process and ``workers - 1`` forks."""
    items = list(items)
    n = min(_free_workers() if workers is None else max(1, workers), len(items))
    if n < 2 or not _can_fork():
        return [fn(x) for x in items]
    release_free_memory()
    children = [_start(fn, items[k::n]) for k in range(1, n)]
    try:
        shares: list[list[R]] = [[fn(x) for x in items[0::n]]]
    except BaseException:
        for child in children:
            _stop(child)
        raise
    for k, child in enumerate(children, start=1):
        got = _collect(child)
        shares.append(got if got is not None else [fn(x) for x in items[k::n]])
    out: list[Any] = [None] * len(items)
    for k, share in enumerate(shares):
        out[k::n] = share
    return out


class Pending(Generic[R]):
    """``fn()`` computing in a forked child (or, with no child, here when asked for)."""

    def __init__(self, fn: Callable[[], R], child) -> None:
        self._fn, self._child = fn, child
        self._done = False
        self._value: R | None = None
        self._got: list | None = None  # the child's answer, once read (None: none, or it failed)

    def result(self) -> R:
        """``fn()``: the child's answer, or computed here where there is no child or it failed."""
        if not self._done:
            self._read()
            self._value = self._got[0] if self._got is not None else self._fn()
            self._done = True
        return self._value  # type: ignore[return-value]

    def _read(self) -> None:
        """Read the child's answer and reap it (it is gone afterwards)."""
        if self._child is not None:
            self._got = _collect(self._child)
            self._forget_child()

    def cancel(self) -> None:
        """Stop the child (its answer is not wanted); a later :meth:`result` computes it here."""
        _stop(self._child)
        self._forget_child()

    def _forget_child(self) -> None:
        self._child = None
        _BESIDE.discard(self)

    def working(self) -> bool:
        """True while the child computes; a child whose answer is waiting is read and reaped here,
        so that it no longer holds a worker nor its copy of this process's pages."""
        if self._child is None:
            return False
        process, receive = self._child
        try:
            finished = receive.poll() or not process.is_alive()
        except (OSError, ValueError):
            finished = True
        if finished:
            self._read()
        return not finished

    def __enter__(self) -> Pending[R]:
        return self

    def __exit__(self, *exc_info) -> None:
        self.cancel()  # left early (an exception): no child outlives its caller


def start_forked(fn: Callable[[], R], *, fork: bool = True) -> Pending[R]:
    """Start ``fn()`` in a forked child beside this process's next steps (no child with one worker,
    or ``fork=False``: then computed here when asked for); use as a context manager so that the
    child is stopped if the caller fails before its result."""
    child = None
    if fork and _free_workers() > 1 and _can_fork():
        release_free_memory()
        child = _start(_call, [fn])
    pending = Pending(fn, child)
    if child is not None:
        _BESIDE.add(pending)
    return pending


def _free_workers() -> int:
    """The workers not taken by working children of :func:`start_forked` (this process is one)."""
    return max(1, worker_count() - sum(1 for p in list(_BESIDE) if p.working()))


def release_free_memory() -> None:
    """Give the C heap's free pages back to the system (glibc ``malloc_trim``) before forking: a
    child's RSS starts as its parent's, so memory freed but kept by the allocator (the network's
    buffers) would be counted again in every child. Nothing happens where glibc is absent."""
    import ctypes

    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _call(fn: Callable[[], R]) -> R:
    return fn()


def _can_fork() -> bool:
    import multiprocessing

    return sys.platform == "linux" and not _IN_CHILD and not multiprocessing.current_process().daemon


def _start(fn: Callable[[T], R], share: Sequence[T]):
    """A forked child computing ``share``; None where it could not be started."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    receive, send = ctx.Pipe(duplex=False)
    process = ctx.Process(target=_child, args=(fn, share, send), daemon=True, name="volseg-worker")
    try:
        process.start()
    except (OSError, AssertionError, ValueError) as exc:
        log.debug("could not fork a worker (%s): computing its share here", exc)
        receive.close()
        send.close()
        return None
    send.close()
    return process, receive


def _child(fn: Callable[[T], R], share: Sequence[T], send) -> None:
    global _IN_CHILD
    _IN_CHILD = True
    signal.signal(signal.SIGTERM, _exit_on_term)  # stopped: unwind, so temp files are removed
    try:
        result: tuple[str, Any] = ("ok", [fn(x) for x in share])
    except BaseException as exc:  # the parent recomputes the share and raises it there
        result = ("failed", f"{type(exc).__name__}: {exc}")
    try:
        send.send(result)
    finally:
        send.close()


def _exit_on_term(signum, frame) -> None:
    raise SystemExit(128 + signum)


def _stop(child) -> None:
    if child is not None:
        process, receive = child
        process.terminate()
        process.join()
        receive.close()


def _collect(child) -> list | None:
    """The child's results; None (and the child reaped) where it failed or died."""
    if child is None:
        return None
    process, receive = child
    try:
        status, value = receive.recv()
    except (EOFError, OSError) as exc:
        status, value = "failed", f"the worker ended without an answer ({exc or type(exc).__name__})"
    finally:
        receive.close()
        process.join()
    if status != "ok":
        log.debug("a worker failed (%s): computing its share here", value)
        return None
    return value
