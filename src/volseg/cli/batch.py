"""`volseg batch` (a folder of studies) and `volseg slurm-script` (the same on a SLURM job array)."""
from __future__ import annotations

import logging
import shutil
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from volseg.cli import flags
from volseg.cli.console import err, verbosity

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from volseg.cli.progress import Heartbeat, LineProgress


def register(app: typer.Typer) -> None:
    app.command("batch")(batch)
    app.command("slurm-script")(slurm_script)


def batch(
    input_dir: Path = typer.Argument(..., help="Folder of studies: NIfTI/NRRD/MHA files and DICOM series, searched recursively."),
    output: Path = typer.Option(..., "--output", "-o", help="Output folder: one sub-folder per study, logs/, cohort tables."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Model name(s) or path(s) (nnU-Net folder, .onnx with sidecar, MONAI bundle), comma-separated; each runs on every study."),
    shard: Optional[str] = typer.Option(None, "--shard", help="i/n: this job's share of the studies (0-based). Default: from the SLURM array variables, else all."),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="Run only the studies a previous run recorded as failed."),
    gpus: Optional[str] = typer.Option(None, "--gpus", help="all (default: one worker per visible GPU, else one CPU worker) | none | 0,1"),
    executor: Optional[str] = typer.Option(None, "--executor", help="local (default) | ray"),
    address: Optional[str] = typer.Option(None, "--address", help="Ray cluster address, e.g. 10.0.0.1:6379 (with --executor ray)."),
    reader: Optional[str] = typer.Option(None, "--reader", help="Advanced: module:function that reads one study (default volseg.io:read_image)."),
    collect: Optional[bool] = typer.Option(None, "--collect/--no-collect", help="Write the cohort tables at the end (default: yes, unless this is one shard of several)."),
    html: flags.Html = None,
    dicom: flags.Dicom = None,
    rtstruct: flags.Rtstruct = None,
    anonymize: flags.Anonymize = None,
    keep_phi: flags.KeepPhi = None,
    masks: flags.Masks = False,
    trust_bundle: flags.TrustBundle = False,
    force: flags.Force = False,
    json_log: flags.JsonLog = False,
    wait: bool = typer.Option(False, "--wait", help="If another run holds the output folder (the same shard), wait for it instead of failing (exit 6)."),
    anonymize_ids: bool = typer.Option(False, "--anonymize-ids", help="Name studies study-0001… (sorted input paths) instead of after their input paths, which may name patients; the mapping goes to OUT/study_ids.csv (private)."),
    id_map: Optional[Path] = typer.Option(None, "--id-map", help="CSV with columns path,study_id (paths relative to the input folder) giving the study ids."),
    step: flags.Step = None,
    tta: flags.Tta = None,
    precision: flags.Precision = None,
    export: flags.Export = None,
    members: flags.Members = None,
    skip_air: flags.SkipAir = None,
    fastest: flags.Fastest = False,
) -> None:
    """Segment every study in a folder: models loaded once, resumable, one failed study never stops the rest."""
    from volseg import api
    from volseg.batch import BatchOptions
    from volseg.batch.options import parse_models
    from volseg.options import with_overrides

    segment = flags.segment_options(html=html, dicom=dicom, rtstruct=rtstruct, anonymize=anonymize,
                                    keep_phi=keep_phi, masks=masks, trust_bundle=trust_bundle, force=force,
                                    step=step, tta=tta, precision=precision, export=export, members=members,
                                    skip_air=skip_air)
    models = _fastest_variants(parse_models(model)) if fastest else parse_models(model)
    options = with_overrides(BatchOptions(), models=models or None, shard=shard,
                             retry_failed=retry_failed or None, gpus=gpus, executor=executor,
                             address=address, reader=reader, collect=collect, segment=segment,
                             wait=wait or None, anonymize_ids=anonymize_ids or None, id_map=id_map)
    view = _JsonView() if json_log else _RichView(quiet=verbosity.quiet)
    with _console_logs(json_lines=json_log), view:
        summary = api.batch(input_dir, output, options=options, on_event=view)
    if not json_log and not verbosity.quiet:
        _print_summary(summary)
    if summary.exit_code:
        raise typer.Exit(code=summary.exit_code)


def _fastest_variants(models: tuple[str, ...]) -> tuple[str, ...]:
    """``--fastest``: each model's catalogued fastest variant (the default model's when none is named)."""
    from volseg.options import SegmentOptions
    from volseg.segmenters.subset import resolve_model

    return tuple(str(resolve_model(SegmentOptions(model=m, fastest=True))) for m in models or (None,))


