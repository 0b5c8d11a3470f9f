"""volseg ``-m lung_nodules`` (a crop cascade) against TotalSegmentator 2.18 ``--task lung_nodules``.

Same fabricated weights for both (a tiny random subtask network, a hand-built crop model that labels
the densest voxels as lung lobes: see :mod:`benchmarks.parity.totalseg_subtasks`), installed by
``volseg models download`` from a loopback mirror and unpacked into a ``TOTALSEG_HOME_DIR``. Needs
TotalSegmentator's own virtual environment (``VOLSEG_TS_VENV`` or ``VOLSEG_PEER_TS_VENV``, default
``/work/peers/ts-venv``); skips without it.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from benchmarks.parity import totalseg, totalseg_subtasks  # the repository root is on the path

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.environ.get("VOLSEG_LONG_PARITY") != "1",
                       reason="runs both programs for minutes: set VOLSEG_LONG_PARITY=1 to run it"),
]


@pytest.fixture(scope="module")
def venv() -> Path:
    given = os.environ.get("VOLSEG_TS_VENV")
    found = Path(given) if given else totalseg.ts_venv()
    if found is None or not (found / "bin" / "TotalSegmentator").exists():
        pytest.skip("no TotalSegmentator venv: set VOLSEG_TS_VENV to one with TotalSegmentator 2.18 installed")
    return found


def test_lung_nodules_cascade_matches_totalsegmentator(venv, shared_data, tmp_path):
    src = "totalseg-example/example_ct_sm.nii.gz"
    if not (shared_data / src).exists():
        pytest.skip(f"{src} is not in the shared data")
    row = totalseg_subtasks.run_row("lung_nodules", src, tmp_path, venv, data=shared_data)
    assert "TS cropping from" in row["notes"], row["notes"]  # TotalSegmentator did crop
    assert row["same_grid"] and row["same_labels"], row["notes"]
    assert "differs from TotalSegmentator" not in row["notes"] and "catalogue URL" not in row["notes"], row["notes"]
    assert row["agreement_pct"] >= 99.9, row["notes"]
