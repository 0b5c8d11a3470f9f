"""A small nnU-Net v2 trained-model folder whose weights are trained briefly on the CT phantom.

A model with random weights predicts noise, which makes any comparison after resampling
meaningless; this one is trained (500 steps, about 85 s on one idle CPU core; cached in .pytest_cache
by a hash of this file) so that its predictions are smooth like a real model's. Training is
deterministic: the initial weights come from a seeded torch RNG forked from the global one (which
is left as it was) and every patch from a seeded numpy Generator, so the same weights, bit for bit,
whatever ran before in the test session. Patches are class-balanced (see ``CENTRE_CLASS``) and the
loss is nnU-Net's Dice + cross-entropy, so that every class is learned, torso fat included.

Its plans are shaped like TotalSegmentator's 3 mm model, but small: a 4-stage PlainConvUNet, CT
normalisation, 5 classes + background, and an anisotropic spacing whose low-resolution axis is the
first array axis, so nnU-Net's ``transpose_forward`` is not the identity.

The model is trained on phantoms in LPS orientation at (4, 3, 3) mm along (i, j, k), i.e. the
voxels a NIfTI reader sees; nnU-Net reads them in SimpleITK's (z, y, x) order at (3, 3, 4) mm and
transposes to (x, z, y) at (4, 3, 3) mm. Two folds: fold_1 is fold_0 trained a little further.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

# classes of the phantom model: left and right lung merged (mirroring would confuse them), airways
# left as air (1–3 voxels wide at this spacing, a minute of training does not learn them)
CLASSES = {1: "body", 2: "lungs", 3: "bone", 4: "subcutaneous_fat", 5: "torso_fat"}
PHANTOM_TO_MODEL = np.array([0, 1, 2, 2, 0, 3, 4, 5], dtype=np.uint8)  # volseg.phantom classes → CLASSES

SPACING_IJK = (4.0, 3.0, 3.0)  # the model's voxel spacing along the volume's (i, j, k) axes
ORIENTATION = "LPS"
TRANSPOSE_FORWARD = [2, 0, 1]  # (z, y, x) → (x, z, y): the 4 mm axis first, as nnU-Net's planner does
PATCH = [32, 48, 48]  # network axes (x, z, y)
FEATURES = [8, 16, 32, 64]
INTENSITY = {"max": 3071.0, "mean": -150.0, "median": -50.0, "min": -1024.0,
             "percentile_00_5": -1000.0, "percentile_99_5": 800.0, "std": 350.0}
CENTRE_CLASS = {1: 1.0, 2: 1.5, 3: 2.5, 4: 2.0, 5: 3.0}  # class: weight of patches centred on it
RECIPE = {"version": 4, "classes": CLASSES, "spacing": SPACING_IJK, "orientation": ORIENTATION,
          "patch": PATCH, "features": FEATURES, "iterations": 480, "extra_iterations": 20, "seed": 0,
          "random_patches": 0.1, "centre_class": CENTRE_CLASS}
FOLDER_NAME = "Dataset901_Phantom/nnUNetTrainer__nnUNetPlans__3d_fullres"


def network_spacing() -> list[float]:
    zyx = SPACING_IJK[::-1]
    return [float(zyx[t]) for t in TRANSPOSE_FORWARD]


def plans() -> dict:
    n = len(FEATURES)
    configuration = {
        "data_identifier": "nnUNetPlans_3d_fullres", "preprocessor_name": "DefaultPreprocessor",
        "batch_size": 2, "patch_size": list(PATCH), "median_image_size_in_voxels": [88, 80, 93],
        "spacing": network_spacing(), "normalization_schemes": ["CTNormalization"],
        "use_mask_for_norm": [False],
        "resampling_fn_data": "resample_data_or_seg_to_shape",
        "resampling_fn_seg": "resample_data_or_seg_to_shape",
        "resampling_fn_data_kwargs": {"is_seg": False, "order": 3, "order_z": 0, "force_separate_z": None},
        "resampling_fn_seg_kwargs": {"is_seg": True, "order": 1, "order_z": 0, "force_separate_z": None},
        "resampling_fn_probabilities": "resample_data_or_seg_to_shape",
        "resampling_fn_probabilities_kwargs": {"is_seg": False, "order": 1, "order_z": 0,
                                               "force_separate_z": None},
        "architecture": {
            "network_class_name": "dynamic_network_architectures.architectures.unet.PlainConvUNet",
            "arch_kwargs": {
                "n_stages": n, "features_per_stage": list(FEATURES),
                "conv_op": "torch.nn.modules.conv.Conv3d", "kernel_sizes": [[3, 3, 3]] * n,
                "strides": [[1, 1, 1]] + [[2, 2, 2]] * (n - 1), "n_conv_per_stage": [2] * n,
                "n_conv_per_stage_decoder": [2] * (n - 1), "conv_bias": True,
                "norm_op": "torch.nn.modules.instancenorm.InstanceNorm3d",
                "norm_op_kwargs": {"eps": 1e-05, "affine": True}, "dropout_op": None,
                "dropout_op_kwargs": None, "nonlin": "torch.nn.LeakyReLU", "nonlin_kwargs": {"inplace": True},
            },
            "_kw_requires_import": ["conv_op", "norm_op", "dropout_op", "nonlin"],
        },
        "batch_dice": False,
    }
    return {
        "dataset_name": "Dataset901_Phantom", "plans_name": "nnUNetPlans",
        "original_median_spacing_after_transp": network_spacing(),
        "original_median_shape_after_transp": [88, 80, 93], "image_reader_writer": "SimpleITKIO",
        "transpose_forward": list(TRANSPOSE_FORWARD),
        "transpose_backward": [int(i) for i in np.argsort(TRANSPOSE_FORWARD)],
        "configurations": {"3d_fullres": configuration}, "experiment_planner_used": "ExperimentPlanner",
        "label_manager": "LabelManager", "foreground_intensity_properties_per_channel": {"0": INTENSITY},
    }


def dataset_json() -> dict:
    labels = {"background": 0, **{name: i for i, name in CLASSES.items()}}
    return {"channel_names": {"0": "CT"}, "labels": labels, "numTraining": 8, "file_ending": ".nii.gz"}


def recipe_hash() -> str:
    source = Path(__file__).read_bytes()
    return hashlib.sha256(json.dumps(RECIPE, sort_keys=True).encode() + source).hexdigest()[:16]


# ---- data --------------------------------------------------------------------------------------
def phantom_case(shape_ijk, *, seed: int, rotation_deg: float = 0.0, noise_hu: float = 12.0,
                 blur_mm: float = 1.0, scale: float = 1.0):
    """Phantom CT and model labels at the model spacing (optionally anatomy scaled by ``scale``)."""
    from volseg.phantom import make_phantom

    spacing = tuple(s * scale for s in SPACING_IJK)
    ph = make_phantom(shape_ijk, spacing, orientation=ORIENTATION, rotation_deg=rotation_deg,
                      noise_hu=noise_hu, blur_mm=blur_mm, seed=seed)
    return ph.image.array, PHANTOM_TO_MODEL[ph.truth.array]


def to_network(array: np.ndarray) -> np.ndarray:
    """Volume (i, j, k) → nnU-Net (z, y, x) → transpose_forward."""
    return np.ascontiguousarray(array.transpose(2, 1, 0).transpose(TRANSPOSE_FORWARD))


def normalise(ct: np.ndarray) -> np.ndarray:
    x = np.clip(ct.astype(np.float32), INTENSITY["percentile_00_5"], INTENSITY["percentile_99_5"])
    return (x - INTENSITY["mean"]) / INTENSITY["std"]


def training_cases() -> list[tuple[np.ndarray, np.ndarray]]:
    settings = [(0, 0.0, 12.0, 1.0, 1.0), (1, 5.0, 20.0, 1.5, 0.95), (2, -5.0, 6.0, 2.5, 1.05),
                (3, 8.0, 12.0, 1.0, 1.0), (4, -8.0, 15.0, 2.0, 0.9), (5, 2.0, 4.0, 3.0, 1.1)]
    cases = []
    for seed, rot, noise, blur, scale in settings:
        ct, lab = phantom_case((88, 93, 80), seed=seed, rotation_deg=rot, noise_hu=noise, blur_mm=blur,
                               scale=scale)
        lab = to_network(lab).astype(np.int64)
        where = [np.argwhere(lab == c) for c in range(len(CLASSES) + 1)]
        cases.append((normalise(to_network(ct)), lab, where))
    return cases


# ---- training ----------------------------------------------------------------------------------
def build_network():
    from nnunetv2.utilities.get_network_from_plans import get_network_from_plans

    arch = plans()["configurations"]["3d_fullres"]["architecture"]
    return get_network_from_plans(arch["network_class_name"], arch["arch_kwargs"], arch["_kw_requires_import"],
                                  1, len(CLASSES) + 1, allow_init=True, deep_supervision=False)


def _batch(cases, rng: np.random.Generator, size: int = 2):
    """Class-balanced random patches: most are centred on a voxel of a class drawn from
    ``CENTRE_CLASS`` (the rare and the confusable classes more often: torso fat has the HU of
    subcutaneous fat and only its place tells them apart), the rest anywhere (nnU-Net oversamples
    foreground too). All randomness comes from ``rng``."""
    import torch

    classes, weights = zip(*CENTRE_CLASS.items())
    p = np.asarray(weights, dtype=float) / sum(weights)
    xs, ys = [], []
    for _ in range(size):
        x, y, where = cases[int(rng.integers(len(cases)))]
        if rng.random() >= RECIPE["random_patches"]:
            coords = where[classes[int(rng.choice(len(classes), p=p))]]
            centre = coords[int(rng.integers(len(coords)))]
            start = [int(np.clip(c - q // 2, 0, max(0, s - q))) for c, s, q in zip(centre, x.shape, PATCH)]
        else:
            start = [int(rng.integers(0, max(1, s - q + 1))) for s, q in zip(x.shape, PATCH)]
        sl = tuple(slice(a, a + q) for a, q in zip(start, PATCH))
        xp, yp = x[sl], y[sl]
        for axis in range(3):
            if rng.random() < 0.5:
                xp, yp = np.flip(xp, axis), np.flip(yp, axis)
        xs.append(np.ascontiguousarray(xp))
        ys.append(np.ascontiguousarray(yp))
    return torch.from_numpy(np.stack(xs))[:, None], torch.from_numpy(np.stack(ys))


def _loss(logits, target):
    import torch
    import torch.nn.functional as F

    ce = F.cross_entropy(logits, target)
    probs = torch.softmax(logits, 1)
    onehot = F.one_hot(target, logits.shape[1]).permute(0, 4, 1, 2, 3).float()
    inter = (probs * onehot).sum((0, 2, 3, 4))
    denom = probs.sum((0, 2, 3, 4)) + onehot.sum((0, 2, 3, 4))
    dice = (2 * inter + 1e-5) / (denom + 1e-5)
    return ce + (1 - dice[1:].mean())


def train(network, cases, iterations: int, *, rng: np.random.Generator, lr: float = 5e-3) -> list[float]:
    """Adam with a one-cycle schedule (warm-up, then cosine annealing); patches drawn with ``rng``.
    Uses no torch random numbers (no dropout, patches from numpy)."""
    import torch

    optimiser = torch.optim.Adam(network.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=lr, total_steps=iterations)
    network.train()
    losses = []
    for _ in range(iterations):
        x, y = _batch(cases, rng)
        optimiser.zero_grad(set_to_none=True)
        loss = _loss(network(x), y)
        loss.backward()
        optimiser.step()
        schedule.step()
        losses.append(float(loss.detach()))
    network.eval()
    return losses


def _checkpoint(network, losses, fold: int) -> dict:
    import torch

    return {
        "network_weights": network.state_dict(), "trainer_name": "nnUNetTrainer",
        "init_args": {"plans": plans(), "configuration": "3d_fullres", "fold": fold,
                      "dataset_json": dataset_json(), "device": torch.device("cpu")},
        "inference_allowed_mirroring_axes": (0, 1, 2), "current_epoch": 1,
        # nnU-Net keeps numpy floats in its training log; volseg must load them with weights_only=True
        "logging": {"train_losses": [np.float64(v) for v in losses[-5:]]},
    }


def write_model(root: Path) -> Path:
    """Train and write the model folder under ``root``; returns the trained-model folder."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small convolutions: one thread is ~10× faster on a busy shared host
    try:
        return _write_model(root)
    finally:
        torch.set_num_threads(threads)