def slurm_script(
    input_dir: Path = typer.Argument(..., help="Folder of studies (as for `volseg batch`)."),
    output: Path = typer.Option(..., "--output", "-o", help="Output folder shared by every array task."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Model name(s) or path(s), comma-separated (as for `volseg batch`)."),
    array: int = typer.Option(..., "--array", help="Number of array tasks (shards)."),
    partition: Optional[str] = typer.Option(None, "--partition", help="SLURM partition."),
    gpus_per_task: Optional[int] = typer.Option(None, "--gpus-per-task", help="GPUs per array task."),
    time: Optional[str] = typer.Option(None, "--time", help="Time limit per task, e.g. 04:00:00."),
    mem: Optional[str] = typer.Option(None, "--mem", help="Memory per task, e.g. 32G."),
    cpus_per_task: Optional[int] = typer.Option(None, "--cpus-per-task", help="CPU cores per task."),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="Passed to `volseg batch`."),
    gpus: Optional[str] = typer.Option(None, "--gpus", help="Passed to `volseg batch`: all | none | 0,1."),
    reader: Optional[str] = typer.Option(None, "--reader", help="Passed to `volseg batch`."),
    html: flags.Html = None,
    dicom: flags.Dicom = None,
    rtstruct: flags.Rtstruct = None,
    anonymize: flags.Anonymize = None,
    keep_phi: flags.KeepPhi = None,
    masks: flags.Masks = False,
    trust_bundle: flags.TrustBundle = False,
    force: flags.Force = False,
    json_log: flags.JsonLog = False,
    step: flags.Step = None,
    tta: flags.Tta = None,
    precision: flags.Precision = None,
    export: flags.Export = None,
    members: flags.Members = None,
    skip_air: flags.SkipAir = None,
) -> None:
    """Print a ready sbatch job-array script (run it with bash to also queue `volseg collect` after it).

    Every option and model is checked here, before anything is written: a typo fails now, not on the cluster.
    The options of `volseg batch` given here are passed to it.
    """
    from volseg.batch import BatchOptions
    from volseg.batch import slurm_script as make_script
    from volseg.batch.models import resolve_models
    from volseg.batch.options import parse_models
    from volseg.batch.slurm import batch_args
    from volseg.errors import ModelError, UsageError
    from volseg.options import with_overrides

    if not Path(input_dir).is_dir():
        raise UsageError(f"{input_dir}: not a folder", hint="give the folder of studies")
    segment = flags.segment_options(html=html, dicom=dicom, rtstruct=rtstruct, anonymize=anonymize,
                                    keep_phi=keep_phi, masks=masks, trust_bundle=trust_bundle, force=force,
                                    step=step, tta=tta, precision=precision, export=export, members=members,
                                    skip_air=skip_air)
    options = with_overrides(BatchOptions(), models=parse_models(model) or None, retry_failed=retry_failed or None,
                             gpus=gpus, reader=reader, segment=segment)
    try:
        specs = resolve_models(options.models, trust_bundle=options.segment.trust_bundle)
    except ModelError as exc:  # the script would fail on every array task: a usage error here
        raise UsageError(exc.message, path=exc.path, hint=exc.hint) from None
    exe = shutil.which("volseg") or "volseg"
    text = make_script(input_dir, output, models=[spec.source for spec in specs], array=array,
                       partition=partition, gpus_per_task=gpus_per_task, time=time, mem=mem,
                       cpus_per_task=cpus_per_task, volseg=exe, extra_args=batch_args(options, json_log=json_log),
                       collect_args=[] if options.segment.html else ["--no-html"])
    sys.stdout.write(text)  # byte-exact: a script, not a rendering
    sys.stdout.flush()
    err.print("save it, then `bash it` to submit the array and its collect job (or `sbatch it`)",
              highlight=False)


