"""One study's work once it is read: run every model, measure, write, finalise; or record a failure.

Shared by the local pipeline and the Ray actors. Outputs are those of ``volseg segment``
(segmentation.nii.gz, labels.json, volumetry.csv, report.json, written by the same code); with
several models each model's files go to ``<study>/<model>/``.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from volseg.batch import failures, layout, records
from volseg.batch.discover import Study
from volseg.batch.failures import Failure
from volseg.batch.records import RunKey
from volseg.segmenters.base import Segmenter

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

    @property
    def model_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.key.models)


def run_key(models: Sequence[str]) -> RunKey:
    """Models (name, catalogue version) in run order; unknown names fail here, before any work."""
    from volseg.segmenters.catalogue import get_entry

    return RunKey(models=tuple((name, get_entry(name).version) for name in models))


def load_models(names: Sequence[str], device: str) -> dict[str, Segmenter]:
    from volseg import api

    return {name: api.load_model(name, device=device) for name in names}


def segment(models: dict[str, Segmenter], image, *, progress) -> tuple[dict[str, Any], float]:
    """Every model's label map for ``image`` (exceptions propagate), and the seconds it took."""
    start = time.perf_counter()
    labels = {name: seg.predict(image.volume, modality=image.source.modality, progress=progress)
              for name, seg in models.items()}
    return labels, time.perf_counter() - start


def write_and_finalize(ctx: RunContext, job: Job, models: dict[str, Segmenter], image, labels: dict,
                       *, device: str, timings: dict[str, float]) -> dict:
    """Measure and write every model's outputs in a work folder, move it into place, record it done."""
    from volseg.api import _measure_and_write  # the very code `volseg segment` writes with

    start = time.perf_counter()
    out = Path(ctx.out_dir)
    work = layout.new_work_dir(out, job.study.study_id)
    try:
        for name, label_map in labels.items():
            seg = models[name]
            target = work / name if len(labels) > 1 else work
            _measure_and_write(job.study.study_id, image, label_map, seg.labels, target,
                               model=seg.provenance(), options={"model": name, "device": device, "series": None},
                               timings=dict(timings))
        outputs = records.hash_outputs(work)
        final = layout.finalize(work, layout.study_dir(out, job.study.study_id))
    except BaseException:
        layout.discard(work)
        raise
    seconds = sum(timings.values()) + (time.perf_counter() - start)
    records.write_done(final, job.study, ctx.key, fingerprint=job.fingerprint, outputs=outputs,
                       seconds=seconds)
    return {"seconds": round(seconds, 3), "outputs": sorted(outputs)}


def record_failure(ctx: RunContext, job: Job, failure: Failure) -> None:
    """Replace whatever the study folder held with a failure record."""
    final = layout.study_dir(Path(ctx.out_dir), job.study.study_id)
    layout.discard(final)
    records.write_failed(final, job.study, ctx.key, fingerprint=job.fingerprint, stage=failure.stage,
                         error_class=failure.error_class, exit_code=failure.exit_code,
                         error=failure.message)


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
        labels, seconds = segment(models, loaded.image, progress=progress)
    except Exception as exc:  # noqa: BLE001 - a study that cannot be segmented fails alone
        _free_accelerator_memory()
        fail(ctx, job, failures.from_exception(exc, "segment", input_root=ctx.input_root), emit)
        return
    timings = {"read": loaded.seconds, "segment": seconds}

    def finish() -> None:
        try:
            data = write_and_finalize(ctx, job, models, loaded.image, labels, device=device, timings=timings)
        except Exception as exc:  # noqa: BLE001
            fail(ctx, job, failures.from_exception(exc, "write", input_root=ctx.input_root), emit)
            return
        emit("study_done", study_id, data)

    if write is None:
        finish()
    else:
        write(finish)


def fail(ctx: RunContext, job: Job, failure: Failure, emit: Emit) -> None:
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
