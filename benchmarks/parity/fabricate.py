"""Deterministic random-weight nnU-Net folders under TotalSegmentator's names, and release-layout zips.

A folder is ``<foldername>/<trainer>__<plans>__<configuration>/{dataset.json, plans.json,
fold_0/checkpoint_final.pth}`` exactly where TotalSegmentator looks for (and its downloader unpacks)
its weights; the zip of a task holds that tree at its root, as the release asset
``releases/download/<version>/<foldername>.zip`` does (``libs.download_pretrained_weights``:
``extractall`` into the weights folder). The peers check names, not sizes, so CI uses tiny networks;
``full_size`` builds networks the size of the published ones (5 stages at 3 mm, 6 at 1.5 mm).
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

#: network shapes: (features per stage, strides, patch (z, y, x))
TINY = ([8, 16, 32, 64], [[1, 1, 1], [2, 2, 2], [2, 2, 2], [2, 2, 2]], [64, 64, 64])
FULL_3MM = ([32, 64, 128, 256, 320], [[1, 1, 1]] + [[2, 2, 2]] * 4, [128, 112, 112])
FULL_15MM = ([32, 64, 128, 256, 320, 320], [[1, 1, 1]] + [[2, 2, 2]] * 5, [128, 128, 128])


def _arch(features, strides) -> dict:
    n = len(features)
    return {"n_stages": n, "features_per_stage": list(features), "conv_op": "torch.nn.modules.conv.Conv3d",
            "kernel_sizes": [[3, 3, 3]] * n, "strides": strides, "n_conv_per_stage": [2] * n,
            "n_conv_per_stage_decoder": [2] * (n - 1), "conv_bias": True,
            "norm_op": "torch.nn.modules.instancenorm.InstanceNorm3d",
            "norm_op_kwargs": {"eps": 1e-05, "affine": True}, "dropout_op": None, "dropout_op_kwargs": None,
            "nonlin": "torch.nn.LeakyReLU", "nonlin_kwargs": {"inplace": True}}


def _plans(name: str, spacing: float, shape, modality: str, plans: str, configuration: str) -> dict:
    features, strides, patch = shape
    scheme = "CTNormalization" if modality == "CT" else "ZScoreNormalization"
    resampling = {"is_seg": False, "order": 3, "order_z": 0, "force_separate_z": None}
    conf = {"data_identifier": f"{plans}_{configuration}", "preprocessor_name": "DefaultPreprocessor",
            "batch_size": 2, "patch_size": patch, "median_image_size_in_voxels": [200, 160, 160],
            "spacing": [spacing] * 3, "normalization_schemes": [scheme], "use_mask_for_norm": [False],
            "resampling_fn_data": "resample_data_or_seg_to_shape",
            "resampling_fn_seg": "resample_data_or_seg_to_shape",
            "resampling_fn_data_kwargs": resampling,
            "resampling_fn_seg_kwargs": dict(resampling, is_seg=True, order=1),
            "resampling_fn_probabilities": "resample_data_or_seg_to_shape",
            "resampling_fn_probabilities_kwargs": dict(resampling, order=1),
            "architecture": {"network_class_name": "dynamic_network_architectures.architectures.unet.PlainConvUNet",
                             "arch_kwargs": _arch(features, strides),
                             "_kw_requires_import": ["conv_op", "norm_op", "dropout_op", "nonlin"]},
            "batch_dice": False}
    return {"dataset_name": name, "plans_name": plans, "original_median_spacing_after_transp": [spacing] * 3,
            "original_median_shape_after_transp": [200, 160, 160], "image_reader_writer": "SimpleITKIO",
            "transpose_forward": [0, 1, 2], "transpose_backward": [0, 1, 2],
            "configurations": {configuration: conf}, "experiment_planner_used": "ExperimentPlanner",
            "label_manager": "LabelManager",
            "foreground_intensity_properties_per_channel": {"0": {
                "max": 3071.0, "mean": 120.0, "median": 60.0, "min": -1024.0, "percentile_00_5": -950.0,
                "percentile_99_5": 1400.0, "std": 300.0}}}


def _weights(features, strides, n_out: int, seed: int) -> dict:
    import torch
    from dynamic_network_architectures.architectures.unet import PlainConvUNet

    torch.manual_seed(seed)
    n = len(features)
    net = PlainConvUNet(1, n, features, torch.nn.Conv3d, 3, strides, [2] * n, n_out, [2] * (n - 1),
                        conv_bias=True, norm_op=torch.nn.InstanceNorm3d, norm_op_kwargs={"eps": 1e-5, "affine": True},
                        nonlin=torch.nn.LeakyReLU, nonlin_kwargs={"inplace": True}, deep_supervision=False)
    # Trained networks are decisive; raw random ones are not: their top-2 scores are nearly equal almost
    # everywhere, so nnU-Net's float16 accumulation of window scores (nnunetv2 2.8) flips labels at random.
    # Give each output class its own scale (log-uniform 0.1..30, times 2: few classes compete, scores
    # stay well inside float16's normal range) and no bias.
    scales = torch.logspace(-1.0, np.log10(30.0), n_out)[torch.randperm(n_out)] * 2.0
    with torch.no_grad():
        for name, p in net.named_parameters():
            if ".seg_layers." in name:
                if name.endswith("weight"):
                    p.mul_(scales.view(-1, *([1] * (p.ndim - 1))))
                else:
                    p.zero_()
    return {k: v.clone() for k, v in net.state_dict().items()}


def fabricate_task(spec: dict, root: Path, *, full_size: bool = False, modality: str = "CT") -> list[Path]:
    """One folder per part of a TotalSegmentator task (``spec`` from ``ts_side.py facts``) under
    ``root``; returns the trained-model folders."""
    import torch

    spacing = float(spec["resample"])
    shape = (FULL_3MM if spacing >= 3.0 else FULL_15MM) if full_size else TINY
    folders = []
    for part in spec["parts"]:
        name = part["foldername"]
        folder = root / name / f"{spec['trainer']}__{spec['plans']}__{spec['configuration']}"
        (folder / "fold_0").mkdir(parents=True, exist_ok=True)
        labels = {"background": 0, **{v: int(k) for k, v in sorted(part["labels"].items(), key=lambda x: int(x[0]))}}
        dataset = {"channel_names": {"0": modality}, "labels": labels, "numTraining": 1,
                   "file_ending": ".nii.gz", "name": name}
        (folder / "dataset.json").write_text(json.dumps(dataset, indent=1))
        plans = _plans(name, spacing, shape, modality, spec["plans"], spec["configuration"])
        (folder / "plans.json").write_text(json.dumps(plans, indent=1))
        n_out = max(int(k) for k in part["labels"]) + 1
        checkpoint = {"network_weights": _weights(shape[0], shape[1], n_out, seed=int(part["task_id"])),
                      # the folder carries TotalSegmentator's trainer name; the checkpoint names the base
                      # trainer (nnU-Net only uses it to build the same PlainConvUNet from plans.json)
                      "trainer_name": "nnUNetTrainer",
                      "init_args": {"plans": None, "configuration": spec["configuration"], "fold": 0,
                                    "dataset_json": None},
                      "inference_allowed_mirroring_axes": None, "current_epoch": 0}
        torch.save(checkpoint, folder / "fold_0" / "checkpoint_final.pth")
        folders.append(folder)
    return folders


def release_zip(folder: Path, root: Path, dest: Path) -> Path:
    """``<foldername>.zip`` holding ``<foldername>/<trainer dir>/...`` as the release asset does."""
    dataset_dir = folder.parent
    out = dest / f"{dataset_dir.name}.zip"
    dest.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as zf:
        for path in sorted(dataset_dir.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(root).as_posix())
    return out


#: synthetic inputs: name -> (shape, spacing in mm); zero outside a 24 x 24 voxel column through every slice
SYNTHETIC = {"split-mr.nii.gz": ((256, 256, 451), 3.0)}


def synthetic_input(rel: str, folder: Path) -> Path:
    """``synthetic/NAME``: a deterministic image written once under ``folder``. ``split-mr``: 3 mm,
    256 x 256 x 451, so 512 x 512 x 902 voxels at 1.5 mm (more than TotalSegmentator's 512*512*900 and
    200 slices: it splits the image into three slabs); zero outside a column of smooth random MR-like
    values through all slices, so nnU-Net's non-zero crop keeps each slab's network run small."""
    import nibabel as nib
    from scipy import ndimage

    name = rel.split("/", 1)[1]
    shape, spacing = SYNTHETIC[name]
    path = folder / name
    if path.exists():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(16)
    column = ndimage.gaussian_filter(rng.normal(size=(24, 24, shape[2])), 2.0)
    column = 300.0 + 200.0 * column / column.std() + np.linspace(0.0, 400.0, shape[2])
    data = np.zeros(shape, dtype=np.int16)
    x0, y0 = shape[0] // 2 - 12, shape[1] // 2 - 12
    data[x0:x0 + 24, y0:y0 + 24, :] = np.clip(column, 1, 3000).astype(np.int16)
    affine = np.diag([spacing, spacing, spacing, 1.0])
    tmp = folder / f".{name}.tmp.nii.gz"
    nib.save(nib.Nifti1Image(data, affine), tmp)
    tmp.replace(path)
    return path
