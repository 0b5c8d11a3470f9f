"""Small synthetic cohorts for the batch tests: phantom CTs with known, distinct volumes."""
from __future__ import annotations

import csv
import os
import signal
from pathlib import Path

from volseg.io import read_image
from volseg.io.nifti import write_nifti
from volseg.phantom import make_phantom

SHAPE = (64, 64, 48)


def write_cohort(folder: Path, n: int, *, names: list[str] | None = None) -> list[Path]:
    """``n`` phantom CTs (64×64×48, spacing varied per case so that every volume differs)."""
    folder.mkdir(parents=True, exist_ok=True)
    names = names or [f"case_{i:02d}.nii.gz" for i in range(n)]
    paths = []
    for i, name in enumerate(names):
        phantom = make_phantom(SHAPE, (5.0 + 0.15 * i, 4.2 - 0.05 * i, 5.0), seed=i)
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        paths.append(write_nifti(phantom.image, path))
    return paths


def truncate(path: Path) -> Path:
    """Cut a .nii.gz in the middle of its compressed stream (a broken copy)."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def volumetry(out: Path, study_ids=None) -> dict[str, str]:
    """{study id: volumetry.csv text} of every study folder under ``out``."""
    found = {p.parent.name: p.read_text() for p in sorted(out.glob("*/volumetry.csv"))}
    if study_ids is not None:
        assert sorted(found) == sorted(study_ids)
    return found


def cohort_table(out: Path) -> tuple[list[str], list[dict[str, str]]]:
    """cohort_volumetry.csv as (header, rows), without its one run-dependent column (created_utc)."""
    with open(out / "cohort_volumetry.csv", newline="") as fh:
        reader = csv.DictReader(fh)
        rows = [{k: v for k, v in row.items() if k != "created_utc"} for row in reader]
        header = [c for c in reader.fieldnames or [] if c != "created_utc"]
    assert (out / "cohort_volumetry.csv").read_text().splitlines()[0].split(",")[:8] == [
        "study_id", "report", "schema_version", "model", "model_version", "device", "created_utc", "n_structures"]
    return header, rows


def leftovers(out: Path) -> list[str]:
    """Temp files and work folders anywhere under ``out`` (none may survive a finished run)."""
    bad = []
    for path in out.rglob("*"):
        if path.name.startswith((".tmp-", ".volseg-work", ".volseg-write-test")) or ".volseg-work" in path.parts:
            bad.append(str(path.relative_to(out)))
    return bad


def read_or_crash(path, *, series=None):
    """A reader for the tests: segfaults on files whose name contains 'segv', else reads normally."""
    if "segv" in Path(path).name:
        os.kill(os.getpid(), signal.SIGSEGV)
    return read_image(path, series=series)