# ---- rendering --------------------------------------------------------------------------------
class _JsonView:
    """--json-log: every event as one JSON line on stderr, nothing else."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        sys.stderr.flush()

    def __call__(self, event) -> None:
        sys.stderr.write(event.to_json() + "\n")
        sys.stderr.flush()


class _RichView:
    """A bar for the cohort (studies, ETA) and one per worker for its current study, on stderr.

    Without a terminal (e.g. a SLURM log) it writes one line per finished or failed study and plain
    progress lines for the studies' stages (at each stage change, else at most every 30 s); ``quiet``
    (-q): only the failures.
    """

    def __init__(self, *, quiet: bool = False) -> None:
        self.quiet = quiet
        self.live = err.is_terminal and not quiet
        self.lines: LineProgress | None = None
        self.heartbeat: Heartbeat | None = None
        self.progress: Progress | None = None
        self.cohort: TaskID | None = None
        self.workers: dict[int, TaskID] = {}
        self.current: dict[str, int] = {}  # study id → worker

    def __enter__(self):
        if self.live:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                     TimeElapsedColumn(), TimeRemainingColumn(), console=err, transient=True)
            self.progress.__enter__()
        elif not self.quiet:
            from volseg.cli.progress import Heartbeat, LineProgress, line_interval_s, write_err

            interval_s = line_interval_s()
            self.lines = LineProgress(write_err, interval_s=interval_s)
            self.heartbeat = Heartbeat(self.lines.tick, min(5.0, interval_s))
            self.heartbeat.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.progress is not None:
            self.progress.__exit__(*exc)
        if self.heartbeat is not None:
            self.heartbeat.__exit__(*exc)

    def __call__(self, event) -> None:
        kind, d, sid = event.kind, event.data, event.study_id
        if kind == "waiting_for_lock" and not self.quiet:
            err.print(f"waiting for the other run on this output folder ({d['holder']})", highlight=False)
        if kind == "batch_started" and not self.quiet:
            err.print(f"{d['found']} studies found, {d['selected']} in shard {d['shard']}: {d['to_run']} to run, "
                      f"{d['skip']} done already, {d['failed_before']} failed before; models "
                      f"{', '.join(d['models'])}", highlight=False)
            if d.get("skipped_inputs"):
                err.print(f"volseg: warning: {d['skipped_inputs']} input file(s) skipped (link loops, dangling "
                          "links or aliases; listed in the log)", highlight=False)
            if self.progress is not None:
                self.cohort = self.progress.add_task("cohort", total=d["to_run"])
        elif kind == "study_started" and self.progress is not None:
            worker = int(d.get("worker", 0))
            if worker not in self.workers:
                self.workers[worker] = self.progress.add_task("", total=None)
            self.current[sid] = worker
            self.progress.reset(self.workers[worker], total=None, description=f"  {sid}")
        elif kind == "study_progress" and self.progress is not None and sid in self.current:
            self.progress.update(self.workers[self.current[sid]], completed=d["done"], total=d["total"],
                                 description=f"  {sid}: {d['stage']}")
        elif kind == "study_progress" and self.lines is not None:
            self.lines(f"{sid}: {d['stage']}", d["done"], d["total"])
        elif kind in ("study_done", "study_failed") and not d.get("previous"):
            self.current.pop(sid, None)
            if self.progress is not None and self.cohort is not None:
                self.progress.advance(self.cohort)
            if kind == "study_failed":
                err.print(f"volseg: error: {sid}: {d['error_class']} while {d['stage']}: {d['error']}",
                          markup=False, highlight=False, soft_wrap=True)
            elif not self.live and not self.quiet:
                err.print(f"{sid} done in {d['seconds']:.1f} s", highlight=False)


def _print_summary(summary) -> None:
    failed_now = [f for f in summary.failed if not f.previous]
    earlier = [f for f in summary.failed if f.previous]
    for f in earlier:
        err.print(f"volseg: error: {f.study_id}: failed in an earlier run ({f.error_class}: {f.error}); "
                  "rerun it with --retry-failed", markup=False, highlight=False, soft_wrap=True)
    style = "bold red" if summary.failed else "bold green"
    err.print(f"done {len(summary.done)} · skipped {len(summary.skipped)} · failed {len(summary.failed)}"
              f"{f' ({len(earlier)} in earlier runs)' if earlier else ''} in {summary.seconds:.1f} s; "
              f"outputs in {summary.out_dir}", style=style, highlight=False)
    for path in summary.cohort.values():
        err.print(f"wrote {path}", highlight=False)
    if summary.log_file:
        err.print(f"log: {summary.log_file}", highlight=False)
    if failed_now:
        err.print("rerun with --retry-failed once the inputs are fixed", highlight=False)


class _JsonLogHandler(logging.Handler):
    """--json-log: library log records as {"event": "log", ...} lines, so stderr stays JSON."""

    def emit(self, record: logging.LogRecord) -> None:
        import json

        line = {"event": "log", "time": round(record.created, 3), "level": record.levelname.lower(),
                "logger": record.name, "message": record.getMessage()}
        sys.stderr.write(json.dumps(line) + "\n")


@contextmanager
def _console_logs(*, json_lines: bool):
    """Keep the per-event log lines (meant for the run's log file) off the console; in JSON mode
    turn the other console log lines into JSON objects."""

    def drop_events(record: logging.LogRecord) -> bool:
        return record.name != "volseg.batch.run"

    def drop_all(record: logging.LogRecord) -> bool:
        return False

    logger = logging.getLogger("volseg")
    handlers = list(logger.handlers)
    extra = None
    for handler in handlers:
        handler.addFilter(drop_all if json_lines else drop_events)
    if json_lines:
        extra = _JsonLogHandler(level=logger.getEffectiveLevel())
        extra.addFilter(drop_events)
        logger.addHandler(extra)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(drop_all if json_lines else drop_events)
        if extra is not None:
            logger.removeHandler(extra)
