"""Fidelity of the nnU-Net backend against ``nnUNetPredictor`` on the same (trained) weights.

The reference reads the same NIfTI file with nnU-Net's own SimpleITK reader and predicts with
``predict_single_npy_array`` (nnU-Net's preprocessing, sliding window and export), so the whole
geometry chain — volseg's (i, j, k) arrays, nnU-Net's (z, y, x) order, the plans'
``transpose_forward`` — is checked on a non-RAS (LPS), anisotropic input.
"""
from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np
import pytest
import torch

from volseg.io import read_image
from volseg.io.nifti import write_nifti
from volseg.phantom import make_phantom
from volseg.postprocess.compare import dice_per_label
from volseg.segmenters.backends.nnunet import load_folder, load_parts
from volseg.segmenters.engine.settings import EngineSettings
from volseg.volume import reorient

pytest.importorskip("nnunetv2")
from tests.factories.nnunet_model import CLASSES, SPACING_IJK

pytestmark = pytest.mark.slow
FP32 = EngineSettings(precision="fp32")
CASES = {  # name: (spacing along i, j, k in mm, shape) — about the same field of view, 192 × 192 × 144 mm
    "model_grid": (SPACING_IJK, (48, 64, 48)),
    "finer": ((2.5, 2.0, 2.2), (77, 96, 65)),
    "anisotropic": ((1.2, 1.2, 4.2), (160, 160, 34)),  # nnU-Net's "separate z" in both directions
}


@pytest.fixture(scope="module")
def cases(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("fidelity-inputs")
    paths = {}
    for i, (name, (spacing, shape)) in enumerate(CASES.items()):
        phantom = make_phantom(shape, spacing, orientation="LPS", rotation_deg=4.0, seed=20 + i)
        paths[name] = write_nifti(phantom.image, folder / f"{name}.nii.gz")
    return paths


@cache
def _predictor(folder: str, folds: tuple[int, ...], mirror: bool):
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor
    from nnunetv2.utilities.get_network_from_plans import get_network_from_plans
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    root = Path(folder)
    plans = PlansManager(json.loads((root / "plans.json").read_text()))
    config = plans.get_configuration("3d_fullres")
    dataset = json.loads((root / "dataset.json").read_text())
    params = [torch.load(root / f"fold_{f}" / "checkpoint_final.pth", map_location="cpu", weights_only=False)
              ["network_weights"] for f in folds]
    network = get_network_from_plans(config.network_arch_class_name, config.network_arch_init_kwargs,
                                     config.network_arch_init_kwargs_req_import, 1, len(CLASSES) + 1,
                                     allow_init=False, deep_supervision=False)
    network.load_state_dict(params[0])
    predictor = nnUNetPredictor(tile_step_size=0.5, use_gaussian=True, use_mirroring=mirror,
                                perform_everything_on_device=False, device=torch.device("cpu"),
                                allow_tqdm=False)
    predictor.manual_initialization(network, plans, config, params, dataset, "nnUNetTrainer", (0, 1, 2))
    return predictor


@cache
def reference(model: str, image: str, folds: tuple[int, ...] = (0,), mirror: bool = False) -> np.ndarray:
    """nnU-Net's labels for the NIfTI ``image``, in volseg's (i, j, k) order."""
    from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO

    data, props = SimpleITKIO().read_images([image])
    seg = _predictor(model, folds, mirror).predict_single_npy_array(data, props, None, None, False)
    return np.asarray(seg).transpose(2, 1, 0)


@cache
def _ours(model: str, image: str, settings: EngineSettings, folds: tuple[int, ...]) -> np.ndarray:
    volume = read_image(image).volume
    labels = load_folder(model, device="cpu", folds=folds, settings=settings).predict(volume)
    assert labels.shape == volume.shape and np.array_equal(labels.affine, volume.affine)
    return labels.array


def ours(model: Path, image: Path, settings: EngineSettings = FP32, folds=(0,)) -> np.ndarray:
    """volseg's labels for the NIfTI ``image`` (volseg reads it with its own reader)."""
    return _ours(str(model), str(image), settings, tuple(folds))


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(a == b))


