"""The batch engine through the API, in-process, with the built-in classic-ct model on small phantoms."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.batch.cohort import cohort_table, leftovers, truncate, volumetry, write_cohort
from volseg import api
from volseg.batch import BatchOptions, layout, records
from volseg.options import SegmentOptions

NO_HTML = SegmentOptions(html=False)  # BatchOptions(segment=NO_HTML): no report.html

IDS4 = ["case_00", "case_01", "case_02", "case_03"]


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("cohort4")
    write_cohort(folder, 4)
    return folder


@pytest.fixture(scope="module")
def segmented(cohort, tmp_path_factory) -> Path:
    """Each study segmented alone by `api.segment` (the single-study path), then collected."""
    out = tmp_path_factory.mktemp("reference")
    seg = api.load_model("classic-ct")
    for p in sorted(cohort.glob("*.nii.gz")):
        api.segment(p, out / p.name[: -len(".nii.gz")], segmenter=seg)
    api.collect(out)
    return out


@pytest.fixture(scope="module")
def reference(segmented) -> dict[str, str]:
    return volumetry(segmented, IDS4)


def _run(input_dir, out, events=None, **options):
    sink = events.append if events is not None else None
    return api.batch(input_dir, out, options=BatchOptions(**options), on_event=sink)


def test_batch_writes_what_segment_writes(cohort, segmented, reference, tmp_path):
    events = []
    summary = _run(cohort, tmp_path / "out", events)
    assert summary.exit_code == 0 and not summary.failed and not summary.skipped
    assert sorted(summary.done) == IDS4
    assert volumetry(tmp_path / "out") == reference  # byte-identical per-study tables
    assert cohort_table(tmp_path / "out") == cohort_table(segmented)  # and the cohort table
    assert sorted(summary.cohort) == ["cohort_failures", "cohort_lesions", "cohort_volumetry", "index"]
    for study_id in IDS4:
        folder = tmp_path / "out" / study_id
        alone = sorted(p.name for p in (segmented / study_id).iterdir())
        assert "report.html" in alone
        assert sorted(p.name for p in folder.iterdir()) == sorted([".volseg-done.json", *alone])
        report = json.loads((folder / "report.json").read_text())
        assert report["study_id"] == study_id
    assert leftovers(tmp_path / "out") == []
    kinds = [e.kind for e in events]
    assert kinds[0] == "batch_started" and kinds[-1] == "batch_finished"
    assert kinds.count("model_loaded") == 1  # the model is loaded once for the whole cohort
    assert kinds.count("study_done") == 4 and "study_progress" in kinds
    log_text = summary.log_file.read_text()
    assert summary.log_file.parent == tmp_path / "out" / "logs"
    assert all(f"{i} done" in log_text for i in IDS4)
    assert str(cohort) not in log_text  # input locations stay out of the log


def test_rerun_trusts_only_verified_records(cohort, reference, tmp_path):
    out = tmp_path / "out"
    _run(cohort, out, segment=NO_HTML)
    before = {i: (out / i / records.DONE).read_bytes() for i in IDS4}
    (out / "case_01" / "volumetry.csv").write_text("tampered\n")
    (out / "case_02" / records.DONE).unlink()  # as if killed just before the record
    stale = layout.new_work_dir(out, "case_03")  # a killed run's work folder
    (stale / "segmentation.nii.gz").write_bytes(b"half a file")
    summary = _run(cohort, out, segment=NO_HTML)
    assert sorted(summary.done) == ["case_01", "case_02"]
    assert sorted(summary.skipped) == ["case_00", "case_03"]
    assert volumetry(out) == reference and leftovers(out) == []
    assert (out / "case_00" / records.DONE).read_bytes() == before["case_00"]  # untouched


def test_several_models_each_in_its_folder(cohort, tmp_path, monkeypatch):
    """Two models on every study: outputs in <study>/<model>/, each model loaded once."""
    from volseg.batch import engine, study
    from volseg.batch.records import RunKey

    loads = []

    def load_models(ctx, device):
        loads.append(ctx.model_names)
        base = api.load_model("classic-ct")
        return {"classic-ct": base, "bone-only": _BoneOnly(base)}

    monkeypatch.setattr(study, "load_models", load_models)
    monkeypatch.setattr(engine, "run_key", lambda names, options: RunKey(tuple((n, "1") for n in names),
                                                                        tuple(sorted(options.items()))))
    summary = _run(cohort, tmp_path / "out", models=("classic-ct", "bone-only"), segment=NO_HTML)
    assert sorted(summary.done) == IDS4 and loads == [("classic-ct", "bone-only")]
    assert summary.cohort == {}  # one row per study cannot hold two models: left to the user
    for study_id in IDS4:
        folder = tmp_path / "out" / study_id
        assert sorted(p.name for p in folder.iterdir()) == [".volseg-done.json", "bone-only", "classic-ct"]
        full = _volumes(folder / "classic-ct" / "volumetry.csv")
        bone = _volumes(folder / "bone-only" / "volumetry.csv")
        assert bone == {"bone": full["bone"]}


def test_failures_are_isolated_recorded_and_retried(tmp_path):
    """A truncated file and a reader that segfaults fail alone; the rest is done; retry runs only them."""
    cohort = tmp_path / "in"
    paths = write_cohort(cohort, 5, names=["a.nii.gz", "b.nii.gz", "c_segv.nii.gz", "d.nii.gz", "e.nii.gz"])
    good_b = paths[1].read_bytes()
    truncate(paths[1])
    out = tmp_path / "out"
    reader = "tests.batch.cohort:read_or_crash"
    summary = _run(cohort, out, reader=reader, segment=NO_HTML)
    assert sorted(summary.done) == ["a", "d", "e"]
    failed = {f.study_id: f for f in summary.failed}
    assert failed["b"].error_class == "InputError" and failed["b"].stage == "read"
    assert "b.nii.gz" in failed["b"].error and "truncated" in failed["b"].error
    assert str(cohort) not in failed["b"].error  # relative to the input folder
    assert failed["c_segv"].error_class == "ReaderCrash" and "SIGSEGV" in failed["c_segv"].error
    assert summary.exit_code == 3
    record = json.loads((out / "b" / records.FAILED).read_text())
    assert record["stage"] == "read" and record["exit_code"] == 3
    assert leftovers(out) == []

    again = _run(cohort, out, reader=reader, segment=NO_HTML)  # a plain rerun does not retry recorded failures
    assert not again.done and sorted(again.skipped) == ["a", "d", "e"]
    assert sorted(f.study_id for f in again.failed) == ["b", "c_segv"] and all(f.previous for f in again.failed)

    paths[1].write_bytes(good_b)  # fix b; c still crashes the reader
    events = []
    retry = _run(cohort, out, events, reader=reader, retry_failed=True, segment=NO_HTML)
    started = sorted(e.study_id for e in events if e.kind == "study_started")
    assert started == ["b", "c_segv"]
    assert retry.done == ("b",) and [f.study_id for f in retry.failed] == ["c_segv"]
    assert sorted(retry.skipped) == ["a", "d", "e"]
    assert (out / "b" / records.DONE).exists() and not (out / "b" / records.FAILED).exists()


def test_model_failures_fail_one_study_each(cohort, tmp_path, monkeypatch):
    """Out of memory (after the engine's fallbacks) and a model bug fail their study; the rest goes on."""
    from volseg.batch import study

    class OutOfMemoryError(RuntimeError):  # what torch.cuda raises, by name
        pass

    class Flaky:
        def __init__(self, base):
            self.base, self.name, self.labels, self.entry = base, base.name, base.labels, base.entry

        def predict(self, volume, *, modality=None, progress=lambda *a: None):
            case = round((volume.spacing[0] - 5.0) / 0.15)  # write_cohort varies the spacing per case
            if case == 1:
                raise OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
            if case == 2:
                raise ZeroDivisionError("division by zero")
            return self.base.predict(volume, modality=modality, progress=progress)

        def provenance(self):
            return self.base.provenance()

    monkeypatch.setattr(study, "load_models", lambda ctx, device: {"classic-ct": Flaky(api.load_model("classic-ct"))})
    summary = _run(cohort, tmp_path / "out", segment=NO_HTML)
    assert sorted(summary.done) == ["case_00", "case_03"]
    failed = {f.study_id: f for f in summary.failed}
    assert (failed["case_01"].error_class, failed["case_01"].stage, failed["case_01"].exit_code) == (
        "OutOfMemory", "segment", 7)
    assert failed["case_02"].error_class == "InternalError" and "ZeroDivisionError" in failed["case_02"].error
    assert summary.exit_code == 7 and leftovers(tmp_path / "out") == []


def test_three_shards_cover_every_study_once(tmp_path):
    cohort = tmp_path / "in"
    write_cohort(cohort, 7)
    out = tmp_path / "out"
    parts = [_run(cohort, out, shard=f"{i}/3", segment=NO_HTML) for i in range(3)]
    done = [s for p in parts for s in p.done]
    assert sorted(done) == [f"case_{i:02d}" for i in range(7)] and len(done) == len(set(done))
    assert [len(p.done) for p in parts] == [3, 2, 2]
    assert all(p.cohort == {} for p in parts)  # shards leave the cohort tables to `volseg collect`
    assert not (out / "cohort_volumetry.csv").exists()
    _run(cohort, tmp_path / "whole", segment=NO_HTML)
    assert volumetry(out) == volumetry(tmp_path / "whole") and leftovers(out) == []
    api.collect(out)  # `volseg collect` merges the shards
    assert cohort_table(out) == cohort_table(tmp_path / "whole")
    rerun = _run(cohort, out, shard="1/3", segment=NO_HTML)
    assert not rerun.done and len(rerun.skipped) == 2


def test_shard_defaults_to_the_slurm_array_task(tmp_path, monkeypatch):
    cohort = tmp_path / "in"
    write_cohort(cohort, 4)
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "1")
    monkeypatch.setenv("SLURM_ARRAY_TASK_COUNT", "2")
    monkeypatch.setenv("SLURM_ARRAY_TASK_MIN", "0")
    summary = _run(cohort, tmp_path / "out", segment=NO_HTML)
    assert summary.shard == "1/2" and sorted(summary.done) == ["case_01", "case_03"]
    assert "shard1of2" in summary.log_file.name


