"""Parity of ``-m wholebody_ct_segmentation`` with MONAI's own bundle pipeline.

A bundle laid out as the model zoo publishes it (``configs/inference.json`` of the 0.2.5 release,
``configs/metadata.json``, ``models/model.pt``) is fabricated with a small deterministic SegResNet
(105 output channels, the catalogue's); the zip and ``model.pt`` are installed through
``volseg.segmenters.weights.install_from_source`` as a user would, and both run on the same head CT:

* **reference**: the bundle's own ``preprocessing`` Compose (LoadImaged … Orientationd, Spacingd,
  NormalizeIntensityd, ScaleIntensityd), its ``SlidingWindowInferer`` and ``postprocessing``
  (Activationsd, AsDiscreted, Invertd), all instantiated by MONAI's ``ConfigParser`` from the file;
* **volseg**: ``volseg.api.load_model("wholebody_ct_segmentation")`` in fp32.

Near-ties: voxels whose reference softmax (mapped back with the same nearest Invertd) has its top two
classes within ``TIE`` of each other.
"""
from __future__ import annotations

import importlib
import json
import os
import pathlib
import shutil
import sys

import numpy as np

MODEL = "wholebody_ct_segmentation"
DATA = pathlib.Path(os.environ.get("VOLSEG_SHARED_DATA") or
                    pathlib.Path(__file__).resolve().parents[2].parent / "shared" / "data")
HEAD_CT = DATA / "head-ct" / "cranium_ct_0051.nii.gz"
TIE = 1e-3
CONFIG_URL_SOURCE = "Project-MONAI/model-zoo models/wholeBody_ct_segmentation/configs/inference.json"


def inference_config(init_filters: int = 8) -> dict:
    """The release's inference.json, with a small SegResNet (same class, same 105 channels)."""
    return {
        "displayable_configs": {"highres": True, "sw_overlap": 0.25, "sw_batch_size": 1},
        "imports": ["$import glob", "$import numpy", "$import os"],
        "bundle_root": ".", "image_key": "image",
        "device": "$torch.device('cpu')",
        "pixdim": "$[1.5, 1.5, 1.5] if @displayable_configs#highres else [3.0, 3.0, 3.0]",
        "network_def": {"_target_": "SegResNet", "spatial_dims": 3, "in_channels": 1, "out_channels": 105,
                        "init_filters": init_filters, "blocks_down": [1, 1], "blocks_up": [1],
                        "dropout_prob": 0.2},
        "preprocessing": {"_target_": "Compose", "transforms": [
            {"_target_": "LoadImaged", "keys": "@image_key"},
            {"_target_": "EnsureTyped", "keys": "@image_key"},
            {"_target_": "EnsureChannelFirstd", "keys": "@image_key"},
            {"_target_": "Orientationd", "keys": "@image_key", "axcodes": "RAS"},
            {"_target_": "Spacingd", "keys": "@image_key", "pixdim": "@pixdim", "mode": "bilinear"},
            {"_target_": "NormalizeIntensityd", "keys": "@image_key", "nonzero": True},
            {"_target_": "ScaleIntensityd", "keys": "@image_key", "minv": -1.0, "maxv": 1.0}]},
        "inferer": {"_target_": "SlidingWindowInferer", "roi_size": [96, 96, 96],
                    "sw_batch_size": "@displayable_configs#sw_batch_size",
                    "overlap": "@displayable_configs#sw_overlap", "padding_mode": "replicate",
                    "mode": "gaussian", "device": "$torch.device('cpu')"},
        "postprocessing": {"_target_": "Compose", "transforms": [
            {"_target_": "Activationsd", "keys": "pred", "softmax": True},
            {"_target_": "AsDiscreted", "keys": "pred", "argmax": True},
            {"_target_": "Invertd", "keys": "pred", "transform": "@preprocessing", "orig_keys": "@image_key",
             "nearest_interp": True, "to_tensor": True}]},
    }


def fabricate(folder: pathlib.Path, *, init_filters: int = 8, seed: int = 0) -> pathlib.Path:
    """``folder`` with the release zip and model.pt as the catalogue names them; returns it."""
    import torch
    from monai.networks.nets import SegResNet

    from volseg.segmenters.catalogue import get_entry

    entry = get_entry(MODEL)
    bundle = folder / "src" / "wholeBody_ct_segmentation"
    (bundle / "configs").mkdir(parents=True, exist_ok=True)
    (bundle / "models").mkdir(exist_ok=True)
    config = inference_config(init_filters)
    (bundle / "configs" / "inference.json").write_text(json.dumps(config, indent=1))
    channels = {"0": "background", **{str(c.index): c.name for c in entry.classes}}
    meta = {"version": entry.version, "network_data_format": {"outputs": {"pred": {"channel_def": channels}}}}
    (bundle / "configs" / "metadata.json").write_text(json.dumps(meta))
    torch.manual_seed(seed)
    kwargs = {k: v for k, v in config["network_def"].items() if k != "_target_"}
    net = SegResNet(**kwargs)
    with torch.no_grad():  # a decisive head: few near-ties
        for p in list(net.parameters())[-2:]:
            p.mul_(30.0)
    torch.save(net.state_dict(), bundle / "models" / "model.pt")
    source = folder / "download"
    source.mkdir(exist_ok=True)
    shutil.copy(bundle / "models" / "model.pt", source / "model.pt")
    zip_name = entry.weights[0].name
    shutil.make_archive(str(source / zip_name[:-4]), "zip", bundle.parent, bundle.name)
    return source


