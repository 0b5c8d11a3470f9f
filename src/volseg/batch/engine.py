"""``run_batch``: discover, shard, plan (skip / redo / retry), run on an executor, summarise, collect."""
from __future__ import annotations

import logging
import time
from pathlib import Path

from volseg.batch import layout, records
from volseg.batch.discover import SkippedInput, Study, discover
from volseg.batch.events import BatchSummary, EventCallback, Tally
from volseg.batch.lock import output_lock
from volseg.batch.logfile import log_path, run_log
from volseg.batch.models import model_source
from volseg.batch.options import BatchOptions, worker_devices
from volseg.batch.shard import Shard, resolve_shard
from volseg.batch.study import Job, RunContext, run_key
from volseg.errors import InputError, VolsegError

log = logging.getLogger(__name__)


def run_batch(input_dir: str | Path, out_dir: str | Path, *, options: BatchOptions = BatchOptions(),
              on_event: EventCallback | None = None) -> BatchSummary:
    """Segment every study under ``input_dir`` (this shard's share) into ``out_dir``.

    Resumable: studies whose completion record verifies are skipped; partial ones are redone.
    Fault-isolated: a study that fails is recorded in ``<study>/.volseg-failed.json`` and the batch
    goes on; ``summary.exit_code`` is non-zero when any study failed.
    """
    from volseg.io.atomic import ensure_writable_dir
    from volseg.segmenters.registry import default_model

    start = time.perf_counter()
    if options.executor == "ray":
        from volseg.batch.ray_executor import preflight

        preflight(options.address)
    input_root = Path(input_dir).resolve()
    out = ensure_writable_dir(out_dir).resolve()
    models = options.models or (default_model(),)
    key = run_key(models, options.output_options())
    shard = resolve_shard(options.shard)
    tally = Tally(on_event)
    ctx = RunContext(input_root=str(input_root), out_dir=str(out), key=key,
                     sources=tuple(model_source(m) for m in models), segment=options.segment,
                     anonymize=options.renames_ids)
    with output_lock(out, shard, wait=options.wait,
                     on_wait=lambda who: tally.emit("waiting_for_lock", None, {"holder": who})):
        return _run_locked(ctx, shard, options, tally, start)


def _run_locked(ctx: RunContext, shard: Shard, options: BatchOptions, tally: Tally, start: float) -> BatchSummary:
    out, key = Path(ctx.out_dir), ctx.key
    found, skipped_inputs = _discover(Path(ctx.input_root), out, options)
    selected = shard.select(found)
    layout.clean_work(out, [s.study_id for s in selected])
    with run_log(log_path(out, shard) if options.log_file else None) as log_file:
        try:
            return _run_logged(found, selected, skipped_inputs, out, key, shard, ctx, options, tally, start,
                               log_file)
        except Exception as exc:  # an unexpected error (a bug): its traceback goes to the run's log
            if not isinstance(exc, VolsegError):
                # the events' logger: into the run's log file, kept off the CLI's console
                logging.getLogger("volseg.batch.run").error("internal error", exc_info=True)
                exc.volseg_log_file = log_file  # type: ignore[attr-defined]  # read by the CLI
            raise
        finally:
            layout.clean_work(out, [s.study_id for s in selected])


def _discover(input_root: Path, out: Path, options: BatchOptions) -> tuple[list[Study], tuple[SkippedInput, ...]]:
    found = discover(input_root, exclude=out)
    if not found.studies:
        raise InputError("no studies found", path=input_root,
                         hint="volseg batch looks for .nii/.nii.gz/.nrrd/.mha/.mhd files and DICOM series")
    studies = list(found.studies)
    if options.renames_ids:
        from volseg.batch.ids import apply_ids

        studies = apply_ids(studies, out, id_map=options.id_map)
    return studies, found.skipped