def test_an_empty_folder_is_an_error(tmp_path):
    from volseg.errors import InputError

    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "readme.txt").write_text("no images here")
    with pytest.raises(InputError, match="no studies found"):
        _run(tmp_path / "in", tmp_path / "out")


def test_unknown_model_fails_before_any_work(cohort, tmp_path):
    from volseg.errors import ModelError

    with pytest.raises(ModelError, match="classic-ct"):
        _run(cohort, tmp_path / "out", models=("clasic-ct",))
    assert not any(p.name != "logs" for p in (tmp_path / "out").iterdir())


class _BoneOnly:
    """A second model for the layout test: classic-ct's bone, as a one-class label map."""

    name = "bone-only"
    entry = None  # no catalogue entry

    def __init__(self, base) -> None:
        from volseg.labels import LabelTable

        self.base = base
        self.labels = LabelTable.from_names({1: "bone"})
        self._bone = {v: k for k, v in base.labels.names().items()}["bone"]

    def predict(self, volume, *, modality=None, progress=lambda *a: None):
        labels = self.base.predict(volume, modality=modality, progress=progress)
        return labels.with_array((np.asarray(labels.array) == self._bone).astype(np.uint8))

    def provenance(self):
        return {"model": self.name, "version": "1", "device": "cpu", "weights": []}


def _volumes(path: Path) -> dict[str, str]:
    import csv

    with open(path, newline="") as fh:
        return {row["name"]: row["volume_ml"] for row in csv.DictReader(fh)}
