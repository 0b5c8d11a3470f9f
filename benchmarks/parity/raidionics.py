"""Parity of the six ``raidionics-*`` catalogue entries with ``raidionicsseg`` (Raidionics' own back-end).

For each entry, deterministic ONNX networks (a 3×3×3 convolution, tanh, a 1×1×1 convolution and the
softmax the publisher's graphs include; seeded) are written under the publisher's layout
(``TASK/pre_processing.ini``, ``TASK/fold0/model.onnx``), zipped as the catalogue's archives and
installed with ``install_from_source``; both programs then run on the same input:

* **peer**: ``raidionicsseg.fit.run_model(<runtime ini>)`` in its own virtual environment
  (``VOLSEG_PEER_RAIDIONICS_VENV``, default ``/work/peers/raidionics-venv``), CPU; brain models get the
  ``MRI_Brain`` result as ``[Neuro] brain_segmentation_filename`` and CT models the ``CT_Lungs``
  result as ``[Mediastinum] lungs_segmentation_filename``, as Raidionics' orchestrator passes them;
* **volseg**: ``load_model(<entry>).predict`` on the same file.

Near-ties: voxels whose peer probability (``reconstruction_method = probabilities``) lies within
``TIE`` of the threshold.
"""
from __future__ import annotations

import configparser
import io
import json
import os
import pathlib
import shutil
import subprocess
import sys
import zipfile

import numpy as np
from benchmarks.parity import installed_version

DATA = pathlib.Path(os.environ.get("VOLSEG_SHARED_DATA") or
                    pathlib.Path(__file__).resolve().parents[2].parent / "shared" / "data")
MR = DATA / "totalseg-example" / "example_mr_sm.nii.gz"
CHEST = DATA / "chest-ct-dicom"
TIE = 1e-3
VENV_VAR = "VOLSEG_PEER_RAIDIONICS_VENV"
DEFAULT_VENV = "/work/peers/raidionics-venv"

MR_INI = {"imaging_modality": "MRI", "output_spacing": "1.0, 1.0, 1.0", "new_axial_size": "64, 64, 48",
          "normalization_method": "zeromean", "background_cropping": "brain_clip"}
CT_INI = {"imaging_modality": "CT", "output_spacing": "1.0, 1.0, 1.0", "new_axial_size": "64, 64, 48",
          "normalization_method": "default", "background_cropping": "lungs_clip"}
#: entry → (main task, its ini, helper task, helper ini, input)
MODELS = {
    "raidionics-mri-gbm": ("MRI_GBM", {**MR_INI, "classes": "Background, Tumor"}),
    "raidionics-mri-lgglioma": ("MRI_LGGlioma", {**MR_INI, "classes": "Background, Tumor"}),
    "raidionics-mri-meningioma": ("MRI_Meningioma", {**MR_INI, "classes": "Background, Tumor"}),
    "raidionics-mri-metastasis": ("MRI_Metastasis", {**MR_INI, "classes": "Background, Tumor"}),
    "raidionics-ct-airways": ("CT_Airways", {**CT_INI, "classes": "Background, Airways"}),
    "raidionics-ct-lymphnodes": ("CT_LymphNodes", {**CT_INI, "classes": "Background, LymphNodes",
                                                   "output_spacing": "3.5, 3.5, 6.0", "new_axial_size": "32, 32, 16"}),
}
HELPERS = {"MRI_Brain": {**MR_INI, "background_cropping": "minimum", "classes": "Background, Brain"},
           "CT_Lungs": {**CT_INI, "background_cropping": "false", "classes": "Background, Lungs"}}


def ini_text(values: dict[str, str]) -> str:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_dict({
        "Default": {"imaging_modality": values["imaging_modality"], "training_backend": "Torch"},
        "PreProcessing": {"output_spacing": values["output_spacing"], "background_cropping": values["background_cropping"],
                          "new_axial_size": values["new_axial_size"], "slicing_plane": "axial",
                          "normalization_method": values["normalization_method"], "number_inputs": "1",
                          "channels_order": "channels_first"},
        "Training": {"nb_classes": "2", "classes": values["classes"], "optimal_thresholds": "0.5, 0.5",
                     "activation_layer_included": "true", "activation_layer_type": "softmax"}})
    out = io.StringIO()
    parser.write(out)
    return out.getvalue()


