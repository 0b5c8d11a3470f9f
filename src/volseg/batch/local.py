"""The local pipeline: reader processes ahead, one model worker per device, writers behind.

::

    reader processes ──(prefetch queue)──▶ worker per GPU (models loaded once) ──▶ writer threads
    read + decode in                        predict every model                    measure, write,
    spawned children                                                               finalise, record

Reading happens in child processes (:mod:`volseg.batch.reader`), so a crashing reader fails one
study. While a worker predicts, the next studies are being read and the previous ones written.
Memory stays bounded: ``prefetch`` studies wait per worker and at most two writes per worker are
pending.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from volseg.batch import study as study_work
from volseg.batch.failures import Failure
from volseg.batch.reader import ReaderPool
from volseg.batch.study import Emit, Job, RunContext

log = logging.getLogger(__name__)
_POLL_S = 0.1


def run_local(jobs: list[Job], ctx: RunContext, emit: Emit, *, devices: list[str], reader: str | None = None,
              prefetch: int = 2) -> None:
    """Run ``jobs`` through the pipeline; returns when every study is done or failed.

    A model that cannot be loaded stops the batch (raised here); a study that fails does not.
    """
    n = len(devices)
    loaded: queue.Queue = queue.Queue(maxsize=prefetch * n)
    stop = threading.Event()
    errors: list[BaseException] = []
    slots = threading.BoundedSemaphore(2 * n)
    pool = ReaderPool(n, reader=reader, input_root=ctx.input_root)
    writers = ThreadPoolExecutor(max_workers=n, thread_name_prefix="volseg-write")

    def write(task: Callable[[], None]) -> None:
        slots.acquire()
        writers.submit(task).add_done_callback(lambda _: slots.release())

    def feed() -> None:
        try:
            for item in pool.imap(jobs, where=lambda job: (job.study.path, job.study.series)):
                if not _put(loaded, item, stop):
                    return
            for _ in range(n):
                _put(loaded, None, stop)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            errors.append(exc)
            stop.set()

    def work(index: int, device: str) -> None:
        try:
            _work(index, device, ctx, loaded, stop, emit, write)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
            stop.set()

    threads = [threading.Thread(target=feed, name="volseg-feed", daemon=True)]
    threads += [threading.Thread(target=work, args=(i, d), name=f"volseg-worker-{i}", daemon=True)
                for i, d in enumerate(devices)]
    try:
        for t in threads:
            t.start()
        for t in threads[1:]:
            _join(t)
        stop.set()
        _join(threads[0])
        writers.shutdown(wait=True)
    finally:
        stop.set()
        writers.shutdown(wait=True, cancel_futures=True)
        pool.close()
    if errors:
        raise errors[0]


def _work(index: int, device: str, ctx: RunContext, loaded: queue.Queue, stop: threading.Event,
          emit: Emit, write) -> None:
    start = time.perf_counter()
    models = study_work.load_models(ctx, device)
    emit("model_loaded", None, {"worker": index, "device": device, "models": list(models),
                                "seconds": round(time.perf_counter() - start, 3)})
    while not stop.is_set():
        item = _get(loaded, stop)
        if item is None:
            return
        job, outcome = item
        emit("study_started", job.study.study_id, {"worker": index})
        if isinstance(outcome, Failure):
            study_work.fail(ctx, job, outcome, emit)
            continue
        study_work.process_loaded(ctx, job, outcome, models, device=device, emit=emit, write=write)


def _put(q: queue.Queue, item, stop: threading.Event) -> bool:
    while not stop.is_set():
        try:
            q.put(item, timeout=_POLL_S)
            return True
        except queue.Full:
            continue
    return False


def _get(q: queue.Queue, stop: threading.Event):
    while not stop.is_set():
        try:
            return q.get(timeout=_POLL_S)
        except queue.Empty:
            continue
    return None


def _join(thread: threading.Thread) -> None:
    while thread.is_alive():  # a timed join keeps Ctrl-C responsive in the main thread
        thread.join(timeout=0.5)
