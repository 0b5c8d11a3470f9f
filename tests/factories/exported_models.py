"""The same trained network in other formats: an ONNX file with a volseg sidecar, a MONAI bundle.

Both are made from an nnU-Net v2 trained-model folder (one fold) whose plans use a PlainConvUNet
with instance norm (the phantom model of :mod:`tests.factories.nnunet_model`):

* **ONNX**: ``torch.onnx.export`` of the network itself; the sidecar states what nnU-Net's
  preprocessing does (crop to non-zero, CT normalisation with the plans' statistics, the model
  spacing, and the network's axis order: SimpleITK's (z, y, x) reversal composed with the plans'
  ``transpose_forward``).
* **MONAI bundle**: what a real bundle holds — ``configs/inference.json`` whose ``network_def`` is
  MONAI's own ``DynUNet`` (MONAI's nnU-Net-style network), ``configs/metadata.json`` with the
  channel names, and ``models/model.pt``, the state dict converted parameter by parameter. DynUNet's
  3×3×3 convolutions have no bias; every one is followed by instance normalisation, which subtracts
  the per-channel mean, so dropping nnU-Net's biases changes nothing but float rounding. Transposed
  convolutions keep their bias (``trans_bias``). The CT normalisation is written as MONAI's
  ``ScaleIntensityRanged`` (the same clip and affine map) and the axis order as ``Transposed``.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np


def read_folder(folder: Path) -> tuple[dict, dict, dict]:
    plans = json.loads((folder / "plans.json").read_text())
    dataset = json.loads((folder / "dataset.json").read_text())
    return plans, plans["configurations"]["3d_fullres"], dataset


def load_network(folder: Path, fold: int = 0):
    """The fold's PlainConvUNet, weights loaded, in eval mode."""
    import torch
    from nnunetv2.utilities.get_network_from_plans import get_network_from_plans

    _, config, dataset = read_folder(folder)
    arch = config["architecture"]
    labels = [v for v in dataset["labels"].values()]
    net = get_network_from_plans(arch["network_class_name"], arch["arch_kwargs"], arch["_kw_requires_import"],
                                 1, len(labels), allow_init=True, deep_supervision=False)
    checkpoint = torch.load(folder / f"fold_{fold}" / "checkpoint_final.pth", map_location="cpu", weights_only=False)
    net.load_state_dict(checkpoint["network_weights"])
    return net.eval()


def network_axes(plans: dict) -> list[int]:
    """Volume (i, j, k) axis behind each network axis: (z, y, x) reversal, then transpose_forward."""
    return [2 - int(t) for t in plans["transpose_forward"]]


def model_spacing_ijk(plans: dict, config: dict) -> list[float]:
    """The model spacing along the volume's (i, j, k) axes."""
    axes = network_axes(plans)
    spacing = [0.0, 0.0, 0.0]
    for net_axis, vol_axis in enumerate(axes):
        spacing[vol_axis] = float(config["spacing"][net_axis])
    return spacing


def classes(dataset: dict) -> dict[int, str]:
    return {int(v): k for k, v in dataset["labels"].items() if int(v) != 0}


def export_onnx(folder: Path, out_dir: Path, fold: int = 0) -> Path:
    """``out_dir/phantom.onnx`` + ``phantom.onnx.json``."""
    import torch

    plans, config, dataset = read_folder(folder)
    net = load_network(folder, fold)
    patch = [int(p) for p in config["patch_size"]]
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "phantom.onnx"
    example = torch.zeros(1, 1, *patch)
    torch.onnx.export(net, (example,), str(path), input_names=["image"], output_names=["logits"],
                      dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}}, opset_version=18,
                      dynamo=False)
    props = plans["foreground_intensity_properties_per_channel"]["0"]
    sidecar = {
        "schema_version": "1.0", "name": "phantom-onnx", "version": "1", "modality": "CT",
        "classes": {str(k): v for k, v in classes(dataset).items()},
        "input": {
            "orientation": None, "axes": network_axes(plans), "spacing_mm": model_spacing_ijk(plans, config),
            "intensity": {"kind": "clip_zscore", "clip": [props["percentile_00_5"], props["percentile_99_5"]],
                          "mean": props["mean"], "std": props["std"]},
            "patch_size": patch, "step": 0.5, "mirror_axes": [0, 1, 2], "crop_nonzero": True,
            "resampling": "cubic",
        },
    }
    (out_dir / "phantom.onnx.json").write_text(json.dumps(sidecar, indent=2))
    return path


def dynunet_kwargs(config: dict, out_channels: int) -> dict:
    arch = config["architecture"]["arch_kwargs"]
    n = int(arch["n_stages"])
    return {"spatial_dims": 3, "in_channels": 1, "out_channels": out_channels,
            "kernel_size": [list(k) for k in arch["kernel_sizes"]], "strides": [list(s) for s in arch["strides"]],
            "upsample_kernel_size": [list(s) for s in arch["strides"][1:]],
            "filters": list(arch["features_per_stage"]), "norm_name": ["INSTANCE", {"affine": True, "eps": 1e-5}],
            "act_name": ["leakyrelu", {"inplace": True, "negative_slope": 0.01}], "trans_bias": True,
            "deep_supervision": False, "res_block": False} if n >= 2 else {}


