"""Inputs and models of the scale benchmark (:mod:`bench_scale`), made once under ``benchmarks/_work/bench_scale``.

Everything fabricated comes from ``../shared/peers`` (``make_volume.py``, ``make_model.py``,
``bench_totalseg.py setup``), run with the TotalSegmentator venv's python (``$TS_VENV``, default
``/work/peers/ts-venv``) and ``BENCH_WORK`` pointing here, so the peers' files are never copied:

* inputs ``ct3mm`` (150×160×160 @ 3 mm, on the model grid) and ``ctnative`` (224×240×240 @ 1.5 mm):
  the peers' phantoms; ``full`` (512×512×300 @ 0.8×0.8×1.5 mm): ``../shared/data/chest-ct-dicom``
  (512×512×141 @ 0.98×0.98×2 mm) resampled linearly about its centre (air outside);
* ``total-fast``: the peers' TS-size 3 mm network (``ts3s5``, 118 outputs) that ``bench_totalseg.py
  setup`` installs into TotalSegmentator's home under the names it expects; the same folder zipped in
  the publisher's release layout and installed into volseg with ``volseg models install``;
* ``net118``: the peers' TS-size 1.5 mm network (``ts15``, 118 outputs), run by path;
* ``total``: five TS-size 1.5 mm networks with the output counts of datasets 291–295 (ts15
  architecture), zipped in release layout and installed as volseg's ``total``, and linked into
  TotalSegmentator's home (made by the total-fast step) under the folder names it expects.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PEERS = Path(os.environ.get("BENCH_PEERS", REPO.parent / "shared" / "peers"))
WORK = REPO / "benchmarks" / "_work" / "bench_scale"
PEER_WORK = WORK / "peers"  # BENCH_WORK of the peers' scripts
VOLSEG_HOME = WORK / "volseg-home"
TS_VENV = Path(os.environ.get("TS_VENV", "/work/peers/ts-venv"))
TS_PY = TS_VENV / "bin" / "python"
CHEST = REPO.parent / "shared" / "data" / "chest-ct-dicom"
FULL_SHAPE_XYZ, FULL_SPACING = (512, 512, 300), (0.8, 0.8, 1.5)
INPUTS = ("ct3mm", "ctnative", "full")


def peer_env() -> dict:
    env = dict(os.environ, BENCH_WORK=str(PEER_WORK), TS_VENV=str(TS_VENV), TS_HOME=str(PEER_WORK / "ts_home"))
    env.pop("PYTHONPATH", None)
    return env


def volseg_env() -> dict:
    return dict(os.environ, PYTHONPATH=str(REPO / "src"), VOLSEG_HOME=str(VOLSEG_HOME), VOLSEG_OFFLINE="1")


def input_file(case: str) -> Path:
    return PEER_WORK / "data" / case / f"{case}_0000.nii.gz"


def _peer(*args: str) -> None:
    subprocess.run([str(TS_PY), "-u", *args], cwd=PEERS, env=peer_env(), check=True)


def make_inputs(cases=INPUTS) -> None:
    phantoms = [c for c in cases if c != "full" and not input_file(c).exists()]
    if phantoms:
        _peer("make_volume.py", "--cases", *phantoms)
    if "full" in cases and not input_file("full").exists():
        make_full(input_file("full"))


def make_full(path: Path) -> None:
    """The chest series resampled to 512×512×300 @ 0.8×0.8×1.5 mm about its centre (linear, air outside)."""
    import numpy as np
    import SimpleITK as sitk

    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(CHEST)))
    image = reader.Execute()
    size = np.array(image.GetSize()) - 1
    centre = image.TransformContinuousIndexToPhysicalPoint((size / 2.0).tolist())
    direction = np.array(image.GetDirection()).reshape(3, 3)
    half = (np.array(FULL_SHAPE_XYZ) - 1) / 2.0 * np.array(FULL_SPACING)
    origin = np.array(centre) - direction @ half
    ref = sitk.Image(list(FULL_SHAPE_XYZ), sitk.sitkInt16)
    ref.SetSpacing(FULL_SPACING)
    ref.SetDirection(image.GetDirection())
    ref.SetOrigin(origin.tolist())
    out = sitk.Resample(image, ref, sitk.Transform(), sitk.sitkLinear, -1024.0, sitk.sitkInt16)
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(out, str(path), True)
    print(f"full: {FULL_SHAPE_XYZ} @ {FULL_SPACING} mm from {CHEST.name} -> {path}", file=sys.stderr)


def ts_fast_folder() -> Path:
    """TotalSegmentator's --fast model folder in its home (made by the peers' setup)."""
    found = sorted((PEER_WORK / "ts_home" / "nnunet" / "results").glob("Dataset297*/*__nnUNetPlans__3d_fullres"))
    return found[0] if found else Path("/nonexistent")


def make_total_fast() -> Path:
    """TotalSegmentator's home with the fabricated --fast model, and volseg's total-fast from its release zip."""
    if not (ts_fast_folder() / "fold_0" / "checkpoint_final.pth").exists():
        _peer("bench_totalseg.py", "setup")
    folder = ts_fast_folder()
    if not (VOLSEG_HOME / "models" / "total-fast").exists() or not _installed("total-fast"):
        zips = WORK / "release" / "total-fast"
        release_zip(folder, zips / f"{folder.parent.name}.zip")
        install(zips, "total-fast")
    return folder


def net118_folder() -> Path:
    folder = PEER_WORK / "nnUNet_results" / "Dataset991_Benchts15" / "nnUNetTrainer__nnUNetPlans__3d_fullres"
    if not (folder / "fold_0" / "checkpoint_final.pth").exists():
        _peer("make_model.py", "--configs", "ts15", "--no-check")
    return folder


TOTAL_PARTS_CODE = r'''
import json, sys, torch
from pathlib import Path
sys.path.insert(0, ".")
import make_model
from common import CONFIGS, build_network
out, parts = Path(sys.argv[1]), json.loads(sys.argv[2])
for name, folder, trainer, labels in parts:
    d = out / name / f"{trainer}__nnUNetPlans__3d_fullres"
    if (d / "fold_0" / "checkpoint_final.pth").exists():
        continue
    cfg = dict(CONFIGS["ts15"], num_classes=len(labels) + 1)
    (d / "fold_0").mkdir(parents=True, exist_ok=True)
    plans = make_model.plans_for("ts15", cfg)
    plans["dataset_name"] = name
    json.dump(plans, open(d / "plans.json", "w"), indent=1)
    ds = make_model.dataset_json_for(cfg)
    ds["labels"] = {"background": 0, **{n: int(i) for i, n in labels.items()}}
    json.dump(ds, open(d / "dataset.json", "w"), indent=1)
    net = build_network(cfg)
    torch.save({"network_weights": net.state_dict(), "trainer_name": "nnUNetTrainer",
                "init_args": {"plans": None, "configuration": "3d_fullres", "fold": 0, "dataset_json": None},
                "inference_allowed_mirroring_axes": None, "current_epoch": 0}, d / "fold_0" / "checkpoint_final.pth")
    print(f"total part {name}: {len(labels)} classes -> {d}", flush=True)
'''


def make_total() -> Path:
    """Five TS-size 1.5 mm networks laid out as TotalSegmentator's release zips, installed as volseg's total."""
    entry = json.loads((REPO / "src" / "volseg" / "segmenters" / "models" / "total.json").read_text())
    trainer = entry["backend_options"]["trainer"]
    parts = [(p["options"]["model_folder"].split("/")[0], p["options"]["model_folder"], trainer, p["labels"])
             for p in entry["parts"]]
    root = PEER_WORK / "total_parts"
    subprocess.run([str(TS_PY), "-u", "-c", TOTAL_PARTS_CODE, str(root), json.dumps(parts)], cwd=PEERS,
                   env=peer_env(), check=True)
    results = PEER_WORK / "ts_home" / "nnunet" / "results"  # TotalSegmentator's home (total-fast made it)
    for name, _, _, _ in parts:
        if (results.parent.parent / "config.json").exists() and not (results / name).exists():
            (results / name).symlink_to(root / name, target_is_directory=True)
    if not _installed("total"):
        zips = WORK / "release" / "total"
        for name, _, _, _ in parts:
            folder = next((root / name).glob("*__nnUNetPlans__3d_fullres"))
            release_zip(folder, zips / f"{name}.zip")
        install(zips, "total")
    return root


def release_zip(folder: Path, path: Path) -> Path:
    """``folder`` (``<Dataset>/<trainer>__<plans>__<conf>``) zipped as the publisher's release archives are."""
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as z:
        for f in sorted(folder.rglob("*")):
            if f.is_file() and f.name in ("dataset.json", "plans.json", "checkpoint_final.pth"):
                z.write(f, f.relative_to(folder.parent.parent).as_posix())
    tmp.rename(path)
    return path


def install(zips: Path, model: str) -> None:
    subprocess.run([sys.executable, "-m", "volseg.cli.main", "models", "install", str(zips), "-m", model],
                   env=volseg_env(), check=True, cwd=REPO)


def _installed(model: str) -> bool:
    run = subprocess.run([sys.executable, "-m", "volseg.cli.main", "models", "verify", model],
                         env=volseg_env(), cwd=REPO, capture_output=True, text=True)
    return run.returncode == 0


def prepare(*, cases=INPUTS, models=("total-fast",)) -> dict:
    make_inputs(cases)
    made = {}
    for model in models:
        made[model] = str({"total-fast": make_total_fast, "net118": net118_folder, "total": make_total}[model]())
    return made


if __name__ == "__main__":
    print(json.dumps(prepare(cases=INPUTS, models=tuple(sys.argv[1:]) or ("total-fast",)), indent=1))
