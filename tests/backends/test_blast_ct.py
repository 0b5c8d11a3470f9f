"""BLAST-CT v1: the DeepMedic network against the published weights, the valid-window engine with
known answers, the publisher's resampling rules, and the real model on a real head CT via the CLI."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from volseg.segmenters.backends.blast_ct import nearest_labels, publisher_grid, resample_linear_itk
from volseg.segmenters.engine.settings import EngineSettings
from volseg.segmenters.engine.valid_windows import run_valid_windows, tile_starts
from volseg.segmenters.nets.deepmedic import DeepMedic

FP32 = EngineSettings(precision="fp32")


def test_network_is_exactly_the_published_state_dict(shared_data):
    state = torch.load(shared_data / "blast-ct-v1" / "model_1.pt", map_location="cpu", weights_only=True)
    net = DeepMedic(1, 5)
    ours = net.state_dict()
    assert list(ours) == list(state)
    assert all(ours[k].shape == state[k].shape for k in state)
    net.load_state_dict(state, strict=True)
    assert (net.input_size(30), net.margin(30), net.output_size(110), net.tile_multiple) == (110, 40, 30, 15)
    with pytest.raises(ValueError, match="does not fit"):
        net.output_size(111)


def _tiny(seed: int = 0) -> DeepMedic:
    torch.manual_seed(seed)
    net = DeepMedic(1, 3, feature_maps=(4,) * 8, fully_connected=(6,))
    for m in net.modules():  # non-trivial batch-norm statistics
        if isinstance(m, torch.nn.BatchNorm3d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    return net.eval()


def test_one_large_window_equals_the_tiles_it_covers():
    net = _tiny()
    x = torch.rand(1, 1, 110, 110, 110) * 2 - 1
    assert net.input_size(15) == 95
    with torch.no_grad():
        big = net(x)  # 30³ output = 2 × 2 × 2 tiles of 15³ (15 = lcm of the scale factors)
        for corner in [(0, 0, 0), (15, 0, 15), (15, 15, 15)]:
            window = x[(slice(None), slice(None), *(slice(c, c + 95) for c in corner))]
            tile = big[(slice(None), slice(None), *(slice(c, c + 15) for c in corner))]
            torch.testing.assert_close(net(window), tile, atol=1e-5, rtol=1e-5)


def test_valid_windows_with_an_analytic_predictor():
    """A predictor that returns its window's centre: the blend is the image itself, edges included."""
    margin, tile = (3, 2, 4), (5, 6, 7)
    image = torch.arange(11 * 13 * 9, dtype=torch.float32).reshape(1, 11, 13, 9)
    calls = []

    def centre(x):
        calls.append(x.shape[0])
        return x[:, :, 3:-3, 2:-2, 4:-4] * 2.0

    run = run_valid_windows(image, centre, channels=1, tile=tile, margin=margin, settings=FP32.with_options(window_batch=4))
    assert run.blend.sums.shape[1:] == (15, 18, 14)  # 3, 3, 2 tiles
    assert torch.equal(run.blend.sums[(0, *run.keep)], image[0] * 2.0)
    # beyond the volume the windows saw its edge values repeated
    assert torch.equal(run.blend.sums[0, 11:, 0, 0], image[0, 10, 0, 0].expand(4) * 2.0)
    assert sum(calls) == 18 == run.blend.windows and run.skipped == 0


def test_constant_windows_are_predicted_once():
    image = torch.full((1, 40, 40, 12), -1.0)
    image[0, 30:, 30:, :] = 0.5  # one corner differs
    calls = []

    def predictor(x):
        calls.append(x.shape[0])
        return x[:, :, 2:-2, 2:-2, 2:-2] + 1.0

    run = run_valid_windows(image, predictor, channels=1, tile=(10, 10, 12), margin=(2, 2, 2), settings=FP32,
                            constant=-1.0)
    assert run.blend.windows == 16 and run.skipped == 12 and sum(calls) == 5  # 4 real + the constant one
    assert torch.equal(run.blend.sums[(0, *run.keep)], image[0] + 1.0)


def test_tile_starts_cover_the_axis_from_zero():
    assert tile_starts(61, 30) == [0, 30, 60]
    assert tile_starts(60, 30) == [0, 30]


def test_resampling_follows_simpleitk_and_labels_come_back():
    ramp = np.add.outer(np.add.outer(np.arange(5) * 2.0, np.arange(4) * 3.0), np.arange(3) * 5.0)
    out = resample_linear_itk(ramp, (2.0, 1.5, 2.5), (1.0, 1.0, 1.0))
    assert out.shape == (6, 6, 9)  # (k, j, i): round((n − 1)·s + 1) → 9, 6, 6
    i, j, k = np.meshgrid(np.arange(9) / 2.0, np.arange(6) / 1.5, np.arange(6) / 2.5, indexing="ij")
    expected = (i * 2 + j * 3 + k * 5).transpose(2, 1, 0)
    inside = (i <= 4) & (j <= 3) & (k <= 2)
    np.testing.assert_allclose(out[inside.transpose(2, 1, 0)], expected[inside.transpose(2, 1, 0)], atol=1e-4)
    labels = np.arange(9 * 6 * 6).reshape(9, 6, 6)
    back = nearest_labels(labels, (5, 4, 3), (2.0, 1.5, 2.5), (1.0, 1.0, 1.0))
    assert back.shape == (5, 4, 3)
    assert back[4, 3, 2] == labels[8, 5, 5] and back[1, 1, 1] == labels[2, 2, 3]  # 1.5 → 2 (half up), 2.5 → 3


