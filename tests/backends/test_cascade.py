"""The crop cascade of TotalSegmentator's subtasks (volseg.segmenters.cascade): box, margins, cut,
put-back, the missing crop model, and a tiny end-to-end cascade with nnU-Net models."""
from __future__ import annotations

import numpy as np
import pytest

from volseg.errors import ModelError
from volseg.labels import LabelTable
from volseg.segmenters.cascade import (
    CascadeSegmenter,
    CropBox,
    crop_box,
    crop_volume,
    margin_voxels,
    put_back,
)
from volseg.segmenters.catalogue import Cascade, get_entry
from volseg.segmenters.provenance import ModelProvenance
from volseg.volume import Volume

AFFINE = np.array([[-0.7, 0, 0, 100.0], [0, -0.7, 0, 50.0], [0, 0, 2.5, -300.0], [0, 0, 0, 1]])
LOBES = ("lung_upper_lobe_left", "lung_lower_lobe_left", "lung_upper_lobe_right", "lung_middle_lobe_right",
         "lung_lower_lobe_right")


def test_mm_margins_become_truncated_voxels_as_in_totalsegmentator():
    # cropping.crop_to_mask: (np.array(addon) / zooms).astype(int)
    cascade = Cascade(model="total-fast", classes=("liver",), margin=(20, 20, 20), margin_unit="mm")
    assert margin_voxels(cascade, (0.7, 0.7, 2.5)) == (28, 28, 8)  # 28.57 → 28, 8.0 → 8
    assert margin_voxels(cascade, (0.75, 0.8, 3.0)) == (26, 25, 6)  # 26.67, 25.0, 6.67
    voxels = Cascade(model="total-fast", classes=("liver",), margin=(3, 2, 1), margin_unit="voxel")
    assert margin_voxels(voxels, (0.7, 0.7, 2.5)) == (3, 2, 1)
    assert margin_voxels(Cascade(model="total-fast", classes=("liver",)), (1, 1, 1)) == (0, 0, 0)


def test_a_margin_needs_its_unit():
    with pytest.raises(ValueError, match="margin_unit"):
        Cascade(model="total-fast", classes=("liver",), margin=(3, 3, 3))


def test_box_is_the_mask_bounds_plus_margin_clipped_to_the_image():
    mask = np.zeros((40, 30, 10), dtype=bool)
    mask[10:20, 5:8, 3] = True
    mask[12, 6, 4] = True
    # get_bbox_from_mask: [min - addon, max + 1 + addon), clipped to [0, shape]
    assert crop_box(mask, (3, 3, 3)) == CropBox((7, 2, 0), (23, 11, 8))
    assert crop_box(mask, (0, 0, 0)) == CropBox((10, 5, 3), (20, 8, 5))
    assert crop_box(mask, (50, 50, 50)) == CropBox((0, 0, 0), (40, 30, 10))
    assert crop_box(np.zeros((4, 4, 4), bool), (1, 1, 1)) is None


def test_the_cut_keeps_its_place_in_the_patient_and_truncates_to_int32():
    array = np.arange(8 * 6 * 4, dtype=np.float32).reshape(8, 6, 4) - 100.5
    volume = Volume(array, AFFINE, {"modality": "CT"})
    box = CropBox((2, 1, 1), (6, 5, 3))
    cut = crop_volume(volume, box, cast="int32")
    assert cut.shape == (4, 4, 2) and cut.dtype == np.int32
    # voxel (0, 0, 0) of the cut is voxel (2, 1, 1) of the input
    assert np.allclose(cut.affine @ [0, 0, 0, 1], AFFINE @ [2, 1, 1, 1])
    assert np.allclose(cut.affine[:3, :3], AFFINE[:3, :3])
    assert cut.array[0, 0, 0] == int(np.trunc(array[2, 1, 1]))  # -100.5 + 29 = -71.5 → -71
    assert cut.meta["modality"] == "CT"
    assert crop_volume(volume, box).dtype == np.float32


def test_labels_go_back_on_the_full_grid_with_zeros_outside():
    like = Volume(np.zeros((8, 6, 4), np.int16), AFFINE)
    box = CropBox((2, 1, 1), (6, 5, 3))
    labels = Volume(np.full((4, 4, 2), 3, np.uint8), np.eye(4))
    full = put_back(labels, box, like)
    assert full.shape == like.shape and np.array_equal(full.affine, like.affine)
    assert full.array[box.slices].min() == 3 and int(full.array.sum()) == 3 * 4 * 4 * 2
    with pytest.raises(ModelError, match="do not fit"):
        put_back(Volume(np.zeros((3, 3, 3), np.uint8), np.eye(4)), box, like)


class _Fake:
    """A segmenter whose labels are given (crop model) or constant (the model on the cut)."""

    def __init__(self, name, names, labels=None, value=1):
        self.name, self.entry = name, None
        self.labels = LabelTable.from_names(names)
        self.fixed, self.value, self.seen = labels, value, []

    def predict(self, volume, *, modality=None, progress=None):
        self.seen.append(volume)
        array = self.fixed if self.fixed is not None else np.full(volume.shape, self.value, np.uint8)
        return Volume(array, volume.affine)

    def provenance(self):
        return ModelProvenance(name=self.name, version="1", backend="fake", device="cpu")


