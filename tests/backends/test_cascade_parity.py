"""volseg ``-m lung_nodules`` (a crop cascade) against TotalSegmentator 2.18 ``--task lung_nodules``.

Same fabricated weights for both (a tiny random subtask network, a hand-built crop model that labels
the densest voxels as lung lobes: see :mod:`benchmarks.parity.totalseg_subtasks`), installed by
``volseg models download`` from a loopback mirror and unpacked into a ``TOTALSEG_HOME_DIR``. Needs
TotalSegmentator's own virtual environment (the ``ts_venv`` fixture); skips without it.
"""
from __future__ import annotations

import os

import pytest
from benchmarks.parity import totalseg_subtasks  # the repository root is on the path

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.environ.get("VOLSEG_LONG_PARITY") != "1",
                       reason="runs both programs for minutes: set VOLSEG_LONG_PARITY=1 to run it"),
]


def test_lung_nodules_cascade_matches_totalsegmentator(ts_venv, shared_data, tmp_path):
    src = "totalseg-example/example_ct_sm.nii.gz"
    if not (shared_data / src).exists():
        pytest.skip(f"{src} is not in the shared data")
    row = totalseg_subtasks.run_row("lung_nodules", src, tmp_path, ts_venv, data=shared_data)
    assert "TS cropping from" in row["notes"], row["notes"]  # TotalSegmentator did crop
    assert row["same_grid"] and row["same_labels"], row["notes"]
    assert "differs from TotalSegmentator" not in row["notes"] and "catalogue URL" not in row["notes"], row["notes"]
    assert row["agreement_pct"] >= 99.9, row["notes"]
