"""Raidionics models with their own preprocessing: known answers from tiny networks in the
publisher's layout (see tests/factories/raidionics_model.py), geometry on an oblique LPS scan, the
mediastinal crop from classic-ct's lungs, strict ini parsing, and a catalogue entry through the CLI."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from volseg.errors import ModelError
from volseg.labels import LabelTable
from volseg.volume import Volume

pytest.importorskip("onnxruntime")

from tests.factories.raidionics_model import install_lymph_node_model, write_model  # noqa: E402

LABELS = LabelTable.from_names({1: "target"})


def segmenter(root: Path, task: str = "CT_Test", **kwargs):
    from volseg.segmenters.backends.raidionics import RaidionicsSegmenter

    return RaidionicsSegmenter(root, task, name="test", version="1", labels=LABELS, device="cpu", **kwargs)


def ras_volume(array: np.ndarray, spacing=(1.0, 1.0, 1.0)) -> Volume:
    return Volume(array.astype(np.float32), np.diag([*spacing, 1.0]), {"modality": "CT"})


def norm_mask(image: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """min–max normalisation then threshold, in float32 like the pipeline."""
    x = image.astype(np.float32)
    return (x - x.min()) / (x.max() - x.min()) >= np.float32(threshold)


@pytest.mark.parametrize("mode, changes", [
    ("whole", {"PreProcessing": {"new_axial_size": "20, 18, 16"}}),
    ("slab", {"PreProcessing": {"new_axial_size": "20, 18", "channels_order": "channels_last"},
              "Training": {"slab_size": "6"}}),
    ("patch", {"Training": {"patch_size": "8, 8, 24", "patch_offset": "2, 3, 4"}}),
])
def test_identity_network_thresholds_the_normalised_image(tmp_path, mode, changes):
    """Spacing and size as the model's: every resampling is the identity, so the labels are exactly
    the threshold of the min–max normalised image in every inference mode (slab end padding,
    patch borders, patch axes shorter than the volume and longer than it)."""
    write_model(tmp_path / "CT_Test", changes=changes)
    image = np.random.default_rng(0).integers(-500, 500, size=(20, 18, 16))
    seg = segmenter(tmp_path)
    assert seg.pipeline.config.mode == mode
    labels = seg.predict(ras_volume(image))
    assert np.array_equal(labels.array, norm_mask(image).astype(np.uint8))
    assert seg.provenance().as_dict()["network_calls"] == {"whole": 1, "slab": 3}.get(mode, 3 * 3 * 1)


def test_ramp_through_spacing_and_resize_has_its_hand_computed_boundary(tmp_path):
    """value = i along axis 0 (41 voxels at 1 mm). Model spacing 2 mm: 21 voxels holding 0, 2, …, 40.
    Resize 21→32 (areas aligned, mirrored edges): sample j sits at c = (j+½)·21/32 − ½, value 2c for
    interior j, and the edges mirror to 0.34375 and 39.65625, the min and max of the normalisation.
    Undoing the resize (zoom, end voxels aligned) samples j = 1.55·k, so model voxel k holds
    2.034375·k − 0.34375, and input voxel i (model position i/2) gets
    p(i) = (1.0171875·i − 0.6875) / 39.3125: threshold 0.3 is first reached at i = 13."""
    write_model(tmp_path / "CT_Test", changes={
        "PreProcessing": {"output_spacing": "2, 2, 2", "new_axial_size": "32, 32, 32"},
        "Training": {"optimal_thresholds": "0.3"}})
    image = np.broadcast_to(np.arange(41, dtype=np.float32)[:, None, None], (41, 9, 9))
    p = (1.0171875 * np.arange(41) - 0.6875) / 39.3125
    first = int(np.argmax(p >= 0.3))
    assert first == 13
    labels = segmenter(tmp_path).predict(ras_volume(image)).array
    expected = np.broadcast_to((np.arange(41) >= first)[:, None, None], image.shape)
    assert np.array_equal(labels.astype(bool), expected)


@pytest.mark.parametrize("changes, moved_axis", [
    ({"PreProcessing": {"channels_order": "channels_first", "new_axial_size": "12, 10, 8"}}, 2),
    ({"PreProcessing": {"channels_order": "channels_last", "swap_training_input": "true",
                        "new_axial_size": "12, 10, 8"}}, 0),
])
def test_tensor_layout_and_swap_decide_which_axis_the_network_sees_last(tmp_path, changes, moved_axis):
    """The shift network moves the image one voxel along its last axis: Z unswapped; with
    swap_training_input the network sees (Z, Y, X), so the labels move along X."""
    write_model(tmp_path / "CT_Test", changes={**changes, "Training": {"activation_layer_included": "true"}},
                kind="shift")
    image = np.zeros((12, 10, 8))
    image[3:7, 2:6, 2:5] = 100
    labels = segmenter(tmp_path).predict(ras_volume(image)).array
    expected = np.roll(image > 50, 1, axis=moved_axis)
    assert np.array_equal(labels.astype(bool), expected)


def test_logits_get_the_softmax_the_graph_lacks(tmp_path):
    write_model(tmp_path / "CT_Test", changes={"Training": {"activation_layer_included": "false"},
                                               "PreProcessing": {"new_axial_size": "10, 9, 8"}}, kind="logits")
    image = np.random.default_rng(1).normal(0, 100, size=(10, 9, 8))
    assert np.array_equal(segmenter(tmp_path).predict(ras_volume(image)).array, norm_mask(image))


def test_oblique_lps_scan_round_trips_onto_its_grid(tmp_path):
    """A ball off the centre of an oblique, anisotropic LPS scan, through 1 mm resampling and a
    resize to 40³: the labels lie on exactly the input grid and cover the ball (a flip would miss it)."""
    from volseg.phantom import phantom_grid

    write_model(tmp_path / "CT_Test", changes={"PreProcessing": {"new_axial_size": "40, 40, 40"}})
    shape, spacing = (36, 30, 20), (1.4, 1.7, 2.5)
    affine = phantom_grid(shape, spacing, "LPS", 7.0)
    idx = np.indices(shape).reshape(3, -1)
    xyz = (affine[:3, :3] @ idx + affine[:3, 3:4]).reshape(3, *shape)
    centre = affine[:3, :3] @ np.array([12.0, 18.0, 9.0]) + affine[:3, 3]
    ball = np.linalg.norm(xyz - centre[:, None, None, None], axis=0) <= 12.0
    volume = Volume(np.where(ball, 200, -100).astype(np.int16), affine, {"modality": "CT"})
    labels = segmenter(tmp_path).predict(volume)
    assert labels.shape == volume.shape and np.array_equal(labels.affine, volume.affine)
    got = labels.array.astype(bool)
    dice = 2 * (got & ball).sum() / (got.sum() + ball.sum())
    assert dice > 0.9, dice


@pytest.fixture(scope="module")
def chest():
    from volseg.phantom import make_phantom

    return make_phantom((96, 80, 40), (3.5, 3.5, 6.0), orientation="LPS", seed=5)


def test_mediastinal_crop_is_the_box_of_classic_ct_lungs(tmp_path, chest):
    """Model spacing = scan spacing, so the model grid is the RAS grid and the crop box must be
    the box of the phantom's true lungs, within classic-ct's boundary error (2 voxels)."""
    from volseg.segmenters.backends.raidionics_steps import box_of
    from volseg.volume import reorient

    write_model(tmp_path / "CT_Test", changes={"PreProcessing": {
        "output_spacing": "3.5, 3.5, 6.0", "background_cropping": "lungs_clip", "new_axial_size": "32, 32, 16"}})
    seg = segmenter(tmp_path)
    labels = seg.predict(chest.image)
    truth = reorient(chest.truth, "RAS").array
    expected = box_of(np.isin(truth, (2, 3)))
    crop = seg.provenance().as_dict()["crop"]
    assert crop["kind"] == "lungs" and "classic-ct" in crop["source"]
    got = crop["box_input_grid"]
    for (lo, hi), s in zip(got, expected):
        assert abs(lo - s.start) <= 2 and abs(hi - s.stop) <= 2, (got, expected)
    outside = np.ones(truth.shape, dtype=bool)
    outside[tuple(slice(lo, hi) for lo, hi in got)] = False
    ras_labels = reorient(labels, "RAS").array
    assert ras_labels.any() and not ras_labels[outside].any()


def test_brain_crop_needs_the_brain_model_and_uses_its_box(tmp_path):
    changes = {"Default": {"imaging_modality": "MRI"},
               "PreProcessing": {"background_cropping": "brain_clip", "new_axial_size": "16, 16, 16"}}
    write_model(tmp_path / "MRI_Test", changes=changes)
    with pytest.raises(ModelError, match="MRI_Brain model is not installed") as info:
        segmenter(tmp_path, "MRI_Test")
    assert "\n" not in str(info.value)
    write_model(tmp_path / "MRI_Brain", changes={"Default": {"imaging_modality": "MRI"},
                                                 "PreProcessing": {"new_axial_size": "24, 20, 18"}})
    image = np.zeros((24, 20, 18))
    image[5:17, 4:15, 3:12] = 300  # the "brain": the brain model thresholds it at half the range
    image[8:11, 6:9, 5:8] = 600
    seg = segmenter(tmp_path, "MRI_Test")
    seg.predict(Volume(image.astype(np.float32), np.eye(4), {"modality": "MR"}))
    crop = seg.provenance().as_dict()["crop"]
    assert crop["source"] == "MRI_Brain model"
    assert crop["box_input_grid"] == [[5, 17], [4, 15], [3, 12]]  # voxels >= 300 = half of 0..600


@pytest.mark.parametrize("changes, message", [
    ({"PreProcessing": {"colour": "red"}}, "unknown key [PreProcessing] colour"),
    ({"Extra": {"a": "1"}}, "unknown section [Extra]"),
    ({"MRI": {"perform_bias_correction": "true"}}, "[MRI] perform_bias_correction"),
    ({"PreProcessing": {"number_inputs": "2"}}, "[PreProcessing] number_inputs"),
    ({"PreProcessing": {"output_spacing": "1, a, 1"}}, "[PreProcessing] output_spacing"),
    ({"PreProcessing": {"normalization_method": "zscore"}}, "[PreProcessing] normalization_method"),
    ({"Default": {"imaging_modality": None}}, "[Default] imaging_modality is missing"),
    ({"PreProcessing": {"new_axial_size": "8, 8"}}, "[Training] slab_size"),
    ({"Training": {"optimal_thresholds": None}, "PreProcessing": {"new_axial_size": "8, 8, 8"}},
     "optimal_thresholds is needed"),
])
def test_unsupported_ini_is_a_one_line_error_naming_the_key(tmp_path, changes, message):
    write_model(tmp_path / "CT_Test", changes=changes)
    with pytest.raises(ModelError) as info:
        segmenter(tmp_path)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_catalogued_lymph_node_model_runs_through_the_cli(tmp_path, monkeypatch, chest):
    """raidionics-ct-lymphnodes installed from archives in the publisher's layout into a temporary
    VOLSEG_HOME, then `volseg segment --model raidionics-ct-lymphnodes`."""
    from volseg.cli.main import main
    from volseg.io import read_image
    from volseg.io.nifti import write_nifti

    entry = install_lymph_node_model(tmp_path, monkeypatch)
    path = write_nifti(chest.image, tmp_path / "ct.nii.gz")
    assert main(["segment", str(path), "--model", entry.name, "--device", "cpu", "-o", str(tmp_path / "o")]) == 0
    out = read_image(tmp_path / "o" / "segmentation.nii.gz").volume
    assert out.shape == chest.image.shape and np.allclose(out.affine, chest.image.affine)
    model = json.loads((tmp_path / "o" / "report.json").read_text())["provenance"]["model"]
    files = [w["file"] for w in model.get("weights", [])]
    assert "CT_LymphNodes/fold0/model.onnx" in files, model


def test_catalogue_entries_dispatch_and_say_when_not_installed(tmp_path, monkeypatch):
    from volseg.segmenters.registry import load_segmenter

    monkeypatch.setenv("VOLSEG_HOME", str(tmp_path / "home"))
    with pytest.raises(ModelError, match="is not installed"):
        load_segmenter("raidionics-mri-gbm", device="cpu")


@pytest.mark.parametrize("n, m", [(21, 32), (40, 17), (9, 9)])
def test_resize_matrix_is_skimage_resize(n, m):
    """The publisher resizes with skimage.transform.resize(order=1): anti-aliased when shrinking."""
    transform = pytest.importorskip("skimage.transform")
    from volseg.segmenters.backends.raidionics_steps import resize_matrix

    x = np.random.default_rng(n).normal(size=(n, 5)).astype(np.float64)
    expected = transform.resize(x, (m, 5), order=1)
    assert np.allclose(resize_matrix(n, m) @ x, expected, atol=1e-9)
