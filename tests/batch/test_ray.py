"""`--executor ray` on a local Ray cluster started by the test: the same tables as the local executor."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

import volseg
from tests.batch.cohort import cohort_table, leftovers, volumetry, write_cohort
from volseg import api
from volseg.batch import BatchOptions
from volseg.errors import DependencyError
from volseg.options import SegmentOptions

NO_HTML = SegmentOptions(html=False)  # BatchOptions(segment=NO_HTML): no report.html

REPO = Path(__file__).resolve().parents[2]


def test_missing_ray_is_a_dependency_error(tmp_path, monkeypatch):
    write_cohort(tmp_path / "in", 1)
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray → ImportError
    with pytest.raises(DependencyError, match="Ray") as info:
        api.batch(tmp_path / "in", tmp_path / "out", options=BatchOptions(executor="ray"))
    assert "volseg[ray]" in info.value.one_line()


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    src = Path(volseg.__file__).resolve().parents[1]
    path = os.pathsep.join([str(src), str(REPO), os.environ.get("PYTHONPATH", "")])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": path}})
    try:
        yield ray
    finally:
        ray.shutdown()


@pytest.mark.slow
def test_ray_executor_gives_the_same_tables(ray_cluster, tmp_path):
    cohort = tmp_path / "in"
    write_cohort(cohort, 5, names=["a.nii.gz", "b.nii.gz", "c_segv.nii.gz", "d.nii.gz", "e.nii.gz"])
    reader = "tests.batch.cohort:read_or_crash"
    local = api.batch(cohort, tmp_path / "local", options=BatchOptions(reader=reader, segment=NO_HTML))
    events = []
    summary = api.batch(cohort, tmp_path / "ray", options=BatchOptions(executor="ray", reader=reader, segment=NO_HTML),
                        on_event=events.append)
    assert sorted(summary.done) == sorted(local.done) == ["a", "b", "d", "e"]
    (failed,) = summary.failed  # a reader segfault inside an actor fails one study, not the actor
    assert failed.study_id == "c_segv" and failed.error_class == "ReaderCrash" and "SIGSEGV" in failed.error
    assert summary.exit_code == 3
    assert volumetry(tmp_path / "ray") == volumetry(tmp_path / "local")
    assert cohort_table(tmp_path / "ray") == cohort_table(tmp_path / "local")
    assert leftovers(tmp_path / "ray") == []
    assert ray_cluster.is_initialized()  # a cluster the caller started is left running
    rerun = api.batch(cohort, tmp_path / "ray", options=BatchOptions(executor="ray", reader=reader, segment=NO_HTML))
    assert not rerun.done and sorted(rerun.skipped) == ["a", "b", "d", "e"]
