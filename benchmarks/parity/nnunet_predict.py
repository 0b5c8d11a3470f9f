"""Parity of ``volseg segment --model FOLDER`` (a plain nnU-Net results folder) with nnU-Net's own
``nnUNetv2_predict_from_modelfolder``, on the same folder and the same real CT.

A folder given by path follows nnU-Net's semantics (its plans' spacing and normalisation, step 0.5,
mirroring as the checkpoint allows), not a publisher's pipeline around it; so its reference is nnU-Net's
own predictor program, the one TotalSegmentator's venv pins (``bash benchmarks/parity/make_venvs.sh
totalseg``). The folder is the TS-size fabricated ``total-fast`` network that the TotalSegmentator rows
made (``WORK/totalseg/full/total-fast/ts_home/nnunet/results/Dataset297_…``): run those first
(``python -m benchmarks.parity --full-size --only total-fast``). Both programs run in fp32 on the CPU.

Near-ties: voxels where nnU-Net's own exported probabilities (``--save_probabilities``, on the input
grid) have their two largest within :data:`TIE` of each other. nnU-Net's program exports probabilities,
not logits, so this is not the TotalSegmentator rows' test (top-2 logit gap under 1 % of the top
logit): a softmax turns a small logit gap between two likely classes into a larger probability gap.

    PYTHONPATH=src python -m benchmarks.parity --peers nnunet_predict
"""
from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys
import time

import numpy as np
from benchmarks.parity import installed_version
from benchmarks.parity.compare import compare

REPO = pathlib.Path(__file__).resolve().parents[2]
DATA = pathlib.Path(os.environ.get("VOLSEG_SHARED_DATA") or REPO.parent / "shared" / "data")
IMAGE = DATA / "totalseg-example" / "example_ct.nii.gz"
VENV = pathlib.Path(os.environ.get("VOLSEG_PEER_TS_VENV", "/work/peers/ts-venv"))
TRAINER = "nnUNetTrainer_4000epochs_NoMirroring__nnUNetPlans__3d_fullres"
TIE = 1e-2


def model_folder(ts_home: pathlib.Path) -> pathlib.Path | None:
    """The total-fast folder (Dataset297) in a TotalSegmentator home the TotalSegmentator rows made
    (None: not made yet)."""
    found = sorted((ts_home / "nnunet" / "results").glob(f"Dataset297_*/{TRAINER}"))
    return found[0] if found and (found[0] / "fold_0" / "checkpoint_final.pth").exists() else None


def peer_version() -> str | None:
    return installed_version(VENV, "nnunetv2")


def run_peer(work: pathlib.Path, folder: pathlib.Path, image: pathlib.Path, *, venv: pathlib.Path = VENV,
             folds: tuple[int, ...] = (0,)) -> tuple[pathlib.Path, pathlib.Path, float]:
    """(labels, probabilities .npz, seconds) of ``nnUNetv2_predict_from_modelfolder`` in ``venv``."""
    inputs, out = work / "peer_in", work / "peer_out"
    for d in (inputs, out):
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
    (inputs / "case_0000.nii.gz").symlink_to(image)
    env = {**os.environ, "nnUNet_raw": str(work / "raw"), "nnUNet_preprocessed": str(work / "pre"),
           "nnUNet_results": str(folder.parent.parent), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    t = time.time()
    subprocess.run([str(venv / "bin" / "nnUNetv2_predict_from_modelfolder"), "-i", str(inputs), "-o", str(out),
                    "-m", str(folder), "-f", *map(str, folds), "-device", "cpu", "--save_probabilities",
                    "-npp", "1", "-nps", "1"],
                   env=env, check=True, stdout=subprocess.DEVNULL, stderr=(work / "peer.log").open("w"))
    return out / "case.nii.gz", out / "case.npz", time.time() - t


def run_volseg(work: pathlib.Path, folder: pathlib.Path, image: pathlib.Path) -> tuple[pathlib.Path, float]:
    out = work / "volseg_out"
    env = {**os.environ, "VOLSEG_HOME": str(work / "volseg_home"), "VOLSEG_OFFLINE": "1",
           "PYTHONPATH": str(REPO / "src")}
    t = time.time()
    subprocess.run([sys.executable, "-m", "volseg.cli.main", "segment", str(image), "--model", str(folder),
                    "--precision", "fp32", "--device", "cpu", "--no-html", "--force", "-o", str(out)],
                   env=env, check=True, stdout=subprocess.DEVNULL, stderr=(work / "volseg.log").open("w"))
    return out / "segmentation.nii.gz", time.time() - t


def margins(probabilities: pathlib.Path, out: pathlib.Path) -> pathlib.Path:
    """Top-2 probability gap per input voxel; nnU-Net stores (class, z, y, x): back to (x, y, z)."""
    probs = np.load(probabilities)["probabilities"].astype(np.float32)
    top2 = np.sort(probs, axis=0)[-2:]
    np.savez_compressed(out, margin=(top2[1] - top2[0]).transpose(2, 1, 0))
    return out


def compare_row(work: pathlib.Path, folder: pathlib.Path, image: pathlib.Path = IMAGE) -> dict:
    from volseg.labels import read_labels

    work.mkdir(parents=True, exist_ok=True)
    peer, probabilities, peer_s = run_peer(work, folder, image)
    ours, ours_s = run_volseg(work, folder, image)
    labels = json.loads((folder / "dataset.json").read_text())["labels"]
    peer_names = {int(v): k for k, v in labels.items() if int(v) != 0}
    our_names = read_labels(ours.parent / "labels.json").names()
    result = compare(peer, ours, margins(probabilities, work / "margin.npz"), peer_names, our_names, tol=TIE)
    notes = ["TS-size total-fast folder by path (nnU-Net semantics: step 0.5, its checkpoint's mirroring), fp32",
             *result.pop("notes"), f"nnU-Net {peer_s:.0f} s, volseg {ours_s:.0f} s"]
    return {"model": f"--model {folder.parent.name}/{folder.name}", "peer": "nnUNetv2_predict_from_modelfolder",
            "peer_version": peer_version(), "input": f"{image.parent.name}/{image.name}", **result,
            "notes": "; ".join(notes)}


def rows(work: pathlib.Path) -> list[dict]:
    work = pathlib.Path(work)
    folder = model_folder(work.parent / "totalseg" / "full" / "total-fast" / "ts_home")
    skip = ("no nnU-Net in " + str(VENV)) if peer_version() is None else \
        None if folder is not None else "the TS-size total-fast folder is not made yet (run the total-fast row first)"
    if skip:
        return [{"model": "--model (nnU-Net folder)", "peer": "nnUNetv2_predict_from_modelfolder",
                 "peer_version": peer_version(), "input": IMAGE.name, "notes": f"skipped: {skip}"}]
    return [compare_row(work, folder)]


if __name__ == "__main__":
    print(json.dumps(rows(pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else pathlib.Path("/tmp/volseg-parity/nnunet_predict"))))