def test_publisher_grid_is_blast_cts_reoriented_image():
    """publisher_grid equals SimpleITK resampling the image onto the reference BLAST-CT's
    rescale.reorient_image builds: identity direction, a flipped axis's origin n·spacing away."""
    import SimpleITK as sitk

    from volseg.volume import Volume

    rng = np.random.default_rng(3)
    array = rng.integers(-1000, 1000, size=(7, 6, 5)).astype(np.float32)
    spacing = np.array([0.9, 1.3, 2.0])
    affine = np.diag([-0.9, 1.3, 2.0, 1.0])  # RAS world: i → left, j → anterior, k → superior (LAS)
    affine[:3, 3] = (10.0, -20.0, 30.0)
    ours = publisher_grid(Volume(array, affine))
    image = sitk.GetImageFromArray(array.transpose(2, 1, 0))
    image.SetSpacing(spacing.tolist())
    to_lps = np.diag([-1.0, -1.0, 1.0])
    direction = to_lps @ affine[:3, :3] / spacing  # ITK: LPS world
    image.SetDirection(direction.flatten().tolist())
    image.SetOrigin((to_lps @ affine[:3, 3]).tolist())
    flip = np.diag(direction) < 0  # j only: anterior is −y in LPS
    reference = sitk.Image(image.GetSize(), image.GetPixelID())
    reference.SetSpacing(spacing.tolist())
    reference.SetDirection(np.eye(3).flatten().tolist())
    reference.SetOrigin((np.asarray(image.GetOrigin()) + direction @ (np.array(image.GetSize()) * spacing * flip)).tolist())
    theirs = sitk.Resample(image, reference, sitk.Transform(), sitk.sitkLinear, float(array.min()))
    np.testing.assert_allclose(ours.array, sitk.GetArrayFromImage(theirs).transpose(2, 1, 0), atol=1e-3)
    np.testing.assert_allclose(to_lps @ ours.affine[:3, 3], reference.GetOrigin(), atol=1e-9)
    assert ours.orientation == "LPS"


def test_labels_beyond_the_model_grid_take_zero():
    labels = np.arange(1, 1 + 4 * 3 * 2).reshape(4, 3, 2)
    plain = nearest_labels(labels, (4, 3, 2), (1.0, 1.0, 1.0), (1.0, 1.0, 1.0))
    np.testing.assert_array_equal(plain, labels)
    moved = nearest_labels(labels, (4, 3, 2), (1.0, 1.0, 1.0), (1.0, 1.0, 1.0), offset=(0, 1, 0))
    np.testing.assert_array_equal(moved[:, :2], labels[:, 1:])  # input voxel v lies at model voxel v + 1
    assert not moved[:, 2].any()  # past the model grid's end


@pytest.fixture
def volseg_home(tmp_path, monkeypatch):
    home = tmp_path / "volseg-home"
    monkeypatch.setenv("VOLSEG_HOME", str(home))
    monkeypatch.delenv("VOLSEG_OFFLINE", raising=False)
    monkeypatch.delenv("VOLSEG_MIRROR", raising=False)
    return home


def test_real_model_via_cli_on_a_head_ct_crop(shared_data, volseg_home, tmp_path, monkeypatch, capsys):
    """Install the 12 published files, segment a crop of a normal head with one ensemble member."""
    from volseg.cli.main import main
    from volseg.io import read_image
    from volseg.io.nifti import write_nifti
    from volseg.segmenters import catalogue
    from volseg.volume import Volume

    assert main(["models", "install", str(shared_data / "blast-ct-v1")]) == 0
    head = read_image(shared_data / "head-ct" / "cranium_ct_0051.nii.gz").volume
    start = np.array([104, 104, 50])
    affine = head.affine.copy()
    affine[:3, 3] = head.index_to_world(start[None])[0]
    crop = Volume(np.ascontiguousarray(head.array[104:152, 104:152, 50:70]), affine)  # LAS, anisotropic
    path = write_nifti(crop, tmp_path / "head_crop.nii.gz")

    entries = dict(catalogue.load_catalogue())
    options = entries["blast-ct"].backend_options.model_copy(update={"ensemble": ("model_1.pt",)})
    one = entries["blast-ct"].model_copy(update={"backend_options": options})
    monkeypatch.setattr(catalogue, "load_catalogue", lambda: {**entries, "blast-ct": one})
    capsys.readouterr()
    # --force: a crop inside the brain has neither air nor skull, so the applicability check refuses it
    assert main(["segment", str(path), "--model", "blast-ct", "--device", "cpu", "-o", str(tmp_path / "out"),
                 "--force"]) == 0
    labels = read_image(tmp_path / "out" / "segmentation.nii.gz").volume
    assert labels.shape == crop.shape and np.allclose(labels.affine, crop.affine, atol=1e-4)
    lesion_ml = float((labels.array > 0).sum()) * crop.voxel_volume_mm3 / 1000.0
    assert lesion_ml < 1.0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert "model_1.pt" in json.dumps(report)