def _run_logged(found, selected, skipped_inputs, out, key, shard, ctx, options, tally, start,
                log_file) -> BatchSummary:
    for item in skipped_inputs:  # paths only when ids are not anonymized: paths may name patients
        log.warning("input skipped: %s%s", "" if ctx.anonymize else f"{item.rel_path}: ", item.reason)
    jobs, skips, previous = _plan(selected, out, key, retry_failed=options.retry_failed,
                                  anonymize=ctx.anonymize)
    devices = worker_devices(options.gpus) if options.executor == "local" and jobs else []
    tally.emit("batch_started", None, {
        "found": len(found), "selected": len(selected), "to_run": len(jobs), "skip": len(skips),
        "failed_before": len(previous), "skipped_inputs": len(skipped_inputs), "shard": str(shard),
        "models": list(ctx.model_names), "executor": options.executor, "workers": devices,
        "log_file": str(log_file) if log_file else None,
    })
    for study_id, reason in skips:
        tally.emit("study_skipped", study_id, {"reason": reason})
    for study_id, data in previous:
        tally.emit("study_failed", study_id, data)
    _execute(jobs, ctx, options, devices, tally)
    layout.remove_work_root_if_empty(out)
    cohort = _collect(out, options, shard)
    if cohort:
        tally.emit("collected", None, {"outputs": {k: str(v) for k, v in cohort.items()}})
    summary = BatchSummary(
        out_dir=out, shard=str(shard), done=tuple(tally.done), skipped=tuple(tally.skipped),
        failed=tuple(tally.failed), log_file=log_file, cohort=cohort, skipped_inputs=len(skipped_inputs),
        seconds=time.perf_counter() - start,
    )
    tally.emit("batch_finished", None, {
        "done": len(summary.done), "skipped": len(summary.skipped), "failed": len(summary.failed),
        "skipped_inputs": summary.skipped_inputs, "seconds": round(summary.seconds, 3),
        "exit_code": summary.exit_code,
    })
    return summary


def _plan(studies: list[Study], out: Path, key, *, retry_failed: bool, anonymize: bool = False):
    """(jobs to run, [(id, skip reason)], [(id, failure data)] recorded earlier and not retried)."""
    jobs: list[Job] = []
    skips: list[tuple[str, str]] = []
    previous: list[tuple[str, dict]] = []
    for study in studies:
        fingerprint = records.input_fingerprint(study)
        if anonymize:  # the completion record keeps no input path (it may name a patient)
            fingerprint = {**fingerprint, "rel_path": None}
        state = records.study_state(layout.study_dir(out, study.study_id), key, fingerprint)
        if retry_failed:
            if state.status in ("failed", "failed_stale"):
                jobs.append(Job(study, fingerprint))
            else:
                skips.append((study.study_id, f"not a failed study ({state.status})"))
        elif state.status == "done":
            skips.append((study.study_id, "done (completion record verified)"))
        elif state.status == "failed":
            previous.append((study.study_id, _previous_failure(out, study.study_id)))
        else:
            if state.reason:
                log.info("%s: redoing: %s", study.study_id, state.reason)
            jobs.append(Job(study, fingerprint))
    return jobs, skips, previous


def _previous_failure(out: Path, study_id: str) -> dict:
    record = records.read_record(layout.study_dir(out, study_id) / records.FAILED) or {}
    return {"stage": record.get("stage", "?"), "error_class": record.get("error_class", "?"),
            "exit_code": int(record.get("exit_code", 1)), "error": record.get("error", ""),
            "previous": True}


def _execute(jobs: list[Job], ctx: RunContext, options: BatchOptions, devices: list[str], tally: Tally) -> None:
    if not jobs:
        return
    if options.executor == "ray":
        from volseg.batch.ray_executor import run_ray

        run_ray(jobs, ctx, tally.emit, address=options.address, reader=options.reader)
        return
    from volseg.batch.local import run_local

    run_local(jobs, ctx, tally.emit, devices=devices, reader=options.reader, prefetch=options.prefetch)


def _collect(out: Path, options: BatchOptions, shard: Shard) -> dict[str, Path]:
    """The cohort tables (``volseg collect``), unless this is one shard of several."""
    wanted = options.collect if options.collect is not None else shard.count == 1
    if not wanted:
        return {}
    if len(options.models) > 1:  # collect keeps one report per study and input: it would drop models
        log.warning("cohort tables not written: they hold one model per study; run `volseg collect` "
                    "on a single model's outputs")
        return {}
    from volseg.reports.cohort import collect

    try:
        result = collect(out, html=options.segment.html)
    except Exception as exc:  # noqa: BLE001 - the studies are done; the tables can be made later
        log.warning("cohort tables not written (%s: %s); run `volseg collect %s`", type(exc).__name__,
                    " ".join(str(exc).split())[:200], out)
        return {}
    return dict(result.outputs)
