"""Shared fixtures. Real data comes only through ``shared_data``; everything else is synthetic."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _shared_data_dir() -> Path:
    env = os.environ.get("VOLSEG_SHARED_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (or $VOLSEG_SHARED_DATA): real CTs, DICOM series, labels and weights.

    Skips the test, with the reason, when the folder is absent (CI always has it).
    """
    path = _shared_data_dir()
    if not (path / "README.md").is_file():
        pytest.skip(f"real test data not found at {path} (set VOLSEG_SHARED_DATA or check out ../shared)")
    return path
