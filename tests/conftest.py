"""Shared fixtures. Real data comes only through ``shared_data``; everything else is synthetic."""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
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


@pytest.fixture(scope="session")
def ts_venv() -> Path:
    """TotalSegmentator 2.18's own virtual environment, for the parity tests (``VOLSEG_PEER_TS_VENV``,
    default ``/work/peers/ts-venv``; ``benchmarks/parity/make_venvs.sh`` makes it). Skips without it."""
    from benchmarks.parity import totalseg  # the repository root is on the path (tests is a package)

    found = totalseg.ts_venv()
    if found is None or not (found / "bin" / "TotalSegmentator").exists():
        pytest.skip("no TotalSegmentator venv: set VOLSEG_PEER_TS_VENV to one with TotalSegmentator 2.18 installed "
                    "(benchmarks/parity/make_venvs.sh)")
    return found


@dataclass(frozen=True)
class CliRun:
    """What one in-process ``volseg`` call gave: exit code and the text it wrote on stdout/stderr."""

    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(capfd) -> Callable[..., CliRun]:
    """``cli("segment", path, "-o", out)`` runs the CLI in this process (``volseg.cli.main.main``,
    which returns the exit code) and returns a :class:`CliRun`, like ``subprocess.run`` would, without
    starting an interpreter. Output is captured at the file descriptors (``capfd``), so Rich's
    consoles, logging and anything a library writes are all caught."""
    from volseg.cli.main import main

    def run(*args: object) -> CliRun:
        capfd.readouterr()  # only this call's output
        code = main([str(a) for a in args])
        out, err = capfd.readouterr()
        return CliRun(code, out, err)

    return run
