"""TotalSegmentator users' habits: -i, --fast, --roi-subset, --masks, -o X.nii.gz, measure a masks folder."""
from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from volseg.cli.main import main
from volseg.errors import ModelError, UsageError
from volseg.options import SegmentOptions

CLASSIC = ["-m", "classic-ct", "-d", "cpu", "--no-html"]


@pytest.fixture(scope="module")
def ct(tmp_path_factory):
    from volseg.io.nifti import write_nifti
    from volseg.phantom import make_phantom

    folder = tmp_path_factory.mktemp("ct")
    return write_nifti(make_phantom((80, 64, 40), (4.0, 4.0, 6.0)).image, folder / "ct.nii.gz")


@pytest.fixture()
def seen(monkeypatch):
    """api.segment_many replaced: records its inputs, output and options."""
    from volseg import api

    calls = {}

    def fake(inputs, out_dir, *, options, progress=None, **_):
        calls.update(inputs=[str(p) for p in inputs], out=str(out_dir), options=options)
        return []

    monkeypatch.setattr(api, "segment_many", fake)
    return calls


# ---- -i/--input ---------------------------------------------------------------------------------
def test_input_option_is_an_alias_of_the_positional_input(seen):
    assert main(["segment", "-i", "a.nii.gz", "-o", "out"]) == 0
    assert seen["inputs"] == ["a.nii.gz"]
    assert main(["segment", "a.nii.gz", "--input", "b.nii.gz", "-i", "c.nii.gz", "-o", "out"]) == 0
    assert seen["inputs"] == ["a.nii.gz", "b.nii.gz", "c.nii.gz"]


def test_no_input_at_all_is_a_usage_error(seen, capsys):
    assert main(["segment", "-o", "out"]) == 2
    assert "no input given" in capsys.readouterr().err and not seen


def test_flags_reach_the_options(seen):
    assert main(["segment", "-i", "a.nii.gz", "-o", "o", "--fast", "--roi_subset", "liver, spleen",
                 "--masks"]) == 0
    options = seen["options"]
    assert (options.fast, options.roi_subset, options.masks) == (True, ("liver", "spleen"), True)
    assert main(["segment", "-i", "a.nii.gz", "-o", "o"]) == 0
    assert (seen["options"].fast, seen["options"].roi_subset, seen["options"].masks) == (False, None, False)


def test_roi_subset_option_parsing():
    assert SegmentOptions(roi_subset="a,b,a").roi_subset == ("a", "b")
    assert SegmentOptions(roi_subset=("a", "b,c")).roi_subset == ("a", "b", "c")
    with pytest.raises(UsageError, match="names no class"):
        SegmentOptions(roi_subset=" , ")


# ---- --fast ---------------------------------------------------------------------------------------
def test_fast_variant_is_catalogue_data():
    from volseg.segmenters.catalogue import fast_variant, load_catalogue
    from volseg.segmenters.subset import resolve_model

    assert load_catalogue()["total"].fast_variant == "total-fast"
    assert fast_variant("total") == "total-fast"
    assert resolve_model(SegmentOptions(model="total", fast=True)) == "total-fast"
    assert resolve_model(SegmentOptions(model="total")) == "total"
    with pytest.raises(UsageError, match="model 'classic-ct' has no fast variant.*total"):
        resolve_model(SegmentOptions(model="classic-ct", fast=True))


def test_fast_without_a_model_applies_to_the_default_one(monkeypatch):
    from volseg.segmenters import registry
    from volseg.segmenters.subset import resolve_model

    monkeypatch.setattr(registry, "default_model", lambda: "total")
    assert resolve_model(SegmentOptions(fast=True)) == "total-fast"


def test_fast_variant_must_name_an_existing_entry(monkeypatch):
    from volseg.segmenters import catalogue

    entry = catalogue.load_catalogue()["total"]
    with pytest.raises(ModelError, match="fast variant 'total-fastest' is not catalogued"):
        catalogue._check_fast_variants({"total": entry.model_copy(update={"fast_variant": "total-fastest"})})
    raw = json.loads((catalogue.SCHEMA_PATH.parent / "models" / "total.json").read_text())
    with pytest.raises(ModelError, match="its own fast variant"):
        catalogue.parse_entry(json.dumps({**raw, "fast_variant": "total"}))


def test_fast_on_a_model_without_variant_exits_2(ct, tmp_path, capsys):
    assert main(["segment", str(ct), "-o", str(tmp_path / "out"), *CLASSIC, "--fast"]) == 2
    err = capsys.readouterr().err
    assert "model 'classic-ct' has no fast variant" in err and "Traceback" not in err


