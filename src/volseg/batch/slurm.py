"""A ready ``sbatch`` job-array script for ``volseg batch``, with a dependent ``volseg collect`` job.

Every array task runs the same command; ``volseg batch`` takes its shard from the SLURM array
variables, so task ``i`` of ``n`` processes every ``n``-th study. Run the script with ``bash`` to
submit the array and a collect job that starts when the whole array has finished (``afterany``:
also when some studies failed), or submit it with ``sbatch`` and run ``volseg collect`` yourself.
"""
from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from pathlib import Path

from volseg.batch.layout import LOGS
from volseg.errors import UsageError

_SAFE = re.compile(r"^[A-Za-z0-9_.:,+\-=/]+$")


#: BatchOptions fields that are not `volseg batch` flags of the array tasks: the models are passed
#: separately, the shard comes from the array, the cohort tables from the collect job
_NOT_FORWARDED = ("models", "shard", "collect", "prefetch", "log_file")


def batch_args(options, *, json_log: bool = False) -> list[str]:
    """``volseg batch`` flags reproducing ``options`` (a :class:`~volseg.batch.BatchOptions`), as the
    array tasks will run it: every field not at its default, by its flag name (``keep_phi`` →
    ``--keep-phi``, ``html=False`` → ``--no-html``), the engine overrides by their CLI names."""
    args: list[str] = []
    for name, value in _changed(options):
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            args.append(flag if value else f"--no-{flag[2:]}")
        else:
            args += [flag, str(value)]
    if json_log:
        args.append("--json-log")
    return args


def _changed(options):
    """(field name, value) of ``options`` and its ``segment`` options that differ from the defaults."""
    from dataclasses import fields

    from volseg.batch.options import BatchOptions

    default = BatchOptions()
    for f in fields(options):
        value = getattr(options, f.name)
        if f.name == "segment":
            yield from ((g.name, getattr(value, g.name)) for g in fields(value)
                        if g.name != "engine" and getattr(value, g.name) != getattr(default.segment, g.name))
            yield from value.engine_flags().items()
        elif f.name not in _NOT_FORWARDED and value != getattr(default, f.name):
            yield f.name, value


def slurm_script(input_dir: str | Path, out_dir: str | Path, *, models: Sequence[str] = (), array: int,
                 partition: str | None = None, gpus_per_task: int | None = None, time: str | None = None,
                 mem: str | None = None, cpus_per_task: int | None = None, job_name: str = "volseg-batch",
                 volseg: str = "volseg", extra_args: Sequence[str] = (), collect_args: Sequence[str] = ()) -> str:
    """The script text; paths are made absolute (compute nodes start elsewhere)."""
    if array < 1:
        raise UsageError(f"--array must be at least 1, got {array}")
    for name, value in (("partition", partition), ("time", time), ("mem", mem), ("job name", job_name)):
        if value is not None and not _SAFE.match(value):
            raise UsageError(f"invalid {name} {value!r} for an #SBATCH line")
    for flag, count in (("gpus-per-task", gpus_per_task), ("cpus-per-task", cpus_per_task)):
        if count is not None and count < 1:
            raise UsageError(f"--{flag} must be at least 1, got {count}")
    inp, out = Path(input_dir).resolve(), Path(out_dir).resolve()
    logs = out / LOGS
    q = shlex.quote
    batch = [volseg, "batch", str(inp), "-o", str(out)]
    if models:
        batch += ["--model", ",".join(models)]
    batch += list(extra_args)
    directives = [f"--job-name={job_name}", f"--array=0-{array - 1}", f"--output={logs}/slurm-%A_%a.out"]
    shared = []  # also given to the collect job
    if partition:
        shared.append(f"--partition={partition}")
    if time:
        shared.append(f"--time={time}")
    directives += shared
    if gpus_per_task:
        directives.append(f"--gpus-per-task={gpus_per_task}")
    if cpus_per_task:
        directives.append(f"--cpus-per-task={cpus_per_task}")
    if mem:
        directives.append(f"--mem={mem}")
    collect_opts = " ".join(q(o) for o in shared)
    lines = [
        "#!/bin/bash",
        f"# volseg batch as a SLURM job array of {array} task(s); task i takes every {array}-th study",
        "# (the shard comes from SLURM_ARRAY_TASK_ID / SLURM_ARRAY_TASK_COUNT). A rerun skips done studies.",
        "#",
        "#   bash THIS_SCRIPT     submit the array and a `volseg collect` job that runs after it",
        f"#   sbatch THIS_SCRIPT   submit the array only (mkdir -p {logs} first); afterwards run:",
        f"#                        {volseg} collect {out}",
        *(f"#SBATCH {d}" for d in directives),
        "set -euo pipefail",
        "",
        'if [ -z "${SLURM_JOB_ID:-}" ]; then  # run with bash: submit the array, then collect after it',
        f"    mkdir -p {q(str(logs))}",
        '    array_job=$(sbatch --parsable "$0")',
        '    array_job=${array_job%%;*}',
        ("    collect_job=$(sbatch --parsable --dependency=afterany:\"$array_job\" "
         f"--job-name={q(job_name + '-collect')} --output={q(str(logs))}/slurm-collect-%j.out"
         f"{' ' + collect_opts if collect_opts else ''} "
         f"--wrap={q(shlex.join([volseg, 'collect', str(out), *collect_args]))})"),
        '    echo "submitted array job $array_job and collect job $collect_job" >&2',
        "    exit 0",
        "fi",
        "",
        "exec " + shlex.join(batch),
        "",
    ]
    return "\n".join(lines)