def test_the_model_runs_on_the_crop_models_region_only():
    image = Volume(np.full((30, 20, 12), 40, np.int16), AFFINE, {"modality": "CT"})
    first = np.zeros(image.shape, np.uint8)
    first[10:15, 8:9, 5:7] = 2  # liver
    first[0:3, 0:2, 0:2] = 1  # spleen: not a crop class
    crop_model = _Fake("total-fast", {1: "spleen", 2: "liver"}, labels=first)
    inner = _Fake("liver_lesions", {1: "liver_tumor"}, value=1)
    cascade = Cascade(model="total-fast", classes=("liver",), margin=(1.4, 1.5, 2.5), margin_unit="mm")
    seg = CascadeSegmenter(inner, crop_model, cascade)
    out = seg.predict(image)
    # margins: 1.4/0.7 = 2, 1.5/0.7 = 2.14 → 2, 2.5/2.5 = 1
    box = CropBox((8, 6, 4), (17, 11, 8))
    assert inner.seen[0].shape == box.shape
    assert np.allclose(inner.seen[0].affine @ [0, 0, 0, 1], AFFINE @ [8, 6, 4, 1])
    expected = np.zeros(image.shape, np.uint8)
    expected[box.slices] = 1
    assert np.array_equal(out.array, expected) and np.array_equal(out.affine, image.affine)
    details = seg.provenance().as_dict()["cascade"]
    assert details["crop_model"] == "total-fast" and details["crop_box"] == box.as_dict()


def test_no_crop_class_found_gives_no_labels_without_running_the_model():
    image = Volume(np.zeros((6, 6, 6), np.int16), AFFINE)
    crop_model = _Fake("total-fast", {1: "liver"}, labels=np.zeros((6, 6, 6), np.uint8))
    inner = _Fake("liver_lesions", {1: "liver_tumor"})
    out = CascadeSegmenter(inner, crop_model, get_entry("liver_lesions").cascade).predict(image)
    assert not out.array.any() and out.shape == image.shape and inner.seen == []


def test_the_subtasks_crop_as_totalsegmentator_2_18():
    # python_api.py: robust_crop → task 297 (3 mm), else 298 (6 mm); crop_addon forced to [20, 20, 20]
    # for the default crop model; nnunet.py crops into int32
    for name, crop_model, classes in (("lung_vessels", "total-fast", LOBES), ("liver_lesions", "total-fast", ("liver",)),
                                      ("lung_nodules", "total-fastest", LOBES)):
        c = get_entry(name).cascade
        assert (c.model, c.classes, c.margin, c.margin_unit, c.cast) == (crop_model, classes, (20, 20, 20), "mm",
                                                                        "int32")
        assert c.robust == (crop_model == "total-fast")
    fastest = get_entry("total-fastest")
    assert fastest.input.spacing_mm == (6.0, 6.0, 6.0)
    assert fastest.parts[0].options.model_folder.startswith("Dataset298_TotalSegmentator_total_6mm_1559subj/")
    assert fastest.label_table().names() == get_entry("total-fast").label_table().names()


def test_missing_crop_model_weights_name_the_download_command(tmp_path, monkeypatch):
    from volseg.segmenters import registry

    monkeypatch.setenv("VOLSEG_HOME", str(tmp_path))
    monkeypatch.setattr(registry, "is_installed", lambda name: name == "lung_nodules")
    with pytest.raises(ModelError, match="'total-fastest' are not installed") as err:
        registry.load_segmenter("lung_nodules", device="cpu")
    assert err.value.hint == "volseg models download total-fastest"


def test_missing_crop_model_is_one_cli_line_with_the_command(tmp_path, monkeypatch, capsys):
    from volseg.cli.main import main
    from volseg.io.nifti import write_nifti
    from volseg.phantom import make_phantom

    monkeypatch.setenv("VOLSEG_HOME", str(tmp_path / "home"))
    src = tmp_path / "ct.nii.gz"
    write_nifti(make_phantom((40, 48, 36), (4.0, 3.0, 3.0), seed=1).image, src)
    code = main(["segment", str(src), "-m", "lung_nodules", "-o", str(tmp_path / "seg.nii.gz"), "--force",
                 "--no-html"])
    err = capsys.readouterr().err
    assert code != 0 and "volseg models download total-fastest" in err


def test_a_tiny_cascade_of_two_nnunet_models(random_model, phantom_model):
    """The trained phantom model finds the lungs; the random model runs on their box only."""
    from tests.factories.nnunet_model import SPACING_IJK
    from volseg.phantom import make_phantom
    from volseg.segmenters.backends.nnunet import load_folder
    from volseg.segmenters.engine.settings import EngineSettings

    fp32 = EngineSettings(precision="fp32")
    image = make_phantom((40, 48, 36), SPACING_IJK, orientation="LPS", seed=3).image
    crop_model = load_folder(phantom_model, device="cpu", settings=fp32, folds=[0])
    inner = load_folder(random_model, device="cpu", settings=fp32)
    cascade = Cascade(model="phantom", classes=("lungs",), margin=(4, 3, 3), margin_unit="mm")
    out = CascadeSegmenter(inner, crop_model, cascade).predict(image)

    lungs = crop_model.predict(image).array == crop_model.labels.index_of("lungs")
    box = crop_box(lungs, (1, 1, 1))
    assert box is not None and box.shape != image.shape  # a real crop
    expected = np.zeros(image.shape, np.uint8)
    expected[box.slices] = inner.predict(crop_volume(image, box)).array
    assert out.shape == image.shape and np.array_equal(out.affine, image.affine)
    assert np.array_equal(out.array, expected)
