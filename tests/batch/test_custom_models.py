"""Custom models in batch and slurm-script; slurm-script validates before writing; Ray without a
cluster is one line; a failed study shows in the cohort."""
from __future__ import annotations

import csv
import json
import shlex
import sys
import time
from pathlib import Path

import pytest

from tests.batch.cohort import truncate, write_cohort
from volseg.batch import records
from volseg.batch.models import resolve_model, resolve_models
from volseg.cli.main import main
from volseg.errors import ModelError, UsageError


def _bundle(folder: Path) -> Path:
    (folder / "configs").mkdir(parents=True)
    (folder / "configs" / "inference.json").write_text("{}")
    (folder / "models").mkdir()
    (folder / "models" / "model.pt").write_bytes(b"weights")
    return folder


def _exec_line(script: str) -> list[str]:
    line = next(ln for ln in script.splitlines() if ln.startswith("exec "))
    return shlex.split(line)[1:]


# ---- resolving --model ----------------------------------------------------------------------------
def test_catalogue_names_resolve_to_name_and_version_and_typos_say_did_you_mean():
    spec = resolve_model("classic-ct")
    assert (spec.source, spec.name) == ("classic-ct", "classic-ct") and spec.version
    with pytest.raises(ModelError, match=r"unknown model 'totl' \(did you mean 'total'\?\)"):
        resolve_model("totl")
    with pytest.raises(ModelError, match="no such model file or folder"):
        resolve_model("models/none.onnx")


def test_a_path_is_keyed_by_its_name_and_a_hash_of_its_files(tmp_path):
    bundle = _bundle(tmp_path / "my_bundle")
    first = resolve_model(str(bundle), trust_bundle=True)
    assert first.source == str(bundle.resolve()) and first.name == "my_bundle"
    assert first.version.startswith("files-") and len(first.version) == 6 + 16
    assert resolve_model(str(bundle), trust_bundle=True) == first  # stable: a rerun skips done studies
    (bundle / "models" / "model.pt").write_bytes(b"retrained")
    assert resolve_model(str(bundle), trust_bundle=True).version != first.version  # a new model redoes them
    with pytest.raises(ModelError, match="untrusted MONAI bundle"):
        resolve_model(str(bundle), trust_bundle=False)


def test_paths_that_are_no_model_fail_with_the_reason(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="not a model volseg can run"):
        resolve_model(str(tmp_path / "empty"))
    (tmp_path / "net.onnx").write_bytes(b"onnx")
    with pytest.raises(ModelError, match="no sidecar"):
        resolve_model(str(tmp_path / "net.onnx"))
    (tmp_path / "net.onnx.json").write_text("{not json")
    with pytest.raises(ModelError, match="sidecar is not valid JSON"):
        resolve_model(str(tmp_path / "net.onnx"))


def test_two_models_with_the_same_folder_name_are_refused(tmp_path):
    a, b = _bundle(tmp_path / "a" / "net"), _bundle(tmp_path / "b" / "net")
    with pytest.raises(UsageError, match="both be called 'net'"):
        resolve_models([str(a), str(b)], trust_bundle=True)


# ---- slurm-script ------------------------------------------------------------------------------------
@pytest.fixture()
def scans(tmp_path) -> Path:
    folder = tmp_path / "scans"
    folder.mkdir()
    return folder


@pytest.mark.parametrize("args, fragment", [
    (["--model", "totl"], "unknown model 'totl' (did you mean 'total'?)"),
    (["--model", "missing/model.onnx"], "missing/model.onnx: no such model file or folder"),
    (["--model", "classic-ct", "--precision", "fp8"], "invalid precision 'fp8'"),
    (["--model", "classic-ct", "--gpus", "first"], "invalid --gpus 'first'"),
    (["--model", "classic-ct,classic-ct"], "named twice"),
])
def test_slurm_script_checks_everything_before_writing(scans, tmp_path, capsys, args, fragment):
    code = main(["slurm-script", str(scans), "-o", str(tmp_path / "out"), "--array", "4", *args])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""  # nothing written: no half script to submit
    assert captured.err.startswith("volseg: error:") and fragment in captured.err
    assert len(captured.err.strip().splitlines()) == 1 and not (tmp_path / "out").exists()


