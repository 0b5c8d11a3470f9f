"""Study discovery: which files are studies, their ids (from relative paths) and their order."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from volseg.batch.discover import assign_ids, discover_studies, sanitise
from volseg.errors import UsageError


def _touch(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _itk(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((3, 4, 5), np.int16)), str(path))
    return path


def test_finds_image_files_anywhere_and_nothing_else(tmp_path):
    root = tmp_path / "in"
    _touch(root / "a.nii.gz")
    _touch(root / "sub" / "b.nii")
    _itk(root / "sub" / "deep" / "c.nrrd")
    _itk(root / "d.mhd")  # writes d.mhd + d.raw: one study
    _itk(root / "e.mha")
    _touch(root / "notes.txt")
    _touch(root / "table.csv")
    _touch(root / ".hidden" / "x.nii.gz")
    _touch(root / ".partial.nii.gz")
    _touch(root / "out" / "old" / "segmentation.nii.gz")  # the output folder inside the input
    studies = discover_studies(root, exclude=root / "out")
    assert [s.study_id for s in studies] == ["a", "d", "e", "sub__b", "sub__deep__c"]
    assert [s.rel_path for s in studies] == ["a.nii.gz", "d.mhd", "e.mha", "sub/b.nii", "sub/deep/c.nrrd"]
    assert [s.kind for s in studies] == ["nifti", "itk", "itk", "nifti", "itk"]
    assert all(Path(s.path).is_absolute() and s.series is None for s in studies)


def test_ids_are_sanitised_unique_and_stable(tmp_path):
    root = tmp_path / "in"
    for rel in ("site A/pt#1.nii.gz", "x.nii.gz", "x.nrrd", "logs.nii.gz", "y.nii.gz"):
        _touch(root / rel)
    first = {s.rel_path: s.study_id for s in discover_studies(root)}
    assert first["site A/pt#1.nii.gz"] == "site_A__pt_1"
    assert first["y.nii.gz"] == "y"
    # x.nii.gz and x.nrrd would both be "x": each gets a hash of its own relative path
    assert first["x.nii.gz"] != first["x.nrrd"]
    assert first["x.nii.gz"].startswith("x-") and first["x.nrrd"].startswith("x-")
    assert first["logs.nii.gz"].startswith("logs-")  # the batch's own log folder is reserved
    assert len(set(first.values())) == len(first)
    _touch(root / "z.nii.gz")  # a new study does not rename the others
    second = {s.rel_path: s.study_id for s in discover_studies(root)}
    assert {k: second[k] for k in first} == first


def test_sanitise_and_assign_ids_known_answers():
    assert sanitise("a/b c/d") == "a__b_c__d"
    assert sanitise("../.hidden") == "_hidden"  # never a hidden or parent folder name
    assert sanitise("ünïcode/scan 1") == "n_code__scan_1"
    assert assign_ids(["a", "b"]) == ["a", "b"]
    ids = assign_ids(["a b", "a_b"])
    assert ids[0] != ids[1] and all(i.startswith("a_b-") for i in ids)
    assert assign_ids(["a b", "a_b"]) == ids  # deterministic


def test_order_is_by_id_whatever_the_file_system_order(tmp_path):
    root = tmp_path / "in"
    for name in ("c.nii.gz", "a.nii.gz", "b/a.nii.gz", "B.nii.gz"):
        _touch(root / name)
    ids = [s.study_id for s in discover_studies(root)]
    assert ids == sorted(ids) == ["B", "a", "b__a", "c"]


def test_not_a_folder(tmp_path):
    with pytest.raises(UsageError, match="not a folder"):
        discover_studies(_touch(tmp_path / "one.nii.gz"))
