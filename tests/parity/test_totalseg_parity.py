"""volseg ``-m total-fast`` against TotalSegmentator 2.18 itself, on the same tiny fabricated weights.

The weights are random networks under TotalSegmentator's real folder and trainer names, packed as its
release zips, installed by ``volseg models download`` from a loopback mirror and unpacked into a
``TOTALSEG_HOME_DIR``; both programs then segment the same small CT. Needs TotalSegmentator's own
virtual environment (``VOLSEG_PEER_TS_VENV``, default ``/work/peers/ts-venv``); skips without it.
"""
from __future__ import annotations

import pytest
from benchmarks.parity import totalseg  # the repository root is on the path (tests is a package)

pytestmark = pytest.mark.slow


def test_total_fast_matches_totalsegmentator(ts_venv, shared_data, tmp_path):
    src = "totalseg-example/example_ct_sm.nii.gz"
    if not (shared_data / src).exists():
        pytest.skip(f"{src} is not in the shared data")
    row = totalseg.run_row("total-fast", src, tmp_path, ts_venv, near_ties=False, data=shared_data)
    assert row["same_grid"], row["notes"]
    assert row["same_labels"], row["notes"]
    # TS-size fabricated networks reach >= 99.9 % (python -m benchmarks.parity --full-size: 99.946 % on
    # chest-ct-dicom, every differing voxel a near-tie). Tiny ones stay just under it: nnU-Net 2.8
    # accumulates the blended windows in float16, volseg in float32, and these noisy networks have many
    # near-ties. The floor below catches any real regression (wrong step, resampling, orientation or
    # blending weights each cost >= 0.5 %).
    assert row["agreement_pct"] >= 99.8, row["notes"]
    assert "catalogue URL" not in row["notes"] and "members differ" not in row["notes"], row["notes"]