# ---- -o X.nii.gz, --roi-subset, --masks -------------------------------------------------------------
def test_output_naming_a_nifti_file_writes_that_file(ct, tmp_path):
    target = tmp_path / "out" / "seg.nii.gz"
    assert main(["segment", str(ct), "-o", str(target), *CLASSIC]) == 0
    assert target.is_file() and not (tmp_path / "out" / "segmentation.nii.gz").exists()
    assert (tmp_path / "out" / "report.json").is_file() and (tmp_path / "out" / "volumetry.csv").is_file()
    assert nib.load(target).shape == nib.load(ct).shape


def test_output_file_with_several_inputs_is_a_usage_error(ct, tmp_path, capsys):
    assert main(["segment", str(ct), str(ct), "-o", str(tmp_path / "seg.nii.gz"), *CLASSIC]) == 2
    assert "names one label map but 2 inputs" in capsys.readouterr().err
    assert not (tmp_path / "seg.nii.gz").exists()


def test_roi_subset_writes_and_measures_only_those_with_original_indices(ct, tmp_path):
    out = tmp_path / "out"
    assert main(["segment", str(ct), "-o", str(out), *CLASSIC, "--roi-subset", "lung_left,lung_right"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert [s["name"] for s in report["structures"]] == ["lung_left", "lung_right"]
    assert [s["label"] for s in report["structures"]] == [2, 3]  # classic-ct's own indices
    assert report["provenance"]["options"]["roi_subset"] == ["lung_left", "lung_right"]
    saved = np.asarray(nib.load(out / "segmentation.nii.gz").dataobj)
    assert set(np.unique(saved)) == {0, 2, 3}
    assert [line.split(",")[2] for line in (out / "volumetry.csv").read_text().splitlines()[1:]] == \
        ["lung_left", "lung_right"]
    assert [lab["name"] for lab in json.loads((out / "labels.json").read_text())["labels"]] == \
        ["lung_left", "lung_right"]


def test_unknown_roi_name_is_a_usage_error_with_did_you_mean(ct, tmp_path, capsys):
    assert main(["segment", str(ct), "-o", str(tmp_path / "out"), *CLASSIC, "--roi-subset", "lung_lef"]) == 2
    err = capsys.readouterr().err
    assert "has no class 'lung_lef'" in err and "did you mean 'lung_left'?" in err


def test_masks_writes_one_binary_file_per_class_on_the_label_map_grid(ct, tmp_path):
    target = tmp_path / "out" / "seg.nii.gz"
    assert main(["segment", str(ct), "-o", str(target), *CLASSIC, "--masks"]) == 0
    labels = nib.load(target)
    label_array = np.asarray(labels.dataobj)
    names = [lab["name"] for lab in json.loads((tmp_path / "out" / "labels.json").read_text())["labels"]]
    files = sorted((tmp_path / "out" / "segmentations").iterdir())
    assert [f.name for f in files] == sorted(f"{n}.nii.gz" for n in names)  # every class, empty ones too
    for index, name in enumerate(names, start=1):
        mask = nib.load(tmp_path / "out" / "segmentations" / f"{name}.nii.gz")
        assert mask.get_data_dtype() == np.uint8 and np.array_equal(mask.affine, labels.affine)
        assert np.array_equal(np.asarray(mask.dataobj), (label_array == index).astype(np.uint8))


def test_measure_a_masks_folder_gives_the_same_volumes(ct, tmp_path):
    out = tmp_path / "out"
    assert main(["segment", str(ct), "-o", str(out), *CLASSIC, "--masks",
                 "--roi-subset", "lung_right,lung_left"]) == 0
    assert sorted(p.name for p in (out / "segmentations").iterdir()) == ["lung_left.nii.gz",
                                                                         "lung_right.nii.gz"]
    assert main(["measure", str(out / "segmentations"), "--image", str(ct), "-o", str(tmp_path / "m")]) == 0
    segmented = json.loads((out / "report.json").read_text())["structures"]
    measured = json.loads((tmp_path / "m" / "report.json").read_text())["structures"]
    assert {s["name"]: s["voxel_count"] for s in measured} == {s["name"]: s["voxel_count"] for s in segmented}
    assert all(s["voxel_count"] > 0 for s in measured)


def test_real_ct_with_roi_subset_masks_and_file_output(shared_data, tmp_path):
    example = shared_data / "totalseg-example"
    target = tmp_path / "out" / "seg.nii.gz"
    assert main(["segment", str(example / "example_ct.nii.gz"), "-o", str(target), *CLASSIC,
                 "--roi-subset", "lung_left,lung_right", "--masks"]) == 0
    assert target.is_file()
    assert sorted(p.name for p in (tmp_path / "out" / "segmentations").iterdir()) == \
        ["lung_left.nii.gz", "lung_right.nii.gz"]
    assert main(["measure", str(tmp_path / "out" / "segmentations"), "--image",
                 str(example / "example_ct.nii.gz"), "-o", str(tmp_path / "m")]) == 0
    names = [s["name"] for s in json.loads((tmp_path / "m" / "report.json").read_text())["structures"]]
    assert names == ["lung_left", "lung_right"]
