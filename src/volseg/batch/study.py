"""One study's work once it is read: run every model, measure, write, finalise; or record a failure.

Shared by the local pipeline and the Ray actors. Outputs are those of ``volseg segment``, written by
the same study pipeline (:mod:`volseg.pipeline`); with several models each model's files go to
``<study>/<model>/``.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from volseg.batch import failures, layout, records
from volseg.batch.discover import Study
from volseg.batch.failures import Failure
from volseg.batch.records import RunKey
from volseg.options import SegmentOptions
from volseg.pipeline import model as pipeline_model
from volseg.pipeline import write as pipeline_write
from volseg.segmenters.base import ProgressCallback, Segmenter, no_progress

log = logging.getLogger(__name__)

Emit = Callable[[str, "str | None", dict], None]  # emit(kind, study_id, data)
_PROGRESS_INTERVAL_S = 0.2


@dataclass(frozen=True)
class Job:
    """A study to run, with the input fingerprint taken when the batch was planned."""

    study: Study
    fingerprint: dict


@dataclass(frozen=True)
class RunContext:
    """What every worker needs to know about the batch (plain data: it travels to Ray actors)."""

    input_root: str
    out_dir: str
    key: RunKey
    sources: tuple[str, ...] = ()  # what to load per model (catalogue name or absolute path); () = names
    # the studies' output options, engine overrides, --trust-bundle, --force (BatchOptions.segment)
    segment: SegmentOptions = field(default_factory=SegmentOptions)
    anonymize: bool = False  # study ids replace input paths in every message (--anonymize-ids / --id-map)

    @property
    def model_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.key.models)

    @property
    def model_sources(self) -> dict[str, str]:
        """Model name (records, events, sub-folders) → what to load."""
        return dict(zip(self.model_names, self.sources or self.model_names))

    def segment_options(self, model: str, device: str) -> SegmentOptions:
        """The options ``volseg segment`` would run this model with on ``device``."""
        from dataclasses import replace

        return replace(self.segment, model=self.model_sources.get(model, model), device=device)


def run_key(models: Sequence[str], options: dict[str, Any] | None = None) -> RunKey:
    """Models (name, version) in run order and the output options; unknown models and paths that
    are no model fail here (see :func:`volseg.batch.models.resolve_model` for a path's key)."""
    from volseg.batch.models import resolve_models

    return RunKey(models=tuple(spec.key for spec in resolve_models(models)),
                  options=tuple(sorted((options or {}).items())))


def load_models(ctx: RunContext, device: str) -> dict[str, Segmenter]:
    """Every model of the run, loaded once on ``device`` with the run's engine settings."""
    loaded = {}
    for name, source in ctx.model_sources.items():
        options = ctx.segment_options(name, device)
        loaded[name] = pipeline_model.load_model(source, device=device, trust=options.trust_bundle,
                                                 engine=options.engine)
    return loaded


def segment(ctx: RunContext, models: dict[str, Segmenter], image, *, device: str,
            progress) -> tuple[dict[str, tuple[Any, list[str]]], float]:
    """Every model's (label map, report warnings) for ``image`` (exceptions propagate), and the time."""
    start = time.perf_counter()
    results = {}
    for name, seg in models.items():
        # a study the model was not made for fails alone, before predicting (unless --force)
        pipeline_model.check_fits(image, seg, force=ctx.segment.force)
        warnings = pipeline_write.check_outputs(image, seg, options=ctx.segment_options(name, device))
        labels = seg.predict(image.volume, modality=image.source.modality, progress=progress)
        results[name] = (labels, warnings)
    return results, time.perf_counter() - start


def write_and_finalize(ctx: RunContext, job: Job, models: dict[str, Segmenter], image, results: dict,
                       *, device: str, timings: dict[str, float], progress: ProgressCallback = no_progress) -> dict:
    """Measure and write every model's outputs in a work folder, move it into place, record it done."""
    start = time.perf_counter()
    out = Path(ctx.out_dir)
    work = layout.new_work_dir(out, job.study.study_id)
    try:
        for name, (label_map, warnings) in results.items():
            target = work / name if len(results) > 1 else work
            pipeline_write.write_outputs(image, label_map, target, study_id=job.study.study_id,
                                         segmenter=models[name], options=ctx.segment_options(name, device),
                                         timings=timings, warnings=warnings, input=job.study.path,
                                         progress=progress)
        outputs = records.hash_outputs(work)
        final = layout.finalize(work, layout.study_dir(out, job.study.study_id))
    except BaseException:
        layout.remove_work(work)
        raise
    seconds = sum(timings.values()) + (time.perf_counter() - start)
    records.write_done(final, job.study, ctx.key, fingerprint=job.fingerprint, outputs=outputs,
                       seconds=seconds)
    return {"seconds": round(seconds, 3), "outputs": sorted(outputs)}


def record_failure(ctx: RunContext, job: Job, failure: Failure) -> None:
    """Replace whatever the study folder held with a failure record."""
    final = layout.study_dir(Path(ctx.out_dir), job.study.study_id)
    layout.discard(final)
    try:
        records.write_failed(final, job.study, ctx.key, fingerprint=job.fingerprint, stage=failure.stage,
                             error_class=failure.error_class, exit_code=failure.exit_code,
                             error=failure.message)
    except BaseException:  # e.g. disk full: leave nothing rather than an empty study folder
        layout.remove_if_empty(final)
        raise


def failure_data(failure: Failure, *, previous: bool = False) -> dict:
    return {"stage": failure.stage, "error_class": failure.error_class, "exit_code": failure.exit_code,
            "error": failure.message, "previous": previous}


def process_loaded(ctx: RunContext, job: Job, loaded, models: dict[str, Segmenter], *, device: str,
                   emit: Emit, write: Callable[[Callable[[], None]], None] | None = None) -> None:
    """Segment a read study, then hand the writing to ``write`` (e.g. a background queue) or do it."""
    study_id = job.study.study_id
    last = [0.0]

    def progress(stage: str, done: int, total: int) -> None:  # at most 5 events a second per study
        now = time.monotonic()
        if done in (0, total) or now - last[0] >= _PROGRESS_INTERVAL_S:
            last[0] = now
            emit("study_progress", study_id, {"stage": stage, "done": done, "total": total})

    try:
        results, seconds = segment(ctx, models, loaded.image, device=device, progress=progress)
    except Exception as exc:  # noqa: BLE001 - a study that cannot be segmented fails alone
        _free_accelerator_memory()
        fail(ctx, job, failures.from_exception(exc, "segment", input_root=ctx.input_root), emit)
        return
    timings = {"read": loaded.seconds, "segment": seconds}

    def finish() -> None:
        try:
            data = write_and_finalize(ctx, job, models, loaded.image, results, device=device, timings=timings,
                                      progress=progress)
        except Exception as exc:  # noqa: BLE001
            fail(ctx, job, failures.from_exception(exc, "write", input_root=ctx.input_root), emit)
            return
        emit("study_done", study_id, data)

    if write is None:
        finish()
    else:
        write(finish)


def fail(ctx: RunContext, job: Job, failure: Failure, emit: Emit) -> None:
    if ctx.anonymize:
        failure = failures.without_path(failure, job.study, ctx.input_root)
    log.debug("study %s failed: %s", job.study.study_id, failure.one_line())
    try:
        record_failure(ctx, job, failure)
    except Exception as exc:  # noqa: BLE001 - the failure is still reported
        log.warning("%s: cannot write the failure record (%s)", job.study.study_id, type(exc).__name__)
    emit("study_failed", job.study.study_id, failure_data(failure))


def _free_accelerator_memory() -> None:
    import sys

    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()
