"""DICOM in a batch: one study per series, ids from folders (never patient tags), no identifiers out."""
from __future__ import annotations

import json
import shutil

import pytest

from tests.factories.dicom_series import BIRTH_DATE, PATIENT_ID, PATIENT_NAME, write_series
from volseg import api
from volseg.batch import BatchOptions, discover_studies
from volseg.options import SegmentOptions
from volseg.phantom import make_phantom

NO_HTML = SegmentOptions(html=False)  # BatchOptions(segment=NO_HTML): no report.html

IDENTIFIERS = (PATIENT_NAME, "ZEBEDEE", PATIENT_ID, BIRTH_DATE, "ACC-ZEBEDEE-77")


def _ct(seed: int, shape=(48, 48, 24)):
    phantom = make_phantom(shape, (7.0, 5.5, 10.0), seed=seed)
    return phantom.image.array, phantom.image.affine


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """in/pat/two/ holds series #1 and #2; in/pat/one/ one series; in/split/ one series in 2 folders."""
    root = tmp_path_factory.mktemp("dicom") / "in"
    for number, prefix in ((1, "A"), (2, "B")):
        array, affine = _ct(number)
        write_series(root / "pat" / "two", array, affine, series_number=number, prefix=prefix, seed=number)
    array, affine = _ct(3)
    write_series(root / "pat" / "one", array, affine, series_number=7)
    written = write_series(root / "split" / "part1", *_ct(4), series_number=3)
    (root / "split" / "part2").mkdir()
    for f in written.files[::2]:
        shutil.move(str(f), root / "split" / "part2" / f.name)
    (root / "pat" / "one" / "notes.txt").write_text("not an image")
    return root


def test_one_study_per_series_named_from_folders(tree):
    studies = discover_studies(tree)
    assert [s.study_id for s in studies] == ["pat__one", "pat__two__s1", "pat__two__s2", "split"]
    assert all(s.kind == "dicom" and s.series for s in studies)
    assert [s.rel_path for s in studies] == ["pat/one", "pat/two", "pat/two", "split"]
    text = repr([s.study_id for s in studies])
    assert not any(i in text for i in IDENTIFIERS)


def test_batch_on_dicom_series(tree, tmp_path):
    out = tmp_path / "out"
    summary = api.batch(tree, out, options=BatchOptions(segment=NO_HTML))
    assert sorted(summary.done) == ["pat__one", "pat__two__s1", "pat__two__s2", "split"], summary.failed
    # the split series is read whole from its common folder (24 slices, not 12)
    split = json.loads((out / "split" / "report.json").read_text())
    assert split["input"]["shape"] == [48, 48, 24] and split["input"]["n_files"] == 24
    # the same series segmented alone gives the same table (apart from the study id column)
    alone = api.segment(tree / "pat" / "two", tmp_path / "alone", options=api.SegmentOptions(series="2", html=False))
    ours = (out / "pat__two__s2" / "volumetry.csv").read_text()
    assert ours.replace("pat__two__s2,", "two,") == alone.outputs["volumetry"].read_text()
    for path in out.rglob("*"):
        if path.is_file() and path.suffix in (".json", ".csv", ".log"):
            text = path.read_text()
            assert not any(i in text for i in IDENTIFIERS), path


def test_a_dicom_study_whose_pixels_are_broken_fails_alone(tmp_path):
    root = tmp_path / "in"
    good = write_series(root / "good", *_ct(5), series_number=1)
    bad = write_series(root / "bad", *_ct(6), series_number=1)
    victim = bad.files[len(bad.files) // 2]
    victim.write_bytes(victim.read_bytes()[:-3000])  # pixel data cut short
    summary = api.batch(root, tmp_path / "out", options=BatchOptions(segment=NO_HTML))
    assert summary.done == ("good",)
    (failure,) = summary.failed
    assert failure.study_id == "bad" and failure.error_class == "InputError"
    assert victim.name in failure.error and str(root) not in failure.error
    assert not any(i in failure.error for i in IDENTIFIERS)
    report = json.loads((tmp_path / "out" / "good" / "report.json").read_text())
    assert report["input"]["shape"] == list(good.array.shape)
