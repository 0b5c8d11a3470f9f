"""Completion records: a study is done only when its record verifies; anything else is redone."""
from __future__ import annotations

import json
import os

import pytest

from volseg.batch import layout, records
from volseg.batch.discover import Study
from volseg.batch.records import RunKey, study_state

KEY = RunKey(models=(("classic-ct", "0.1.0"),))


@pytest.fixture
def study(tmp_path):
    src = tmp_path / "in" / "case.nii.gz"
    src.parent.mkdir()
    src.write_bytes(b"fake image bytes")
    return Study("case", str(src), "case.nii.gz", "nifti")


def _finished(tmp_path, study) -> tuple:
    out = tmp_path / "out"
    work = layout.new_work_dir(out, study.study_id)
    (work / "volumetry.csv").write_text("study_id,volume_ml\ncase,1.5\n")
    (work / "sub").mkdir()
    (work / "sub" / "report.json").write_text("{}")
    outputs = records.hash_outputs(work)
    final = layout.finalize(work, layout.study_dir(out, study.study_id))
    fp = records.input_fingerprint(study)
    records.write_done(final, study, KEY, fingerprint=fp, outputs=outputs)
    return final, fp


def test_done_study_verifies(tmp_path, study):
    final, fp = _finished(tmp_path, study)
    assert study_state(final, KEY, fp).status == "done"
    record = json.loads((final / records.DONE).read_text())
    assert sorted(record["outputs"]) == ["sub/report.json", "volumetry.csv"]
    assert record["models"] == [{"name": "classic-ct", "version": "0.1.0"}]
    assert not (tmp_path / "out" / layout.WORK).exists() or not any((tmp_path / "out" / layout.WORK).iterdir())


def test_new_and_partial(tmp_path, study):
    out = tmp_path / "out"
    fp = records.input_fingerprint(study)
    assert study_state(out / "case", KEY, fp).status == "new"
    (out / "case").mkdir(parents=True)
    (out / "case" / "volumetry.csv").write_text("complete-looking but unrecorded")
    assert study_state(out / "case", KEY, fp).status == "partial"  # existence alone is not trusted


@pytest.mark.parametrize("tamper, reason", [
    (lambda f: (f / "volumetry.csv").write_text("study_id,volume_ml\ncase,9.9\n"), "changed"),
    (lambda f: (f / "volumetry.csv").write_text("study_id,volume_ml\ncase,1.5\n" + "x"), "changed"),
    (lambda f: (f / "sub" / "report.json").unlink(), "missing"),
    (lambda f: (f / records.DONE).write_text("{not json"), "unreadable"),
])
def test_tampered_outputs_are_redone(tmp_path, study, tamper, reason):
    final, fp = _finished(tmp_path, study)
    tamper(final)
    state = study_state(final, KEY, fp)
    assert state.status == "stale" and reason in state.reason


def test_changed_input_or_model_is_redone(tmp_path, study):
    final, fp = _finished(tmp_path, study)
    newer = RunKey(models=(("classic-ct", "0.2.0"),))
    assert study_state(final, newer, fp).reason == "models or model versions changed"
    st = os.stat(study.path)
    os.utime(study.path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    state = study_state(final, KEY, records.input_fingerprint(study))
    assert (state.status, state.reason) == ("stale", "input changed")


def test_failure_record(tmp_path, study):
    out = tmp_path / "out"
    fp = records.input_fingerprint(study)
    records.write_failed(out / "case", study, KEY, fingerprint=fp, stage="read", error_class="InputError",
                         exit_code=3, error="case.nii.gz: truncated\nvoxel data")
    data = json.loads((out / "case" / records.FAILED).read_text())
    assert data["error"] == "case.nii.gz: truncated voxel data" and data["exit_code"] == 3
    assert study_state(out / "case", KEY, fp).status == "failed"
    assert study_state(out / "case", RunKey(models=(("other", "1"),)), fp).status == "failed_stale"


def test_clean_work_removes_only_this_shards_leftovers(tmp_path):
    out = tmp_path / "out"
    mine, theirs = layout.new_work_dir(out, "a.b"), layout.new_work_dir(out, "c")
    (mine / "segmentation.nii.gz").write_bytes(b"half")
    assert layout.clean_work(out, ["a.b"]) == 1
    assert not mine.exists() and theirs.exists()
    theirs.rmdir()
    layout.remove_work_root_if_empty(out)
    assert not (out / layout.WORK).exists()


def test_finalize_replaces_a_previous_folder(tmp_path):
    out = tmp_path / "out"
    old = out / "s"
    old.mkdir(parents=True)
    (old / "stale.txt").write_text("old")
    work = layout.new_work_dir(out, "s")
    (work / "new.txt").write_text("new")
    layout.finalize(work, old)
    assert sorted(p.name for p in old.iterdir()) == ["new.txt"]
    assert not any((out / layout.WORK).iterdir())
