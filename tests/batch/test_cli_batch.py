"""`volseg batch` and `volseg slurm-script` as users run them: subprocesses, signals, exit codes."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.batch.cohort import cohort_table, leftovers, truncate, volumetry, write_cohort
from volseg import api
from volseg.batch import BatchOptions, records
from volseg.options import SegmentOptions

NO_HTML = SegmentOptions(html=False)  # BatchOptions(segment=NO_HTML): no report.html

REPO = Path(__file__).resolve().parents[2]
VOLSEG = [sys.executable, "-m", "volseg.cli.main"]


def _env(**extra) -> dict:
    path = os.pathsep.join([str(REPO / "src"), str(REPO), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path, "COLUMNS": "200", **extra}


def run(*args, **env):
    return subprocess.run([*VOLSEG, *map(str, args)], capture_output=True, text=True, env=_env(**env),
                          timeout=300)


def _events(stderr: str) -> list[dict]:
    return [json.loads(line) for line in stderr.splitlines() if line.strip()]


def _n_done(out: Path) -> int:
    return len(list(out.glob(f"*/{records.DONE}")))


def test_sigkill_midway_then_rerun_gives_the_uninterrupted_result(tmp_path):
    cohort = tmp_path / "in"
    write_cohort(cohort, 6)
    reference = api.batch(cohort, tmp_path / "reference", options=BatchOptions(segment=NO_HTML))
    assert len(reference.done) == 6
    out = tmp_path / "out"
    with open(tmp_path / "killed.err", "w") as err_file:
        proc = subprocess.Popen([*VOLSEG, "batch", str(cohort), "-o", str(out), "--no-html", "--json-log"],
                                stdout=subprocess.DEVNULL, stderr=err_file, env=_env(), start_new_session=True)
        deadline = time.monotonic() + 120
        while _n_done(out) < 1 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        os.killpg(proc.pid, signal.SIGKILL)  # the batch and its reader processes, mid-run
        proc.wait(timeout=30)
    done_at_kill = _n_done(out)
    assert proc.returncode == -signal.SIGKILL
    assert 1 <= done_at_kill < 6, f"{done_at_kill} studies done when the batch was killed"

    rerun = run("batch", cohort, "-o", out, "--no-html", "--json-log")
    assert rerun.returncode == 0, rerun.stderr
    started = next(e for e in _events(rerun.stderr) if e["event"] == "batch_started")
    assert started["skip"] == done_at_kill and started["to_run"] == 6 - done_at_kill
    assert volumetry(out) == volumetry(tmp_path / "reference")
    assert cohort_table(out) == cohort_table(tmp_path / "reference")  # the cohort CSV, but for its dates
    assert leftovers(out) == []
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith("case_")) == [
        "cohort_failures.csv", "cohort_lesions.csv", "cohort_volumetry.csv", "logs"]


def test_a_bad_study_in_the_middle_is_reported_and_retried(tmp_path):
    cohort = tmp_path / "in"
    paths = write_cohort(cohort, 4, names=["a.nii.gz", "b.nii.gz", "c_segv.nii.gz", "d.nii.gz"])
    good = paths[1].read_bytes()
    truncate(paths[1])
    out = tmp_path / "out"
    reader = ["--reader", "tests.batch.cohort:read_or_crash", "--no-html"]
    proc = run("batch", cohort, "-o", out, *reader)
    assert proc.returncode == 3, proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("volseg: error:")]
    assert any(ln.startswith("volseg: error: b: InputError while read") and "b.nii.gz" in ln for ln in errors)
    assert any(ln.startswith("volseg: error: c_segv: ReaderCrash") and "SIGSEGV" in ln for ln in errors)
    assert "done 2 · skipped 0 · failed 2" in proc.stderr and "Traceback" not in proc.stderr
    assert sorted(p.parent.name for p in out.glob(f"*/{records.DONE}")) == ["a", "d"]

    paths[1].write_bytes(good)
    paths[2].rename(cohort / "c_segv.nii.gz.bak")  # the crashing study goes away
    retry = run("batch", cohort, "-o", out, *reader, "--retry-failed", "--json-log")
    assert retry.returncode == 0, retry.stderr
    events = _events(retry.stderr)  # every stderr line is one JSON object
    assert [e["study_id"] for e in events if e["event"] == "study_started"] == ["b"]
    assert sorted(e["study_id"] for e in events if e["event"] == "study_skipped") == ["a", "d"]
    assert events[-1]["event"] == "batch_finished" and events[-1]["done"] == 1 and events[-1]["failed"] == 0


def test_slurm_script_runs_one_shard_per_array_task(tmp_path):
    cohort = tmp_path / "in"
    write_cohort(cohort, 4)
    out = tmp_path / "out"
    bin_dir = str(Path(sys.executable).parent)  # where the `volseg` console script lives
    env_path = os.pathsep.join([bin_dir, os.environ.get("PATH", "")])
    proc = run("slurm-script", cohort, "-o", out, "--model", "classic-ct", "--array", "2",
               "--partition", "gpu", "--gpus-per-task", "1", "--time", "01:00:00", "--mem", "8G", "--no-html",
               PATH=env_path)
    assert proc.returncode == 0, proc.stderr
    script = tmp_path / "volseg.sbatch"
    script.write_text(proc.stdout)
    lines = proc.stdout.splitlines()
    assert lines[0] == "#!/bin/bash" and proc.stdout.endswith("\n")
    for directive in ("--array=0-1", "--partition=gpu", "--gpus-per-task=1", "--time=01:00:00", "--mem=8G",
                      f"--output={out}/logs/slurm-%A_%a.out"):
        assert f"#SBATCH {directive}" in lines
    assert lines[-1].startswith("exec ") and lines[-1].endswith(f"-o {out} --model classic-ct --no-html")
    assert f"--wrap='{sys.executable.rsplit('/', 1)[0]}/volseg collect {out} --no-html'" in proc.stdout
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    tasks = []
    for task in range(2):  # as SLURM runs it: the same script, array variables set, at the same time
        env = _env(PATH=env_path, SLURM_JOB_ID="42", SLURM_ARRAY_JOB_ID="42", SLURM_ARRAY_TASK_ID=str(task),
                   SLURM_ARRAY_TASK_MIN="0", SLURM_ARRAY_TASK_MAX="1", SLURM_ARRAY_TASK_COUNT="2")
        tasks.append(subprocess.Popen(["bash", str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True, env=env))
    for task, proc in enumerate(tasks):
        _, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr
        assert f"shard {task}/2" in stderr
    assert sorted(p.parent.name for p in out.glob(f"*/{records.DONE}")) == [f"case_{i:02d}" for i in range(4)]
    assert len(list((out / "logs").glob("batch-*-shard*of2-*.log"))) == 2
    assert leftovers(out) == [] and not (out / "cohort_volumetry.csv").exists()
    collected = run("collect", out, "--no-html")  # what the dependent job runs after the array
    assert collected.returncode == 0, collected.stderr
    _, rows = cohort_table(out)
    assert [r["study_id"] for r in rows] == [f"case_{i:02d}" for i in range(4)]


def test_slurm_script_with_bash_submits_the_array_then_collect(tmp_path):
    cohort = tmp_path / "in"
    cohort.mkdir()
    out = tmp_path / "out"
    proc = run("slurm-script", cohort, "-o", out, "--array", "4")
    script = tmp_path / "volseg.sbatch"
    script.write_text(proc.stdout)
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "sbatch").write_text('#!/bin/bash\necho "$@" >> "$SBATCH_LOG"\necho "1234;cluster"\n')
    (fake / "sbatch").chmod(0o755)
    env = {**os.environ, "PATH": f"{fake}{os.pathsep}{os.environ['PATH']}", "SBATCH_LOG": str(tmp_path / "calls")}
    env.pop("SLURM_JOB_ID", None)
    submitted = subprocess.run(["bash", str(script)], capture_output=True, text=True, env=env)
    assert submitted.returncode == 0, submitted.stderr
    first, second = (tmp_path / "calls").read_text().splitlines()
    assert first == f"--parsable {script}"
    assert "--dependency=afterany:1234 " in second and f"collect {out}" in second
    assert (out / "logs").is_dir()  # SLURM does not create the folder of --output


def test_usage_errors_are_one_line_with_exit_code_2(tmp_path, capsys):
    from volseg.cli.main import main

    cohort = tmp_path / "in"
    write_cohort(cohort, 1)
    for args, fragment in ((["--shard", "3/3"], "invalid shard"), (["--gpus", "banana"], "invalid --gpus"),
                           (["--executor", "spark"], "unknown executor"), (["--model", "a,a"], "named twice"),
                           (["--precision", "fp8"], "invalid precision")):
        assert main(["batch", str(cohort), "-o", str(tmp_path / "out"), *args]) == 2
        err = capsys.readouterr().err
        assert err.startswith("volseg: error:") and fragment in err and "Traceback" not in err
    assert main(["batch", str(cohort / "case_00.nii.gz"), "-o", str(tmp_path / "out")]) == 2
    assert "not a folder" in capsys.readouterr().err


def test_engine_flags_are_part_of_the_run_key_only_when_set():
    from volseg.batch import BatchOptions
    from volseg.batch.study import RunContext, run_key

    assert BatchOptions().output_options() == {"html": True, "dicom": False, "keep_phi": False}
    from volseg.options import engine_overrides

    options = BatchOptions(segment=SegmentOptions(engine=engine_overrides(tta=True, step=0.75)))
    assert options.output_options() == {"html": True, "dicom": False, "keep_phi": False, "step": 0.75, "tta": True}
    key = run_key(("classic-ct",), options.output_options())
    ctx = RunContext(input_root="in", out_dir="out", key=key, segment=options.segment)
    assert ctx.segment_options("classic-ct", "cpu").engine.changes() == {"mirror": True, "step": 0.75}
    assert key != run_key(("classic-ct",), BatchOptions().output_options())  # a rerun redoes the studies


def test_each_study_is_checked_against_each_model_unless_forced():
    """A study a model was not made for fails alone, before predicting; --force runs it."""

    from volseg.batch import BatchOptions
    from volseg.batch.study import RunContext, run_key, segment
    from volseg.errors import ModelError
    from volseg.io.types import ImageSource, LoadedImage
    from volseg.labels import LabelTable
    from volseg.phantom import make_phantom

    calls = []

    class HeadModel:  # what the catalogue says of blast-ct: head CT; the phantom is a chest
        name = "blast-ct"
        labels = LabelTable.from_names({1: "lesion"})

        def predict(self, volume, *, modality=None, progress=None):
            calls.append(volume.shape)
            return volume.with_array((volume.array * 0).astype("uint8"))

    phantom = make_phantom().image
    image = LoadedImage(volume=phantom, source=ImageSource(kind="nifti", path="chest.nii.gz", modality="CT"))
    key = run_key(("classic-ct",), BatchOptions().output_options())
    with pytest.raises(ModelError, match=r"chest\.nii\.gz: model 'blast-ct' not run"):
        segment(RunContext(input_root="in", out_dir="out", key=key), {"blast-ct": HeadModel()}, image,
                device="cpu", progress=lambda *a: None)
    assert calls == []
    segment(RunContext(input_root="in", out_dir="out", key=key, segment=SegmentOptions(force=True)), {"blast-ct": HeadModel()}, image,
            device="cpu", progress=lambda *a: None)
    assert calls == [phantom.shape]


def test_progress_lines_when_stderr_is_a_file_and_quiet_means_errors_only(tmp_path):
    cohort = tmp_path / "in"
    write_cohort(cohort, 2)
    plain = run("batch", cohort, "-o", tmp_path / "out", "--no-html")
    assert plain.returncode == 0, plain.stderr
    stages = [line for line in plain.stderr.splitlines() if "progress: case_00: " in line]
    assert any("measuring" in line for line in stages) and any("writing" in line for line in stages), plain.stderr
    assert all("elapsed" in line for line in stages)

    quiet = run("batch", cohort, "-o", tmp_path / "out2", "--no-html", "-q")
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr
    truncate(cohort / "case_01.nii.gz")
    failing = run("batch", cohort, "-o", tmp_path / "out3", "--no-html", "-q")
    assert failing.returncode == 3
    assert [line for line in failing.stderr.splitlines() if line] == [
        next(line for line in failing.stderr.splitlines() if line.startswith("volseg: error: case_01"))]