def convert_to_dynunet(state: dict, n_stages: int) -> dict[str, object]:
    """nnU-Net PlainConvUNet parameter name → DynUNet parameter name (conv biases dropped)."""
    def block(src: str, dst: str) -> dict:
        out = {}
        for i in (0, 1):
            out[f"{dst}.conv{i + 1}.conv.weight"] = state[f"{src}.convs.{i}.conv.weight"]
            out[f"{dst}.norm{i + 1}.weight"] = state[f"{src}.convs.{i}.norm.weight"]
            out[f"{dst}.norm{i + 1}.bias"] = state[f"{src}.convs.{i}.norm.bias"]
        return out

    mapped = block("encoder.stages.0.0", "input_block")
    for s in range(1, n_stages - 1):
        mapped.update(block(f"encoder.stages.{s}.0", f"downsamples.{s - 1}"))
    mapped.update(block(f"encoder.stages.{n_stages - 1}.0", "bottleneck"))
    for i in range(n_stages - 1):
        mapped[f"upsamples.{i}.transp_conv.conv.weight"] = state[f"decoder.transpconvs.{i}.weight"]
        mapped[f"upsamples.{i}.transp_conv.conv.bias"] = state[f"decoder.transpconvs.{i}.bias"]
        mapped.update(block(f"decoder.stages.{i}", f"upsamples.{i}.conv_block"))
    last = n_stages - 2
    mapped["output_block.conv.conv.weight"] = state[f"decoder.seg_layers.{last}.weight"]
    mapped["output_block.conv.conv.bias"] = state[f"decoder.seg_layers.{last}.bias"]
    return mapped


def export_monai_bundle(folder: Path, out_dir: Path, fold: int = 0) -> Path:
    """A MONAI bundle folder ``out_dir/phantom_bundle`` holding the same network and weights."""
    import torch
    from monai.networks.nets import DynUNet

    plans, config, dataset = read_folder(folder)
    names = classes(dataset)
    kwargs = dynunet_kwargs(config, len(names) + 1)
    net = DynUNet(**{k: (tuple(v) if k in ("norm_name", "act_name") else v) for k, v in kwargs.items()})
    source = load_network(folder, fold).state_dict()
    mapped = convert_to_dynunet(source, int(config["architecture"]["arch_kwargs"]["n_stages"]))
    own = dict(net.named_parameters())
    missing = sorted(set(own) - set(mapped))
    if missing:
        raise KeyError(f"no nnU-Net parameter for {missing[:3]}")
    with torch.no_grad():
        for name, value in mapped.items():
            own[name].copy_(value)
    root = out_dir / "phantom_bundle"
    (root / "configs").mkdir(parents=True, exist_ok=True)
    (root / "models").mkdir(exist_ok=True)
    torch.save(net.state_dict(), root / "models" / "model.pt")
    props = plans["foreground_intensity_properties_per_channel"]["0"]
    lo, hi, mean, std = (props["percentile_00_5"], props["percentile_99_5"], props["mean"], props["std"])
    axes = network_axes(plans)
    inference = {
        "imports": ["$import torch"],
        "bundle_root": ".",
        "device": "$torch.device('cuda:0' if torch.cuda.is_available() else 'cpu')",
        "network_def": {"_target_": "DynUNet", **kwargs},
        "network": "$@network_def.to(@device)",
        "preprocessing": {"_target_": "Compose", "transforms": [
            {"_target_": "LoadImaged", "keys": "image"},
            {"_target_": "EnsureChannelFirstd", "keys": "image"},
            {"_target_": "Spacingd", "keys": "image", "pixdim": model_spacing_ijk(plans, config), "mode": "bilinear"},
            {"_target_": "ScaleIntensityRanged", "keys": "image", "a_min": lo, "a_max": hi,
             "b_min": (lo - mean) / std, "b_max": (hi - mean) / std, "clip": True},
            {"_target_": "Transposed", "keys": "image", "indices": [0] + [a + 1 for a in axes]},
        ]},
        "inferer": {"_target_": "SlidingWindowInferer", "roi_size": [int(p) for p in config["patch_size"]],
                    "sw_batch_size": 1, "overlap": 0.5, "mode": "gaussian"},
    }
    (root / "configs" / "inference.json").write_text(json.dumps(inference, indent=2))
    metadata = {"version": "0.1.0", "network_data_format": {
        "inputs": {"image": {"type": "image", "num_channels": 1}},
        "outputs": {"pred": {"type": "image", "num_channels": len(names) + 1,
                             "channel_def": {"0": "background", **{str(k): v for k, v in names.items()}}}}}}
    (root / "configs" / "metadata.json").write_text(json.dumps(metadata, indent=2))
    return root


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    return float((a == b).mean())


@lru_cache(maxsize=4)
def nnunet_reference(folder: str) -> dict[str, tuple]:
    """nnU-Net backend labels (fp32, fold 0) on two LPS phantoms: at the model spacing and finer."""
    from volseg.phantom import make_phantom
    from volseg.segmenters.backends.nnunet import load_folder
    from volseg.segmenters.engine.settings import EngineSettings

    plans, config, _ = read_folder(Path(folder))
    spacing = tuple(model_spacing_ijk(plans, config))
    segmenter = load_folder(folder, device="cpu", folds=(0,), settings=EngineSettings(precision="fp32"))
    cases = {"model_grid": (spacing, (64, 72, 56)), "finer": ((2.5, 2.0, 2.2), (102, 108, 76))}
    out = {}
    for i, (name, (sp, shape)) in enumerate(cases.items()):
        volume = make_phantom(shape, sp, orientation="LPS", rotation_deg=4.0, seed=20 + i).image
        out[name] = (volume, segmenter.predict(volume).array)
    return out
