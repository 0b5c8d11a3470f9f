"""``--executor ray``: the same per-study work on a Ray cluster, one actor per GPU keeping models loaded.

Each actor loads the models once, reads studies in its own reader process (a crashing reader fails
one study) and runs two studies at a time in threads: one is read or written while the other is
predicted (prediction itself is serialised by a lock). Without GPUs in the cluster there is one
CPU actor per node. Outputs go straight to ``OUT`` from the actors, so every node must see the
output folder at the same path (a shared file system), as with SLURM.

An actor that dies (a crash inside the model, the OOM killer) is replaced; its studies are tried
once more on the new actor and then recorded as failed.

Ray is optional: ``pip install 'volseg[ray]'``.
"""
from __future__ import annotations

import logging
import threading
from collections import deque

from volseg.batch import failures
from volseg.batch import study as study_work
from volseg.batch.failures import Failure
from volseg.batch.study import Emit, Job, RunContext
from volseg.errors import DependencyError, ModelError, UsageError

log = logging.getLogger(__name__)
_PER_ACTOR = 2  # studies in flight per actor (one predicting, one reading or writing)
_ATTEMPTS = 2  # tries per study when actors die under it


def import_ray():
    try:
        import ray
    except ImportError as exc:
        raise DependencyError("--executor ray needs Ray, which is not installed",
                              hint="pip install 'volseg[ray]'") from exc
    return ray


class StudyActor:
    """Runs in a Ray worker process: models loaded once, a reader process, two studies in flight."""

    def __init__(self, ctx: RunContext, device: str, reader: str | None) -> None:
        from volseg.batch.reader import ReaderPool

        self.ctx, self.device = ctx, device
        self.models = study_work.load_models(ctx, device)
        self.pool = ReaderPool(1, reader=reader, input_root=ctx.input_root)
        self.read_lock = threading.Lock()
        self.predict_lock = threading.Lock()

    def ready(self) -> bool:
        return True

    def process(self, job: Job) -> list[tuple[str, str | None, dict]]:
        """Read, segment, write and record one study; returns the events it produced."""
        events: list[tuple[str, str | None, dict]] = []

        def emit(kind: str, study_id: str | None, data: dict) -> None:
            if kind != "study_progress":
                events.append((kind, study_id, data))

        with self.read_lock:
            _, outcome = next(self.pool.imap([job], where=lambda j: (j.study.path, j.study.series)))
        if isinstance(outcome, Failure):
            study_work.fail(self.ctx, job, outcome, emit)
            return events
        deferred: list = []
        with self.predict_lock:
            study_work.process_loaded(self.ctx, job, outcome, self.models, device=self.device, emit=emit,
                                      write=deferred.append)
        for task in deferred:
            task()
        return events


def run_ray(jobs: list[Job], ctx: RunContext, emit: Emit, *, address: str | None = None,
            reader: str | None = None) -> None:
    ray = import_ray()
    started_here = not ray.is_initialized()
    if started_here:
        connect(ray, address)
    actors: list = []
    try:
        make = _actor_factory(ray, ctx, reader)
        actors = [make() for _ in range(_actor_count(ray))]
        _dispatch(ray, jobs, ctx, emit, actors, make)
    finally:
        for actor in actors:
            ray.kill(actor)
        if started_here:
            ray.shutdown()


def connect(ray, address: str | None) -> None:
    """``ray.init``; a cluster that cannot be reached is one :class:`UsageError` line, at once.

    Ray itself waits minutes for an unreachable head node and then raises with a long traceback,
    so an explicit ``host:port`` (also ``ray://``, or what ``auto`` finds) is probed first.
    """
    preflight(address, ray=ray)
    try:
        ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
    except ConnectionError as exc:
        raise UsageError(f"--address {address}: no Ray cluster reachable ({_first_line(exc)})",
                         hint=NO_CLUSTER_HINT) from None


