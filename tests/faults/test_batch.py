"""Class 4, batch: bad directory entries are skipped and reported; resume trusts content, not mtime."""
from __future__ import annotations

import os
import shutil

import pytest

from tests.faults.makers import write
from volseg.batch import layout, records
from volseg.batch.discover import discover
from volseg.batch.records import RunKey, study_state

KEY = RunKey(models=(("classic-ct", "0.1.0"),))


@pytest.fixture
def messy(tmp_path):
    """One real image plus a self-looping link, a dangling link, a symlink alias and a hard-link alias."""
    root = tmp_path / "in"
    root.mkdir()
    write(root / "real.nii.gz", b"image bytes")
    os.symlink("loop.nii.gz", root / "loop.nii.gz")
    os.symlink("gone.nii.gz", root / "dangling.nii.gz")
    os.symlink("real.nii.gz", root / "alias.nii.gz")
    os.link(root / "real.nii.gz", root / "zz_hard.nii.gz")
    return root


def test_discovery_skips_and_reports_bad_entries(messy, caplog):
    found = discover(messy)
    assert [s.study_id for s in found.studies] == ["real"]
    assert {(s.rel_path, s.reason) for s in found.skipped} == {
        ("loop.nii.gz", "symbolic link loop"),
        ("dangling.nii.gz", "dangling symbolic link"),
        ("alias.nii.gz", "alias of real.nii.gz (the same file)"),
        ("zz_hard.nii.gz", "alias of real.nii.gz (the same file)"),
    }
    assert sum("skipped" in r.getMessage() for r in caplog.records) == 4


def test_a_link_loop_does_not_stop_the_batch(tmp_path):
    from tests.batch.cohort import write_cohort
    from volseg import api
    from volseg.batch import BatchOptions

    root = tmp_path / "in"
    write_cohort(root, 1)
    os.symlink("loop.nii.gz", root / "loop.nii.gz")
    summary = api.batch(root, tmp_path / "out", options=BatchOptions())
    assert summary.exit_code == 0
    assert (tmp_path / "out" / "case_00" / records.DONE).is_file()


def test_resume_redoes_a_study_whose_input_changed_at_the_same_size_and_mtime(tmp_path):
    from volseg.batch.discover import Study

    (tmp_path / "in").mkdir()
    src = write(tmp_path / "in" / "case.nii.gz", b"AAAA-image")
    study = Study("case", str(src), "case.nii.gz", "nifti")
    out = tmp_path / "out"
    work = layout.new_work_dir(out, "case")
    (work / "volumetry.csv").write_text("study_id,volume_ml\ncase,1.5\n")
    outputs = records.hash_outputs(work)
    final = layout.finalize(work, layout.study_dir(out, "case"))
    records.write_done(final, study, KEY, fingerprint=records.input_fingerprint(study), outputs=outputs)
    assert study_state(final, KEY, records.input_fingerprint(study)).status == "done"
    st = os.stat(src)
    other = tmp_path / "other"
    write(other, b"BBBB-image")  # another study's bytes, same size
    shutil.copyfile(other, src)
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns))  # mtime restored
    assert (os.stat(src).st_size, os.stat(src).st_mtime_ns) == (st.st_size, st.st_mtime_ns)
    state = study_state(final, KEY, records.input_fingerprint(study))
    assert (state.status, state.reason) == ("stale", "input changed")