def test_slurm_script_refuses_an_untrusted_bundle_and_forwards_every_option(scans, tmp_path, capsys):
    bundle = _bundle(tmp_path / "lab_bundle")
    out = tmp_path / "out"
    base = ["slurm-script", str(scans), "-o", str(out), "--array", "3", "--model", str(bundle)]
    assert main(base) == 2
    assert "refusing to run an untrusted MONAI bundle" in capsys.readouterr().err
    options = ["--trust-bundle", "--no-html", "--dicom", "--keep-phi", "--step", "0.75", "--tta",
               "--precision", "fp32", "--export", "nearest", "--gpus", "0,1", "--retry-failed", "--json-log",
               "--reader", "tests.batch.cohort:read_or_crash"]
    assert main([*base, *options]) == 0
    script = capsys.readouterr().out
    argv = _exec_line(script)
    assert argv[1:5] == ["batch", str(scans.resolve()), "-o", str(out.resolve())]
    assert argv[argv.index("--model") + 1] == str(bundle.resolve())  # absolute: nodes start elsewhere
    for flag in ("--trust-bundle", "--no-html", "--dicom", "--keep-phi", "--tta", "--retry-failed", "--json-log"):
        assert flag in argv
    for flag, value in (("--step", "0.75"), ("--precision", "fp32"), ("--export", "nearest"), ("--gpus", "0,1"),
                        ("--reader", "tests.batch.cohort:read_or_crash")):
        assert argv[argv.index(flag) + 1] == value
    assert "collect" in script and "--no-html" in script.split("--wrap=")[1]
    # the line parses as `volseg batch` with the same option values
    from typer.main import get_command

    from volseg.cli.app import app

    params = get_command(app).commands["batch"].make_context("batch", argv[2:]).params
    assert {k: params[k] for k in ("model", "trust_bundle", "html", "dicom", "keep_phi", "step", "tta", "precision",
                                   "export", "gpus", "retry_failed", "json_log")} == {
        "model": str(bundle.resolve()), "trust_bundle": True, "html": False, "dicom": True, "keep_phi": True,
        "step": 0.75, "tta": True, "precision": "fp32", "export": "nearest", "gpus": "0,1", "retry_failed": True,
        "json_log": True}


def test_slurm_script_defaults_forward_nothing_extra(scans, tmp_path, capsys):
    assert main(["slurm-script", str(scans), "-o", str(tmp_path / "out"), "--array", "2", "-m", "classic-ct"]) == 0
    argv = _exec_line(capsys.readouterr().out)
    assert argv[5:] == ["--model", "classic-ct"]


# ---- Ray without a cluster ------------------------------------------------------------------------
def test_ray_with_an_unreachable_address_is_one_line_and_quick(tmp_path, capsys):
    pytest.importorskip("ray")
    write_cohort(tmp_path / "in", 1)
    start = time.perf_counter()
    code = main(["batch", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--executor", "ray",
                 "--address", "127.0.0.1:1", "--no-html"])
    seconds = time.perf_counter() - start
    err = capsys.readouterr().err
    assert code == UsageError.exit_code == 2 and seconds < 30
    assert err.count("\n") == 1 and err.startswith("volseg: error: --address 127.0.0.1:1: no Ray cluster")
    assert "Traceback" not in err and not (tmp_path / "out").exists()


def test_ray_auto_without_a_cluster_is_one_line(tmp_path, capsys, monkeypatch):
    pytest.importorskip("ray")
    import ray._private.services as services

    def nothing_running(address):
        raise ConnectionError("Could not find any running Ray instance.")

    monkeypatch.setattr(services, "canonicalize_bootstrap_address", nothing_running)
    write_cohort(tmp_path / "in", 1)
    code = main(["batch", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--executor", "ray",
                 "--address", "auto"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "--address auto: no Ray cluster found" in err


def test_ray_not_installed_is_exit_8(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray → ImportError
    write_cohort(tmp_path / "in", 1)
    code = main(["batch", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--executor", "ray"])
    err = capsys.readouterr().err
    assert code == 8 and err.count("\n") == 1 and "pip install 'volseg[ray]'" in err


# ---- a custom ONNX model over a cohort with a broken file ----------------------------------------
@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory) -> Path:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("nnunetv2")
    from tests.factories.exported_models import export_onnx
    from tests.factories.nnunet_model import FOLDER_NAME, write_random_model

    root = tmp_path_factory.mktemp("onnx-model")
    return export_onnx(write_random_model(root / FOLDER_NAME), root / "onnx")


def test_batch_runs_an_onnx_path_and_the_cohort_shows_the_broken_study(onnx_model, tmp_path, capsys):
    cohort = tmp_path / "in"
    paths = write_cohort(cohort, 4, names=["a.nii.gz", "b.nii.gz", "c.nii.gz", "broken.nii.gz"])
    truncate(paths[3])
    out = tmp_path / "out"
    args = ["batch", str(cohort), "-o", str(out), "--model", str(onnx_model), "--gpus", "none"]
    assert main(args) == 3  # the input error of the broken study
    err = capsys.readouterr().err
    assert "unknown model" not in err and "done 3 · skipped 0 · failed 1" in err
    record = json.loads((out / "a" / records.DONE).read_text())
    assert record["models"][0]["name"] == "phantom.onnx" and record["models"][0]["version"].startswith("files-")
    report = json.loads((out / "a" / "report.json").read_text())
    assert report["provenance"]["model"]["name"] == "phantom-onnx"  # the sidecar's name
    with open(out / "cohort_failures.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["study_id"], r["model"], r["stage"], r["exit_code"]) for r in rows] == [
        ("broken", "phantom.onnx", "read", "3")]
    assert "broken.nii.gz" in rows[0]["error"] and "truncated" in rows[0]["error"]
    index = (out / "index.html").read_text()
    assert "volseg cohort: 3 studies, 1 failed" in index and "Failed studies (1)" in index
    # a rerun with the same model file skips the done studies (the key is stable)
    assert main(args) == 3
    assert "done 0 · skipped 3 · failed 1 (1 in earlier runs)" in capsys.readouterr().err