def network_bytes(seed: int) -> bytes:
    """A smooth deterministic network: conv 3³ → tanh → conv 1³ → softmax, channels first."""
    import torch

    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Conv3d(1, 4, 3, padding=1), torch.nn.Tanh(), torch.nn.Conv3d(4, 2, 1),
                              torch.nn.Softmax(dim=1)).eval()
    with torch.no_grad():
        net[2].weight.mul_(4.0)
    example = torch.zeros((1, 1, 8, 8, 8))
    axes = {0: "b", 2: "x", 3: "y", 4: "z"}
    buffer = io.BytesIO()
    torch.onnx.export(net, (example,), buffer, input_names=["input"], output_names=["output"],
                      dynamic_axes={"input": axes, "output": axes}, opset_version=17, dynamo=False)
    return buffer.getvalue()


def write_task(folder: pathlib.Path, task: str, values: dict, seed: int) -> pathlib.Path:
    (folder / task / "fold0").mkdir(parents=True, exist_ok=True)
    (folder / task / "pre_processing.ini").write_text(ini_text(values))
    (folder / task / "fold0" / "model.onnx").write_bytes(network_bytes(seed))
    return folder / task


def write_archive(path: pathlib.Path, task_folder: pathlib.Path) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        for f in sorted(task_folder.rglob("*")):
            if f.is_file():  # fixed dates: the same bytes every run
                zf.writestr(zipfile.ZipInfo(f"{task_folder.name}/{f.relative_to(task_folder)}"), f.read_bytes())
        zf.writestr(zipfile.ZipInfo(f"{task_folder.name}/pipeline.json"), "{}")


def venv() -> pathlib.Path:
    return pathlib.Path(os.environ.get(VENV_VAR, DEFAULT_VENV))


def peer_version() -> str | None:
    return installed_version(venv(), "raidionicsseg")


def run_peer(model: pathlib.Path, image: pathlib.Path, out: pathlib.Path, *, method: str = "thresholding",
             helper_mask: pathlib.Path | None = None, modality: str = "MRI") -> pathlib.Path:
    """``raidionicsseg`` on ``image`` (copied as ``input0.nii.gz``); returns its output folder."""
    inputs = out / "inputs"
    inputs.mkdir(parents=True, exist_ok=True)
    (inputs / "input0.nii.gz").write_bytes(image.read_bytes())
    cfg = configparser.ConfigParser()
    cfg["System"] = {"gpu_id": "-1", "inputs_folder": str(inputs), "output_folder": str(out / "out"),
                     "model_folder": str(model)}
    cfg["Runtime"] = {"reconstruction_method": method, "reconstruction_order": "resample_first",
                      "folds_ensembling": "false"}
    if helper_mask is not None:
        cfg["Neuro" if modality == "MRI" else "Mediastinum"] = {
            "brain_segmentation_filename" if modality == "MRI" else "lungs_segmentation_filename": str(helper_mask)}
    (out / "out").mkdir(parents=True, exist_ok=True)
    with open(out / "runtime.ini", "w") as f:
        cfg.write(f)
    proc = subprocess.run([str(venv() / "bin" / "python"), "-c",
                           "import sys; from raidionicsseg.fit import run_model; run_model(sys.argv[1])",
                           str(out / "runtime.ini")], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"raidionicsseg failed: {proc.stderr[-2000:]}")
    return out / "out"


def nifti_input(image: pathlib.Path, work: pathlib.Path) -> pathlib.Path:
    """A NIfTI of ``image`` (DICOM series converted by volseg's reader, as stored)."""
    if image.is_file():
        return image
    import nibabel as nib

    from volseg.io import read_image

    vol = read_image(image).volume
    path = work / f"{image.name}.nii.gz"
    if not path.exists():
        nib.save(nib.Nifti1Image(np.asarray(vol.array, dtype=np.float32), np.asarray(vol.affine)), str(path))
    return path