def reference(bundle: pathlib.Path, image: pathlib.Path) -> tuple[np.ndarray, np.ndarray]:
    """MONAI's own labels on the input grid and the top-2 softmax margin per input voxel."""
    import torch
    from monai.bundle import ConfigParser
    from monai.transforms import Invertd

    parser = ConfigParser()
    parser.read_config(str(bundle / "configs" / "inference.json"))
    parser["bundle_root"] = str(bundle)
    pre = parser.get_parsed_content("preprocessing")
    net = parser.get_parsed_content("network_def")
    net.load_state_dict(torch.load(bundle / "models" / "model.pt", weights_only=True))
    net.eval()
    inferer = parser.get_parsed_content("inferer")
    post = parser.get_parsed_content("postprocessing")
    data = pre({"image": str(image)})
    with torch.no_grad():
        data["pred"] = inferer(data["image"][None], net)[0]
    probs = torch.softmax(data["pred"].as_tensor(), 0)
    top2 = torch.topk(probs, 2, dim=0).values
    margin = data["pred"].clone()[:1]
    margin.set_array(top2[0:1] - top2[1:2])
    inv = Invertd(keys="margin", transform=pre, orig_keys="image", nearest_interp=True)
    margins = inv({"margin": margin, "image": data["image"]})["margin"]
    labels = post(data)["pred"]
    return np.asarray(labels)[0].astype(np.int64), np.asarray(margins)[0]


def volseg_labels(image: pathlib.Path) -> tuple[np.ndarray, np.ndarray]:
    """volseg's labels (input grid, as stored) and the input affine."""
    from volseg.api import load_model
    from volseg.io import read_image

    segmenter = load_model(MODEL, device="cpu", engine={"precision": "fp32"})
    volume = read_image(image).volume
    labels = segmenter.predict(volume)
    return np.asarray(labels.array).astype(np.int64), np.asarray(labels.affine)


def use_fabricated_entry() -> None:
    """The catalogue entry without the publisher's hashes (they pin the real files, not fabricated
    ones); everything else as catalogued. Patches this process's catalogue only."""
    from volseg.segmenters import catalogue
    from volseg.segmenters.weights import bundle as weights_bundle
    weights_verify = importlib.import_module("volseg.segmenters.weights.verify")

    raw = json.loads(catalogue.get_entry(MODEL).model_dump_json(exclude_none=True))
    for weight in raw["weights"]:
        weight.pop("publisher_hash", None)
    entries = {**catalogue.load_catalogue(), MODEL: catalogue.ModelEntry.model_validate(raw)}
    catalogue.load_catalogue = lambda: entries
    weights_bundle.load_catalogue = lambda: entries
    weights_verify.load_catalogue = lambda: entries


def crop_input(image: pathlib.Path, box: tuple[slice, ...], out: pathlib.Path) -> pathlib.Path:
    """A sub-volume of ``image`` with its affine moved to the box (a small input for CI)."""
    import nibabel as nib

    img = nib.load(str(image))
    start = np.array([b.start or 0 for b in box] + [1.0])
    affine = img.affine.copy()
    affine[:, 3] = img.affine @ start
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj)[box].astype(np.float32), affine), str(out))
    return out


def compare(work: pathlib.Path, image: pathlib.Path = HEAD_CT, *, init_filters: int = 8,
            box: tuple[slice, ...] | None = None) -> dict:
    """The catalogued bundle, fabricated, through volseg and through MONAI on ``image`` (or its
    sub-volume ``box``)."""
    import monai
    import nibabel as nib

    from volseg.segmenters.weights import install_from_source

    work.mkdir(parents=True, exist_ok=True)
    if box is not None:
        image = crop_input(image, box, work / "input.nii.gz")
    os.environ["VOLSEG_HOME"] = str(work / "home")
    use_fabricated_entry()
    source = fabricate(work, init_filters=init_filters)
    install_from_source(source, model=MODEL)
    ref, margin = reference(work / "src" / "wholeBody_ct_segmentation", image)
    ours, affine = volseg_labels(image)
    same_grid = ref.shape == ours.shape and np.allclose(affine, nib.load(str(image)).affine, atol=1e-4)
    differ = ref != ours if same_grid else np.ones(ref.shape, bool)
    ties = margin < TIE
    return {"model": MODEL, "peer": "MONAI ConfigParser preprocessing + SlidingWindowInferer + Invertd",
            "peer_version": monai.__version__, "input": image.name,
            "agreement_pct": round(100.0 * (1.0 - float(differ.mean())), 4),
            "near_ties": int(ties.sum()), "disagreements_all_near_ties": bool(np.all(ties[differ])),
            "same_grid": bool(same_grid), "same_labels": True,
            "notes": f"{int(differ.sum())} voxels differ; SegResNet init_filters={init_filters}, fp32, CPU"}


def rows(work: pathlib.Path) -> list[dict]:
    return [compare(pathlib.Path(work) / "monai")]


if __name__ == "__main__":
    import tempfile

    sys.path[:] = [p for p in sys.path if pathlib.Path(p or ".").resolve() != pathlib.Path(__file__).parent]
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "src"))
    out = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else pathlib.Path(tempfile.mkdtemp(prefix="parity-monai-"))
    for row in rows(out):
        print(json.dumps(row))