def preflight(address: str | None, *, ray=None) -> None:
    """Before anything is written: Ray is installed and the named cluster answers (one-line errors)."""
    ray = ray or import_ray()
    target = _bootstrap_address(ray, address)
    if target is not None:
        _probe(target, given=address)


NO_CLUSTER_HINT = ("start one with `ray start --head` (then --address auto), give the head node's host:port, "
                   "or leave out --address to run Ray on this machine")


def _bootstrap_address(ray, address: str | None) -> str | None:
    """The host:port a connection will go to, when one is named or found; None for a local Ray."""
    if address in (None, "", "local"):
        return None
    if address.startswith("ray://"):
        return address[len("ray://"):]
    if address == "auto":
        try:
            from ray._private.services import canonicalize_bootstrap_address

            return canonicalize_bootstrap_address(address)
        except ConnectionError as exc:
            raise UsageError(f"--address auto: no Ray cluster found ({_first_line(exc)})",
                             hint=NO_CLUSTER_HINT) from None
        except Exception:  # noqa: BLE001 - a private helper of Ray's: let ray.init decide
            return None
    return address


def _probe(target: str, *, given: str | None, timeout_s: float = 5.0) -> None:
    import socket

    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        raise UsageError(f"--address {given}: expected host:port (e.g. 10.0.0.1:6379), auto, or ray://host:port")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise UsageError(f"--address {given}: no Ray cluster reachable at {target} "
                         f"({exc.strerror or type(exc).__name__})", hint=NO_CLUSTER_HINT) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:160]


def _actor_count(ray) -> int:
    gpus = int(ray.cluster_resources().get("GPU", 0))
    return gpus or max(1, sum(1 for node in ray.nodes() if node.get("Alive")))


def _actor_factory(ray, ctx: RunContext, reader: str | None):
    remote = ray.remote(StudyActor)
    gpus = int(ray.cluster_resources().get("GPU", 0))

    def make():
        options = {"num_gpus": 1} if gpus else {"num_cpus": 1}
        actor = remote.options(max_concurrency=_PER_ACTOR, **options).remote(
            ctx, "cuda:0" if gpus else "auto", reader)
        ray.get(actor.ready.remote())  # a model that cannot load fails the batch here
        return actor

    return make


def _dispatch(ray, jobs: list[Job], ctx: RunContext, emit: Emit, actors: list, make) -> None:
    pending = deque((job, 1) for job in jobs)
    in_flight: dict = {}  # object ref → (actor index, job, attempt)
    load = [0] * len(actors)
    while pending or in_flight:
        for i in range(len(actors)):
            while pending and load[i] < _PER_ACTOR:
                job, attempt = pending.popleft()
                in_flight[actors[i].process.remote(job)] = (i, job, attempt)
                load[i] += 1
                emit("study_started", job.study.study_id, {"worker": i, "attempt": attempt})
        done, _ = ray.wait(list(in_flight), num_returns=1)
        ref = done[0]
        i, job, attempt = in_flight.pop(ref)
        load[i] -= 1
        try:
            for kind, study_id, data in ray.get(ref):
                emit(kind, study_id, data)
        except ray.exceptions.RayActorError:
            log.warning("Ray worker %d died while on %s (attempt %d)", i, job.study.study_id, attempt)
            if attempt < _ATTEMPTS:
                pending.appendleft((job, attempt + 1))
            else:
                study_work.fail(ctx, job, failures.crashed("segment", None, "Ray worker", error_class="WorkerCrash",
                                                           exit_code=ModelError.exit_code), emit)
            if _dead(ray, actors[i]):
                actors[i] = make()
        except ray.exceptions.RayTaskError as exc:  # a bug outside the per-study guards
            study_work.fail(ctx, job, failures.from_exception(exc, "segment"), emit)


def _dead(ray, actor) -> bool:
    try:
        ray.get(actor.ready.remote(), timeout=30)
        return False
    except Exception:  # noqa: BLE001 - any failure to answer means replace it
        return True