def dice_all(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    present = {i: n for i, n in CLASSES.items() if np.any(b == i) or np.any(a == i)}
    return dice_per_label(a, b, present)


# ---- (a) on the model grid: non-RAS, anisotropic, transposed ---------------------------------------
def test_model_grid_equals_nnunet(phantom_model, cases):
    expected = reference(str(phantom_model), str(cases["model_grid"]))
    got = ours(phantom_model, cases["model_grid"], FP32.with_options(blend="features"))
    assert len(np.unique(expected)) == len(CLASSES) + 1  # the model predicts every class here
    assert agreement(got, expected) >= 0.999


def test_model_grid_with_mirroring_equals_nnunet(phantom_model, cases):
    expected = reference(str(phantom_model), str(cases["model_grid"]), (0,), True)
    got = ours(phantom_model, cases["model_grid"], FP32.with_options(mirror=True))
    assert agreement(got, expected) >= 0.999
    assert agreement(reference(str(phantom_model), str(cases["model_grid"])), expected) < 1.0  # it matters


@pytest.mark.parametrize("blend", ["features", "logits"])
def test_two_folds_ensemble_like_nnunet(phantom_model, cases, blend):
    expected = reference(str(phantom_model), str(cases["model_grid"]), (0, 1))
    got = ours(phantom_model, cases["model_grid"], FP32.with_options(blend=blend), folds=(0, 1))
    assert agreement(got, expected) >= 0.999
    assert agreement(reference(str(phantom_model), str(cases["model_grid"])), expected) < 1.0  # it matters


# ---- (b) off the model grid: exact export and the fast (nearest) export -------------------------------
@pytest.mark.parametrize("case", ["finer", "anisotropic"])
def test_exact_export_equals_nnunet(phantom_model, cases, case):
    expected = reference(str(phantom_model), str(cases[case]))
    got = ours(phantom_model, cases[case], FP32.with_options(export="exact"))
    assert agreement(got, expected) >= 0.999


@pytest.mark.parametrize("case", ["finer", "anisotropic"])
def test_default_settings_off_the_grid_reach_dice_098_for_every_class(phantom_model, cases, case):
    expected = reference(str(phantom_model), str(cases[case]))
    got = ours(phantom_model, cases[case], EngineSettings())  # bf16 on CPUs that have it, exact export
    scores = dice_all(got, expected)
    assert len(scores) == len(CLASSES)
    assert min(scores.values()) >= 0.98, scores
    assert agreement(got, expected) >= 0.999


@pytest.mark.parametrize("case", ["finer", "anisotropic"])
def test_nearest_export_is_coarser_than_exact(phantom_model, cases, case):
    """Labels mapped back by nearest neighbour only: large organs keep Dice ≥ 0.98, thin ones
    (ribs, bone shell, fat layers, 1–4 model voxels thick) lose about half a model voxel at each
    surface, down to Dice ~0.92 for the phantom's ribs."""
    expected = reference(str(phantom_model), str(cases[case]))
    nearest = dice_all(ours(phantom_model, cases[case], FP32.with_options(export="nearest")), expected)
    exact = dice_all(ours(phantom_model, cases[case], FP32), expected)
    assert min(nearest["body"], nearest["lungs"]) >= 0.98, nearest
    assert min(nearest.values()) >= 0.90, nearest
    assert all(exact[name] > nearest[name] for name in nearest), (exact, nearest)


# ---- the default settings (bf16 on CPUs with native bf16) -------------------------------------------
@pytest.mark.parametrize("case", ["model_grid", "finer"])
def test_default_settings_against_fp32_and_nnunet(phantom_model, cases, case):
    default = ours(phantom_model, cases[case], EngineSettings())
    fp32 = ours(phantom_model, cases[case], FP32)
    expected = reference(str(phantom_model), str(cases[case]))
    assert min(dice_all(default, fp32).values()) >= 0.99
    assert agreement(default, expected) >= 0.999


# ---- multi-part models and reorientation -------------------------------------------------------
def test_two_parts_combine_into_one_label_map(phantom_model, cases):
    from volseg.labels import LabelTable

    volume = read_image(cases["model_grid"]).volume
    single = load_folder(phantom_model, device="cpu", settings=FP32).predict(volume).array
    table = LabelTable.from_names({**CLASSES, 6: "lungs_again"})
    first = {1: 1, 2: 2, 3: 3}
    second = {4: 4, 5: 5, 2: 6}  # a later part wins where it predicts a class
    combined = load_parts([(phantom_model, first), (phantom_model, second)], labels=table, device="cpu",
                          settings=FP32).predict(volume).array
    expected = np.where(single == 2, 6, single)
    assert np.array_equal(combined, expected)


def test_reorient_to_feeds_the_model_its_training_orientation(phantom_model, cases):
    volume = read_image(cases["model_grid"]).volume  # LPS, the model's orientation
    as_ras = reorient(volume, "RAS")  # same voxels stored in another order
    direct = load_folder(phantom_model, device="cpu", settings=FP32).predict(volume)
    via = load_folder(phantom_model, device="cpu", settings=FP32, reorient_to="LPS").predict(as_ras)
    assert np.array_equal(via.affine, as_ras.affine)
    assert np.array_equal(reorient(via, "LPS").array, direct.array)
