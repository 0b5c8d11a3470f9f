"""One batch per output folder (per shard), disk full while writing, skipped inputs (issue 17)."""
from __future__ import annotations

import errno
import json
import os
import threading
import time

import pytest

from tests.batch.cohort import leftovers, write_cohort
from volseg import api
from volseg.batch import BatchOptions, layout, records
from volseg.batch.lock import output_lock
from volseg.batch.shard import Shard
from volseg.errors import OutputError
from volseg.options import SegmentOptions

NO_HTML = SegmentOptions(html=False)  # BatchOptions(segment=NO_HTML): no report.html


def _run(input_dir, out, events=None, **options):
    sink = events.append if events is not None else None
    return api.batch(input_dir, out, options=BatchOptions(segment=NO_HTML, **options), on_event=sink)


def test_a_second_run_on_a_locked_output_folder_fails_naming_the_holder(tmp_path):
    write_cohort(tmp_path / "in", 1)
    out = tmp_path / "out"
    out.mkdir()
    with output_lock(out, Shard(0, 1)):
        info = json.loads((out / ".volseg-lock").read_text())
        assert info["pid"] == os.getpid() and info["host"] and info["started"]
        with pytest.raises(OutputError, match=rf"in use by another volseg batch \(pid {os.getpid()} on ") as caught:
            _run(tmp_path / "in", out)
    assert caught.value.exit_code == 6
    assert not (out / "case_00").exists() and not (out / "logs").exists()  # nothing was started
    with output_lock(out, Shard(0, 1)):  # released at the end of the block: free again
        pass
    assert not (out / ".volseg-lock").exists()  # the last holder removes it


def test_shards_exclude_only_the_same_shard_and_a_full_run_excludes_them_all(tmp_path):
    with output_lock(tmp_path, Shard(0, 2)):
        with output_lock(tmp_path, Shard(1, 2)):  # another shard of the array: fine
            pass
        with pytest.raises(OutputError, match=r"pid \d+ on "):
            with output_lock(tmp_path, Shard(0, 2)):
                pass
        with pytest.raises(OutputError, match=r"shards 0of2 of an array run"):
            with output_lock(tmp_path, Shard(0, 1)):
                pass
    with output_lock(tmp_path, Shard(0, 1)):
        with pytest.raises(OutputError, match="in use"):
            with output_lock(tmp_path, Shard(1, 2)):
                pass


def test_wait_polls_until_the_holder_is_gone(tmp_path):
    held, waited = threading.Event(), []

    def holder():
        with output_lock(tmp_path, Shard(0, 1)):
            held.set()
            time.sleep(0.4)

    thread = threading.Thread(target=holder)
    thread.start()
    held.wait(5)
    start = time.monotonic()
    with output_lock(tmp_path, Shard(0, 1), wait=True, poll_s=0.02, on_wait=waited.append):
        assert not thread.is_alive()
    assert time.monotonic() - start > 0.2
    assert len(waited) == 1 and f"pid {os.getpid()}" in waited[0]
    thread.join()


def _disk_full_for(study_id, monkeypatch, *, records_too=False):
    from volseg.pipeline import write as pipeline_write

    real_write, real_text = pipeline_write.write_outputs, records.write_text

    def write_outputs(image, labels, out_dir, *, study_id: str, **kw):
        if study_id == target:
            (out_dir / "half-written.nii.gz").write_bytes(b"x")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(image, labels, out_dir, study_id=study_id, **kw)

    def write_text(path, text):
        if path.parent.name == target:
            raise OutputError("cannot write: No space left on device", path=path)
        return real_text(path, text)

    target = study_id
    monkeypatch.setattr(pipeline_write, "write_outputs", write_outputs)
    if records_too:
        monkeypatch.setattr(records, "write_text", write_text)


@pytest.mark.parametrize("records_too", [False, True], ids=["writer-fails", "record-fails-too"])
def test_disk_full_while_writing_a_study_fails_it_alone_and_leaves_no_empty_folder(tmp_path, monkeypatch,
                                                                                   records_too):
    write_cohort(tmp_path / "in", 2)
    out = tmp_path / "out"
    nested = out / layout.WORK / layout.WORK  # what an earlier version left behind
    nested.mkdir(parents=True)
    _disk_full_for("case_00", monkeypatch, records_too=records_too)
    events = []
    summary = _run(tmp_path / "in", out, events)
    assert summary.done == ("case_01",) and (out / "case_01" / records.DONE).is_file()
    [failed] = summary.failed
    assert (failed.study_id, failed.stage, failed.exit_code, failed.error_class) == ("case_00", "write", 6,
                                                                                     "OutputError")
    assert failed.error == "ENOSPC: No space left on device"
    assert summary.exit_code == 6
    if records_too:  # nothing could be written: nothing is left, not an empty folder
        assert not (out / "case_00").exists()
    else:
        assert sorted(p.name for p in (out / "case_00").iterdir()) == [records.FAILED]
        record = json.loads((out / "case_00" / records.FAILED).read_text())
        assert record["exit_code"] == 6 and record["stage"] == "write"
    assert leftovers(out) == []  # no work folder, nested or not


def test_skipped_inputs_are_counted_and_listed_in_the_log(tmp_path):
    write_cohort(tmp_path / "in", 1)
    os.symlink(tmp_path / "in" / "gone.nii.gz", tmp_path / "in" / "dangling.nii.gz")
    os.symlink(tmp_path / "in" / "case_00.nii.gz", tmp_path / "in" / "alias.nii.gz")
    events = []
    summary = _run(tmp_path / "in", tmp_path / "out", events)
    assert summary.done == ("case_00",) and summary.skipped_inputs == 2
    started = next(e for e in events if e.kind == "batch_started")
    assert started.data["skipped_inputs"] == 2 and started.data["found"] == 1
    log_text = summary.log_file.read_text()
    assert "input skipped: dangling.nii.gz" in log_text and "input skipped: alias.nii.gz" in log_text
