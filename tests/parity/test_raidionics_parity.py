"""``-m raidionics-mri-gbm`` against ``raidionicsseg`` itself (its own venv) on the same fabricated
ONNX networks and the MR example: every voxel the same, same grid (benchmarks/parity/raidionics.py
runs all six entries)."""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
VENV = Path(os.environ.get("VOLSEG_PEER_RAIDIONICS_VENV", "/work/peers/raidionics-venv"))

pytest.importorskip("onnxruntime")
if not (VENV / "bin" / "python").is_file():
    pytest.skip(f"no raidionicsseg virtual environment at {VENV} (python3 -m venv {VENV}; "
                f"{VENV}/bin/pip install raidionicsseg; or set VOLSEG_PEER_RAIDIONICS_VENV)", allow_module_level=True)


def _module():
    spec = importlib.util.spec_from_file_location("parity_raidionics", REPO / "benchmarks" / "parity" / "raidionics.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_brain_tumour_model_matches_raidionicsseg(shared_data, tmp_path, monkeypatch):
    monkeypatch.setenv("VOLSEG_SHARED_DATA", str(shared_data))
    monkeypatch.setenv("VOLSEG_HOME", str(tmp_path / "home"))
    parity = _module()
    row = parity.compare("raidionics-mri-gbm", tmp_path, ties=False)
    assert row["same_grid"] and row["same_labels"], row
    assert row["agreement_pct"] >= 99.9, row
    assert row["disagreements_all_near_ties"], row
