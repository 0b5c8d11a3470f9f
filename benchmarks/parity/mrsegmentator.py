"""Parity of ``-m mrsegmentator`` with MRSegmentator's own program (``mrsegmentator`` 2.0, PyPI).

Weights: tiny random nnU-Net networks (``fabricate.TINY``, per-class output scales), five folds, 41
outputs (the catalogue's 40 classes), mirroring allowed in every checkpoint as in the release, laid out as
the release's ``weights.zip`` unpacks (``dataset.json``, ``plans.json``, ``fold_K/checkpoint_final.pth``).
The peer reads that folder through ``MRSEG_WEIGHTS_PATH`` (its "legacy mode": a folder holding
``plans.json`` is the model itself; nothing is downloaded); volseg installs the same folder with ``volseg
models install FOLDER -m mrsegmentator`` (the release archive's sha256 pins the real file, so a
fabricated zip could not be installed through the mirror). Both run with their defaults (five folds,
mirroring, step 0.5) in fp32 on the CPU, on the MR example; the peer is ``mrsegmentator --cpu_only``
in its own venv (``bash benchmarks/parity/make_venvs.sh mrsegmentator``). Near-ties: the top-2 gap of
nnU-Net's own probabilities (:func:`lps_scores`, :func:`margins_for`), under ``nnunet_predict.TIE``.

    PYTHONPATH=src python -m benchmarks.parity --peers mrsegmentator
"""
from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass

import numpy as np
from benchmarks.parity import installed_version, nnunet_predict
from benchmarks.parity.compare import compare

MODEL = "mrsegmentator"
REPO = pathlib.Path(__file__).resolve().parents[2]
DATA = pathlib.Path(os.environ.get("VOLSEG_SHARED_DATA") or REPO.parent / "shared" / "data")
IMAGE = DATA / "totalseg-example" / "example_mr_sm.nii.gz"
VENV = pathlib.Path(os.environ.get("VOLSEG_PEER_MRSEG_VENV", "/work/peers/mrseg-venv"))
SPACING_MM = 3.0
FOLDS = 5


def peer_version() -> str | None:
    return installed_version(VENV, "mrsegmentator")


def fabricate(folder: pathlib.Path) -> pathlib.Path:
    """The unpacked weights.zip: tiny networks with the catalogue's classes, five folds (TS-size ones
    with five folds and mirroring take ~7 min per program and input on two cores here)."""
    import torch
    from benchmarks.parity import fabricate as fab

    from volseg.segmenters.catalogue import get_entry

    labels = {int(k): v for k, v in get_entry(MODEL).parts[0].labels.items()}
    folder.mkdir(parents=True, exist_ok=True)
    dataset = {"channel_names": {"0": "MRI"}, "labels": {"background": 0, **{n: i for i, n in sorted(labels.items())}},
               "numTraining": 1, "file_ending": ".nii.gz", "name": "Dataset_mrsegmentator"}
    (folder / "dataset.json").write_text(json.dumps(dataset, indent=1))
    plans = fab._plans("Dataset_mrsegmentator", SPACING_MM, fab.TINY, "MR", "nnUNetPlans", "3d_fullres")
    (folder / "plans.json").write_text(json.dumps(plans, indent=1))
    for fold in range(FOLDS):
        (folder / f"fold_{fold}").mkdir(exist_ok=True)
        checkpoint = {"network_weights": fab._weights(fab.TINY[0], fab.TINY[1], max(labels) + 1, seed=100 + fold),
                      "trainer_name": "nnUNetTrainer",
                      "init_args": {"plans": None, "configuration": "3d_fullres", "fold": fold, "dataset_json": None},
                      "inference_allowed_mirroring_axes": (0, 1, 2), "current_epoch": 0}
        torch.save(checkpoint, folder / f"fold_{fold}" / "checkpoint_final.pth")
    return folder


def run_peer(work: pathlib.Path, weights: pathlib.Path, image: pathlib.Path) -> tuple[pathlib.Path, float]:
    out = work / "peer_out"
    shutil.rmtree(out, ignore_errors=True)
    env = {**os.environ, "MRSEG_WEIGHTS_PATH": str(weights), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2"),
           "CUDA_VISIBLE_DEVICES": ""}
    t = time.time()
    subprocess.run([str(VENV / "bin" / "mrsegmentator"), "--input", str(image), "--outdir", str(out), "--cpu_only",
                    "--no_tqdm", "--nproc", "1", "--nproc_export", "1"], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=(work / "peer.log").open("w"))
    found = sorted(out.glob("*_seg.nii.gz"))
    if not found:
        raise RuntimeError(f"mrsegmentator wrote no *_seg.nii.gz in {out}")
    return found[0], time.time() - t


def run_volseg(work: pathlib.Path, weights: pathlib.Path, image: pathlib.Path) -> tuple[pathlib.Path, float]:
    home, out = work / "volseg_home", work / "volseg_out"
    env = {**os.environ, "VOLSEG_HOME": str(home), "VOLSEG_OFFLINE": "1", "PYTHONPATH": str(REPO / "src")}
    cli = [sys.executable, "-m", "volseg.cli.main"]
    if not (home / "volseg.lock.json").exists():
        subprocess.run([*cli, "models", "install", str(weights), "-m", MODEL], env=env, check=True,
                       capture_output=True, text=True)
    t = time.time()
    subprocess.run([*cli, "segment", str(image), "-m", MODEL, "--precision", "fp32", "--device", "cpu",
                    "--no-html", "--force", "-o", str(out)], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=(work / "volseg.log").open("w"))
    return out / "segmentation.nii.gz", time.time() - t