def _write_model(root: Path) -> Path:
    import torch

    folder = root / FOLDER_NAME
    t0 = time.perf_counter()
    cases = training_cases()
    rng = np.random.default_rng(RECIPE["seed"])  # every patch, class and flip
    # the initial weights from torch's global RNG, seeded here and restored afterwards: the model
    # does not depend on what ran before it in the test session, nor changes what runs after it
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RECIPE["seed"])
        net = build_network()
    losses = train(net, cases, RECIPE["iterations"], rng=rng)
    for fold in (0, 1):
        if fold == 1:
            losses = train(net, cases, RECIPE["extra_iterations"], rng=rng, lr=1e-3)
        (folder / f"fold_{fold}").mkdir(parents=True, exist_ok=True)
        torch.save(_checkpoint(net, losses, fold), folder / f"fold_{fold}" / "checkpoint_final.pth")
    (folder / "plans.json").write_text(json.dumps(plans(), indent=1))
    (folder / "dataset.json").write_text(json.dumps(dataset_json(), indent=1))
    (folder / "training.json").write_text(json.dumps({"seconds": time.perf_counter() - t0,
                                                      "final_loss": losses[-1]}))
    return folder


def cached_model(cache_dir: Path) -> Path:
    """The model folder from ``cache_dir/<recipe hash>``, trained and written there when absent."""
    target = cache_dir / recipe_hash()
    if (target / FOLDER_NAME / "fold_1" / "checkpoint_final.pth").is_file():
        return target / FOLDER_NAME
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="training-", dir=cache_dir))
    try:
        write_model(tmp)
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target / FOLDER_NAME