def compare(name: str, work: pathlib.Path, *, ties: bool = True) -> dict:
    """One entry against the peer; ``ties=False`` skips the peer's probability run unless voxels
    differ (near-ties are then counted only where needed)."""
    import nibabel as nib

    from volseg.api import load_model
    from volseg.io import read_image
    from volseg.segmenters.catalogue import get_entry
    from volseg.segmenters.weights import install_from_source

    entry = get_entry(name)
    task, values = MODELS[name]
    helper = "MRI_Brain" if values["imaging_modality"] == "MRI" else "CT_Lungs"
    image = nifti_input(MR if helper == "MRI_Brain" else CHEST, work)
    root = work / name
    shutil.rmtree(root, ignore_errors=True)
    models = root / "models"
    seed = sorted(MODELS).index(name) + 1
    main_folder = write_task(models, task, values, seed)
    helper_folder = write_task(models, helper, HELPERS[helper], 100)
    source = root / "download"
    source.mkdir(parents=True, exist_ok=True)
    names = [w.name for w in entry.weights]
    write_archive(source / next(n for n in names if task in n), main_folder)
    write_archive(source / next(n for n in names if helper in n), helper_folder)
    os.environ["VOLSEG_HOME"] = str(root / "home")
    install_from_source(source, model=name)

    helper_out = run_peer(helper_folder, image, root / "peer-helper")
    helper_mask = next(helper_out.glob("labels_*.nii.gz"))
    peer_out = run_peer(main_folder, image, root / "peer", helper_mask=helper_mask, modality=values["imaging_modality"])
    class_name = values["classes"].split(",")[1].strip()
    peer_img = nib.load(str(peer_out / f"labels_{class_name}.nii.gz"))
    peer = np.asarray(peer_img.dataobj).astype(np.int64)

    volume = read_image(image).volume
    labels = load_model(name, device="cpu").predict(volume)
    ours = np.asarray(labels.array).astype(np.int64)
    same_grid = ours.shape == peer.shape and np.allclose(np.asarray(labels.affine), peer_img.affine, atol=1e-3)
    differ = ours != peer if same_grid else np.ones(peer.shape, bool)
    if ties or differ.any():
        prob_out = run_peer(main_folder, image, root / "peer-prob", method="probabilities", helper_mask=helper_mask,
                            modality=values["imaging_modality"])
        prob = np.asarray(nib.load(str(prob_out / f"pred_{class_name}.nii.gz")).dataobj, dtype=np.float32)
        ties = np.abs(prob - 0.5) < TIE
    else:
        ties = np.zeros(peer.shape, bool)
    same_labels = [c.name for c in entry.classes][:1] == [entry.classes[0].name] and len(entry.classes) == 1
    return {"model": name, "peer": "raidionicsseg", "peer_version": peer_version(), "input": image.name,
            "agreement_pct": round(100.0 * (1.0 - float(differ.mean())), 4), "near_ties": int(ties.sum()),
            "disagreements_all_near_ties": bool(np.all(ties[differ])), "same_grid": bool(same_grid),
            "same_labels": bool(same_labels),
            "notes": f"{int(differ.sum())} voxels differ; helper {helper} run by the peer and given as its mask"}


def available() -> bool:
    return (venv() / "bin" / "python").is_file()


def rows(work: pathlib.Path, models=None) -> list[dict]:
    work = pathlib.Path(work) / "raidionics"
    work.mkdir(parents=True, exist_ok=True)
    if not available():
        return [{"model": m, "peer": "raidionicsseg", "peer_version": None, "input": None, "agreement_pct": None,
                 "near_ties": None, "disagreements_all_near_ties": None, "same_grid": None, "same_labels": None,
                 "notes": f"skipped: no raidionicsseg venv at {venv()} (set {VENV_VAR})"} for m in (models or MODELS)]
    return [compare(m, work) for m in (models or MODELS)]


if __name__ == "__main__":
    import tempfile

    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "src"))
    out = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else pathlib.Path(tempfile.mkdtemp(prefix="parity-raid-"))
    for row in rows(out, sys.argv[2:] or None):
        print(json.dumps(row))