@dataclass(frozen=True)
class LpsScores:
    """nnU-Net's own labels and top-2 probability gaps on the image reoriented to LPS (what
    MRSegmentator feeds ``nnUNetPredictor``): the same for every stored orientation of one image."""

    affine: np.ndarray
    labels: np.ndarray
    gaps: np.ndarray


def lps_scores(work: pathlib.Path, weights: pathlib.Path, image: pathlib.Path) -> LpsScores:
    """MRSegmentator exports no probabilities, but it is ``nnUNetPredictor`` on the image reoriented to
    LPS, so nnU-Net's own program (same venv, same folds) on that LPS image gives them."""
    import nibabel as nib
    from nibabel.orientations import axcodes2ornt, io_orientation, ornt_transform

    img = nib.load(str(image))
    lps = img.as_reoriented(ornt_transform(io_orientation(img.affine), axcodes2ornt(("L", "P", "S"))))
    work.mkdir(parents=True, exist_ok=True)
    lps_path = work / "input_lps.nii.gz"
    nib.save(lps, str(lps_path))
    labels, probabilities, _ = nnunet_predict.run_peer(work, weights, lps_path, venv=VENV, folds=tuple(range(FOLDS)))
    gaps = np.load(nnunet_predict.margins(probabilities, work / "margin_lps.npz"))["margin"]
    return LpsScores(lps.affine, np.asarray(nib.load(str(labels)).dataobj), gaps)


def margins_for(scores: LpsScores, peer: pathlib.Path, out: pathlib.Path) -> pathlib.Path:
    """``scores``' gaps in ``peer``'s axis order, saved as ``out`` when nnU-Net's labels equal the
    peer's there (else no margins are written, and the row counts no near-ties)."""
    import nibabel as nib
    from nibabel.orientations import axcodes2ornt, io_orientation, ornt_transform

    peer_img = nib.load(str(peer))
    to_peer = ornt_transform(axcodes2ornt(("L", "P", "S")), io_orientation(peer_img.affine))
    labels = nib.Nifti1Image(scores.labels, scores.affine).as_reoriented(to_peer)
    if np.array_equal(np.asarray(labels.dataobj), np.asarray(peer_img.dataobj)):
        gaps = nib.Nifti1Image(scores.gaps, scores.affine).as_reoriented(to_peer)
        np.savez_compressed(out, margin=np.asarray(gaps.dataobj))
    return out


def compare_row(work: pathlib.Path, image: pathlib.Path, *, weights: pathlib.Path, scores: LpsScores) -> dict:
    from volseg.labels import read_labels

    work.mkdir(parents=True, exist_ok=True)
    peer, peer_s = run_peer(work, weights, image)
    ours, ours_s = run_volseg(work, weights, image)
    labels = json.loads((weights / "dataset.json").read_text())["labels"]
    peer_names = {int(v): k for k, v in labels.items() if int(v) != 0}
    margin = margins_for(scores, peer, work / "margin.npz")
    result = compare(peer, ours, margin, peer_names, read_labels(ours.parent / "labels.json").names(),
                     tol=nnunet_predict.TIE)
    notes = [f"tiny nets, {FOLDS} folds, mirroring, fp32 (peer's pins torch <= 2.10 not met: torch "
             f"{installed_version(VENV, 'torch')}, nnunetv2 {installed_version(VENV, 'nnunetv2')})",
             *result.pop("notes"), f"MRSegmentator {peer_s:.0f} s, volseg {ours_s:.0f} s"]
    return {"model": MODEL, "peer": "MRSegmentator (mrsegmentator --cpu_only)", "peer_version": peer_version(),
            "input": image.name, **result, "notes": "; ".join(notes)}


def stored_ras(image: pathlib.Path, out: pathlib.Path) -> pathlib.Path:
    """The same image with its voxels stored in RAS order (the MR example is stored LPS, which
    MRSegmentator's reorientation to LPS leaves as it is): the row that exercises the reorientation."""
    import nibabel as nib

    img = nib.load(str(image))
    nib.save(nib.as_closest_canonical(img), str(out))
    return out


def rows(work: pathlib.Path) -> list[dict]:
    if peer_version() is None:
        return [{"model": MODEL, "peer": "MRSegmentator", "peer_version": None, "input": IMAGE.name,
                 "notes": f"skipped: no mrsegmentator venv at {VENV} (bash benchmarks/parity/make_venvs.sh mrsegmentator)"}]
    work = pathlib.Path(work)
    work.mkdir(parents=True, exist_ok=True)
    weights = work / "weights"
    if not (weights / f"fold_{FOLDS - 1}" / "checkpoint_final.pth").exists():
        fabricate(weights)
    scores = lps_scores(work / "nnunet", weights, IMAGE)  # once: both rows hold the same voxels
    ras = stored_ras(IMAGE, work / "example_mr_sm_ras.nii.gz")
    return [compare_row(work / "lps", IMAGE, weights=weights, scores=scores),
            compare_row(work / "ras", ras, weights=weights, scores=scores)]


if __name__ == "__main__":
    print(json.dumps(rows(pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else pathlib.Path("/tmp/volseg-parity/mrsegmentator"))))
