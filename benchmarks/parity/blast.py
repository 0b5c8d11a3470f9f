"""Parity of ``-m blast-ct`` with BLAST-CT's own program, on the publisher's real weights.

The peer is ``blast-ct`` from the package registry (``bash benchmarks/parity/make_venvs.sh blast``), run
in its own venv as its documentation says: ``blast-ct-inference`` (the program behind ``blast-ct``, with
the probability maps written too) on one image, with network 1 of the v1 ensemble
(``../shared/data/blast-ct-v1/model_1.pt``, a state dict) placed where its asset loader looks for
``saved_models/model_1.torch_model`` (``BLAST_CT_CACHE_DIR``: nothing is downloaded). volseg runs
``volseg segment IN -m blast-ct --members 1 --precision fp32 --device cpu --no-html`` after ``volseg models
install`` of the same folder. Both on the head CT (``../shared/data/head-ct``).

Near-ties: input voxels where the peer's two largest class probabilities (its own maps, put back on the
input grid by its nearest-neighbour resampling, as its labels are) differ by less than
:data:`TIE`. One member, not the 12-member ensemble: the ensemble is the same code summed 12 times
(~25 min per program here); ``tests/backends/test_blast_ct.py`` checks volseg's ensemble sum.

    PYTHONPATH=src python -m benchmarks.parity --peers blast          # one row
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

MODEL = "blast-ct"
REPO = pathlib.Path(__file__).resolve().parents[2]
DATA = pathlib.Path(os.environ.get("VOLSEG_SHARED_DATA") or REPO.parent / "shared" / "data")
WEIGHTS = DATA / "blast-ct-v1"
HEAD_CT = DATA / "head-ct" / "cranium_ct_0051.nii.gz"
VENV = pathlib.Path(os.environ.get("VOLSEG_PEER_BLAST_VENV", "/work/peers/blast-venv"))
TIE = 1e-2
#: BLAST-CT's class names (its savers' CLASS_NAMES, lower case) by label value
PEER_NAMES = {1: "iph", 2: "eah", 3: "oedema", 4: "ivh"}


def peer_version() -> str | None:
    return installed_version(VENV, "blast-ct")


def run_peer(work: pathlib.Path, image: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path, float]:
    """(labels, probability maps, seconds) of ``blast-ct-inference`` with member 1."""
    cache = work / "blast_cache" / "saved_models"
    cache.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(WEIGHTS / "model_1.pt", cache / "model_1.torch_model")
    # blast-ct-inference's default --saved-model-paths names models 1..15 (its current release has 15)
    # and fetches each missing one before parsing the arguments; v1 has 12. The placeholders are never
    # loaded (--saved-model-paths below names model 1 only): they keep it from going to the network.
    for i in range(2, 16):
        placeholder = cache / f"model_{i}.torch_model"
        if not placeholder.exists():
            placeholder.symlink_to(cache / "model_1.torch_model")
    job = work / "peer_job"
    shutil.rmtree(job, ignore_errors=True)
    job.mkdir(parents=True)
    csv = job.parent / "peer_test.csv"
    csv.write_text(f"id,image\nim_0,{image}\n")
    env = {**os.environ, "BLAST_CT_CACHE_DIR": str(work / "blast_cache"), "OMP_NUM_THREADS":
           os.environ.get("OMP_NUM_THREADS", "2"), "CUDA_VISIBLE_DEVICES": ""}
    t = time.time()
    subprocess.run([str(VENV / "bin" / "blast-ct-inference"), "--job-dir", str(job), "--test-csv-path", str(csv),
                    "--device", "cpu", "--saved-model-paths", str(cache / "model_1.torch_model"),
                    "--write-prob-maps", "True", "--overwrite", "True"], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=(work / "peer.log").open("w"))
    seconds = time.time() - t
    return job / "predictions" / "im_0_prediction.nii.gz", job / "predictions" / "im_0_prob_maps.nii.gz", seconds


def run_volseg(work: pathlib.Path, image: pathlib.Path) -> tuple[pathlib.Path, float]:
    """(volseg's labels, seconds): ``volseg segment -m blast-ct --members 1`` in fp32 on the CPU."""
    home, out = work / "volseg_home", work / "volseg_out"
    env = {**os.environ, "VOLSEG_HOME": str(home), "VOLSEG_OFFLINE": "1", "PYTHONPATH": str(REPO / "src")}
    cli = [sys.executable, "-m", "volseg.cli.main"]
    if not (home / "volseg.lock.json").exists():
        subprocess.run([*cli, "models", "install", str(WEIGHTS)], env=env, check=True, capture_output=True)
    t = time.time()
    subprocess.run([*cli, "segment", str(image), "-m", MODEL, "--members", "1", "--precision", "fp32",
                    "--device", "cpu", "--no-html", "--force", "-o", str(out)], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=(work / "volseg.log").open("w"))
    return out / "segmentation.nii.gz", time.time() - t


def margins(prob_maps: pathlib.Path, out: pathlib.Path) -> pathlib.Path:
    """The top-2 probability gap per voxel of the peer's maps, saved as ``out`` (``margin``)."""
    import nibabel as nib

    probs = np.asarray(nib.load(str(prob_maps)).dataobj, dtype=np.float32)
    probs = probs.reshape(probs.shape[:3] + (-1,))  # a vector image: the classes on the last axis
    top2 = np.sort(probs, axis=-1)[..., -2:]
    np.savez_compressed(out, margin=top2[..., 1] - top2[..., 0])
    return out


def compare_row(work: pathlib.Path, image: pathlib.Path = HEAD_CT) -> dict:
    from volseg.labels import read_labels

    work.mkdir(parents=True, exist_ok=True)
    peer_labels, prob_maps, peer_s = run_peer(work, image)
    ours, ours_s = run_volseg(work, image)
    margin = margins(prob_maps, work / "margin.npz") if prob_maps.exists() else None
    table = read_labels(ours.parent / "labels.json")
    # the same classes under other names: each peer name must be in our display name at its index
    # ("iph" in "Intraparenchymal haemorrhage (IPH)", "oedema" in "Perilesional oedema")
    matched = {i: name for i, name in PEER_NAMES.items() if i in table and name in table[i].display_name.lower()}
    result = compare(peer_labels, ours, margin, PEER_NAMES, {**matched, **{i: table[i].name for i in table
                                                                          if i not in matched}}, tol=TIE)
    notes = ["real BLAST-CT v1 weights, member 1 of 12, fp32, CPU", *result.pop("notes"),
             f"peer {peer_s:.0f} s, volseg {ours_s:.0f} s"]
    return {"model": MODEL, "peer": "blast-ct (blast-ct-inference)", "peer_version": peer_version(),
            "input": image.name, **result, "notes": "; ".join(notes)}


def rows(work: pathlib.Path) -> list[dict]:
    if peer_version() is None:
        return [{"model": MODEL, "peer": "blast-ct", "peer_version": None, "input": HEAD_CT.name,
                 "notes": f"skipped: no blast-ct venv at {VENV} (bash benchmarks/parity/make_venvs.sh blast)"}]
    if not (WEIGHTS / "model_1.pt").exists() or not HEAD_CT.exists():
        return [{"model": MODEL, "peer": "blast-ct", "peer_version": peer_version(), "input": HEAD_CT.name,
                 "notes": f"skipped: {WEIGHTS} or {HEAD_CT} is missing"}]
    return [compare_row(pathlib.Path(work))]


if __name__ == "__main__":
    print(json.dumps(rows(pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else pathlib.Path("/tmp/volseg-parity/blast"))))
