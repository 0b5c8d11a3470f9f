"""TotalSegmentator's three-slab split: volseg ``-m total_mr`` against TotalSegmentator 2.18 itself on an
image big enough to trigger it (512 x 512 x 902 voxels at 1.5 mm), with tiny fabricated networks.

The synthetic image (``benchmarks.parity.fabricate.synthetic_input``) is zero outside a narrow column
through every slice, so nnU-Net's non-zero crop keeps each slab's network run small; the split itself
(condition, overlap, stitching) is decided on the image size. Per-slab z-score normalisation (MR) makes
a wrong slab or seam visible. Needs TotalSegmentator's own virtual environment; skips without it.
It holds ~3 GB per program in memory: run on demand (VOLSEG_LONG_PARITY=1).
"""
from __future__ import annotations

import os

import pytest
from benchmarks.parity import totalseg

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.environ.get("VOLSEG_LONG_PARITY") != "1",
                       reason="runs both programs for minutes: set VOLSEG_LONG_PARITY=1 to run it"),
]


def test_total_mr_split_matches_totalsegmentator(ts_venv, tmp_path):
    row = totalseg.run_row("total_mr", "synthetic/split-mr.nii.gz", tmp_path, ts_venv, near_ties=False)
    assert row["same_grid"], row["notes"]
    assert row["same_labels"], row["notes"]
    assert row["agreement_pct"] >= 99.9, row["notes"]