def write_random_model(folder: Path, *, regions: bool = False, channels: int = 1, folds: tuple[int, ...] = (0,),
                       extra: dict | None = None) -> Path:
    """An untrained model folder with the same plans (fast; for tests that need no smooth output)."""
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    ds = dataset_json()
    if regions:  # BraTS-like nested regions: later regions overwrite earlier ones
        ds["labels"] = {"background": 0, "whole": [1, 2, 3], "core": [2, 3], "enhancing": [3]}
        ds["regions_class_order"] = [1, 2, 3]
    if channels != 1:
        ds["channel_names"] = {str(i): f"MR{i}" for i in range(channels)}
    p = plans()
    p["foreground_intensity_properties_per_channel"] = {str(i): INTENSITY for i in range(channels)}
    p["configurations"]["3d_fullres"]["normalization_schemes"] = ["CTNormalization"] * channels
    p["configurations"]["3d_fullres"]["use_mask_for_norm"] = [False] * channels
    (folder / "plans.json").write_text(json.dumps(p))
    (folder / "dataset.json").write_text(json.dumps(ds))
    from nnunetv2.utilities.get_network_from_plans import get_network_from_plans

    arch = p["configurations"]["3d_fullres"]["architecture"]
    heads = 3 if regions else len(CLASSES) + 1
    torch.manual_seed(0)
    net = get_network_from_plans(arch["network_class_name"], arch["arch_kwargs"], arch["_kw_requires_import"],
                                 channels, heads, allow_init=True, deep_supervision=False)
    for fold in folds:
        (folder / f"fold_{fold}").mkdir(exist_ok=True)
        checkpoint = _checkpoint(net, [0.5], fold)
        checkpoint.update(extra or {})
        torch.save(checkpoint, folder / f"fold_{fold}" / "checkpoint_final.pth")
    return folder
