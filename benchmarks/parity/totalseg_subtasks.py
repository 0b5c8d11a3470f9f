"""volseg's TotalSegmentator subtasks (crop cascades) against TotalSegmentator 2.18, on the same weights.

``rows(work)`` runs ``TotalSegmentator --task lung_vessels / liver_lesions / lung_nodules --ml`` and
``volseg segment -m <task>`` on the same input and the same fabricated weights, and compares them
(:mod:`benchmarks.parity.compare`). Both programs first run the crop model TotalSegmentator picks
(python_api.py: the 3 mm total, task 297, with ``robust_crop``; else the 6 mm total, task 298), crop
to its classes with a 20 mm margin, run the subtask on the crop and put the labels back.

Weights: the subtask is a tiny random network under its real folder, trainer and configuration names
(``fabricate._plans``/``_weights`` with the task's own spacing). The crop model must find a region, and
a random network's argmax is noise all over the image (its box would be the whole image), so the crop
model is built by hand: a path of centre-tap convolutions carries the normalised intensity through
the first encoder stage, the skip connection and the last decoder stage (everything else is zero),
and the last layer scores the crop classes as ``SLOPE * (feature - THRESHOLD)`` against background
0 (the other classes: -10). Its crop classes are thus the densest voxels (bone, contrast, dense
soft tissue), a region smaller than the image, the same for both programs.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.parity import compare, fabricate
from benchmarks.parity.serve import serve
from benchmarks.parity.totalseg import DATA, REPO, _ts_env, _ts_home, _volseg, ts_venv

#: (volseg model = TotalSegmentator task, input relative to the data folder)
ROWS = [("lung_vessels", "chest-ct-dicom"), ("lung_nodules", "chest-ct-dicom"),
        ("liver_lesions", "totalseg-example/example_ct.nii.gz")]

#: the crop model's score of its crop classes: SLOPE * (normalised feature - THRESHOLD)
SLOPE, THRESHOLD = 20.0, 1.0

#: runs inside TotalSegmentator's venv: what its code says about a subtask and its crop model
FACTS = r'''
import importlib.metadata as md, json, sys
from totalsegmentator import map_to_binary as mtb
from totalsegmentator.map_tasks_config import TASK_ID_WEIGHTS_CONFIGS as W
from totalsegmentator.python_api import get_task_config
task = sys.argv[1]
c = get_task_config(task, quiet=True)
def part(tid, trainer, configuration, resample, classes):
    return {"task_id": tid, "foldername": W[tid]["foldername"], "version": W[tid].get("version"),
            "trainer": trainer, "plans": c.get("plans") or "nnUNetPlans", "configuration": configuration,
            "resample": resample, "classes": {int(k): v for k, v in classes.items()}}
# python_api.totalsegmentator: crop_model None -> total at 3 mm (297) with robust_crop, else 6 mm (298);
# crop_addon becomes [20, 20, 20]
crop_id, crop_mm = (297, 3.0) if c.get("robust_crop") else (298, 6.0)
json.dump({"ts_version": md.version("TotalSegmentator"), "task": task, "crop": c["crop"],
           "crop_model": c.get("crop_model"), "robust_crop": bool(c.get("robust_crop")),
           "model": part(c["task_id"], c["trainer"], c["model"], c["resample"], mtb.class_map[task]),
           "crop_part": part(crop_id, "nnUNetTrainer_4000epochs_NoMirroring", "3d_fullres", crop_mm,
                             mtb.class_map["total"])}, sys.stdout)
'''

CROP_MODEL = {297: "total-fast", 298: "total-fastest"}


def subtask_facts(venv: Path, task: str) -> dict:
    out = subprocess.run([str(venv / "bin" / "python"), "-c", FACTS, task], check=True, capture_output=True,
                         text=True, env=_ts_env(venv, None))
    spec = json.loads(out.stdout)
    for part in (spec["model"], spec["crop_part"]):
        part["classes"] = {int(k): v for k, v in part["classes"].items()}
    return spec


def _folder(root: Path, part: dict) -> Path:
    folder = root / part["foldername"] / f"{part['trainer']}__{part['plans']}__{part['configuration']}"
    (folder / "fold_0").mkdir(parents=True, exist_ok=True)
    labels = {"background": 0, **{v: int(k) for k, v in sorted(part["classes"].items(), key=lambda x: int(x[0]))}}
    (folder / "dataset.json").write_text(json.dumps({"channel_names": {"0": "CT"}, "labels": labels,
                                                     "numTraining": 1, "file_ending": ".nii.gz",
                                                     "name": part["foldername"]}, indent=1))
    resample = part["resample"]
    xyz = [float(resample)] * 3 if not isinstance(resample, list) else [float(s) for s in resample]
    plans = fabricate._plans(part["foldername"], 1.0, fabricate.TINY, "CT", part["plans"], part["configuration"])
    plans["configurations"][part["configuration"]]["spacing"] = xyz[::-1]  # plans are (z, y, x)
    plans["original_median_spacing_after_transp"] = xyz[::-1]
    (folder / "plans.json").write_text(json.dumps(plans, indent=1))
    return folder


def _checkpoint(folder: Path, weights: dict, configuration: str) -> None:
    import torch

    torch.save({"network_weights": weights, "trainer_name": "nnUNetTrainer",
                "init_args": {"plans": None, "configuration": configuration, "fold": 0, "dataset_json": None},
                "inference_allowed_mirroring_axes": None, "current_epoch": 0}, folder / "fold_0" / "checkpoint_final.pth")


def intensity_weights(n_out: int, find: list[int]) -> dict:
    """The crop model's network (see the module docstring): labels ``find`` where the normalised
    intensity feature exceeds THRESHOLD."""
    import torch
    from dynamic_network_architectures.architectures.unet import PlainConvUNet

    features, strides, _ = fabricate.TINY
    n = len(features)
    net = PlainConvUNet(1, n, features, torch.nn.Conv3d, 3, strides, [2] * n, n_out, [2] * (n - 1),
                        conv_bias=True, norm_op=torch.nn.InstanceNorm3d, norm_op_kwargs={"eps": 1e-5, "affine": True},
                        nonlin=torch.nn.LeakyReLU, nonlin_kwargs={"inplace": True}, deep_supervision=False)
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
        last = n - 2  # the decoder stage next to the output
        path = [(net.encoder.stages[0][0].convs[0], 0), (net.encoder.stages[0][0].convs[1], 0),
                (net.decoder.stages[last].convs[0], features[0]), (net.decoder.stages[last].convs[1], 0)]
        for block, source in path:  # centre tap: channel 0 carries the (renormalised) intensity on
            block.conv.weight[0, source, 1, 1, 1] = 1.0
            block.norm.weight[0] = 1.0
        seg = net.decoder.seg_layers[last]
        seg.bias.fill_(-10.0)
        seg.bias[0] = 0.0
        for k in find:
            seg.weight[k, 0] = SLOPE
            seg.bias[k] = -SLOPE * THRESHOLD
    return {k: v.clone() for k, v in net.state_dict().items()}


def prepare(task: str, work: Path, venv: Path) -> dict:
    """Fabricated subtask + crop model, their release zips, volseg installs and a TotalSegmentator home."""
    sys.path.insert(0, str(REPO / "src"))
    from volseg.segmenters.catalogue import get_entry

    base = work / "tiny" / task
    ready = base / "ready.json"
    if ready.exists():
        return json.loads(ready.read_text())
    shutil.rmtree(base, ignore_errors=True)
    spec = subtask_facts(venv, task)
    crop_name = CROP_MODEL[spec["crop_part"]["task_id"]]
    root = base / "fabricated"
    model = spec["model"]
    folder = _folder(root, model)
    n_out = max(model["classes"]) + 1
    _checkpoint(folder, fabricate._weights(*fabricate.TINY[:2], n_out, seed=int(model["task_id"])),
                model["configuration"])
    crop = spec["crop_part"]
    crop_folder = _folder(root, crop)
    find = [k for k, v in crop["classes"].items() if v in spec["crop"]]
    _checkpoint(crop_folder, intensity_weights(max(crop["classes"]) + 1, find), crop["configuration"])
    zips = []
    home = base / "volseg_home"
    for name, f in ((task, folder), (crop_name, crop_folder)):
        entry = get_entry(name)
        zips.append(fabricate.release_zip(f, root, base / "mirror" / entry.name / entry.version))
    with serve(base / "mirror") as url:
        for name in (task, crop_name):
            done = _volseg(["models", "download", name], home, mirror=url)
            if done.returncode != 0:
                raise RuntimeError(f"volseg models download {name} failed: {done.stderr.strip()[-600:]}")
    _ts_home(base / "ts_home", zips)
    info = {"spec": spec, "crop_model": crop_name, "volseg_home": str(home), "ts_home": str(base / "ts_home"),
            "layout": _check_layout(spec, task, crop_name)}
    ready.write_text(json.dumps(info))
    return info


def _check_layout(spec: dict, task: str, crop_name: str) -> str:
    """The catalogue's URLs and cascades against TotalSegmentator's ('' when all agree)."""
    from volseg.segmenters.catalogue import get_entry

    problems = []
    for part, name in ((spec["model"], task), (spec["crop_part"], crop_name)):
        want = (f"https://github.com/wasserth/TotalSegmentator/releases/download/{part['version']}/"
                f"{part['foldername']}.zip")
        urls = [w.url for w in get_entry(name).weights]
        if urls != [want]:
            problems.append(f"{name}: catalogue URL {urls} != {want}")
    cascade = get_entry(task).cascade
    if cascade is None or cascade.model != crop_name or list(cascade.classes) != spec["crop"] \
            or list(cascade.margin or ()) != [20, 20, 20] or cascade.margin_unit != "mm":
        problems.append(f"{task}: catalogue cascade {cascade} differs from TotalSegmentator's")
    return "; ".join(problems)


def run_row(task: str, rel_input: str, work: Path, venv: Path, *, data: Path | None = None) -> dict:
    info = prepare(task, work, venv)
    src = (data or DATA) / rel_input
    out = work / "out" / f"tiny-{task}-{Path(rel_input).name.split('.')[0]}"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    ts = subprocess.run([str(venv / "bin" / "TotalSegmentator"), "-i", str(src), "-o", str(out / "ts.nii.gz"),
                         "--ml", "-d", "cpu", "-nr", "1", "-ns", "1", "--task", task],
                        env=_ts_env(venv, Path(info["ts_home"])), capture_output=True, text=True, check=False)
    ts_s = time.perf_counter() - t0
    if ts.returncode != 0:
        raise RuntimeError(f"TotalSegmentator failed on {rel_input}: {(ts.stderr or ts.stdout).strip()[-800:]}")
    t0 = time.perf_counter()
    vs = _volseg(["segment", str(src), "-m", task, "-o", str(out / "volseg" / "seg.nii.gz"), "--device", "cpu",
                  "--precision", "fp32", "--no-html", "--force"], Path(info["volseg_home"]))
    vs_s = time.perf_counter() - t0
    if vs.returncode != 0:
        raise RuntimeError(f"volseg segment failed on {rel_input}: {vs.stderr.strip()[-800:]}")
    (out / "ts.log").write_text(ts.stdout + ts.stderr)
    (out / "volseg.log").write_text(vs.stdout + vs.stderr)
    sys.path.insert(0, str(REPO / "src"))
    from volseg.segmenters.catalogue import get_entry

    names = {int(c.index): c.name for c in get_entry(task).classes}
    result = compare.compare(out / "ts.nii.gz", out / "volseg" / "seg.nii.gz", None,
                             {int(k): v for k, v in info["spec"]["model"]["classes"].items()}, names)
    notes = [f"tiny nets, fp32; crop model {info['crop_model']} (hand-built intensity network); "
             f"TS {ts_s:.0f} s, volseg {vs_s:.0f} s", _crop_note(ts.stdout + ts.stderr)]
    if info["layout"]:
        notes.append(info["layout"])
    notes.extend(result.pop("notes"))
    return {"model": task, "peer": "TotalSegmentator", "peer_version": info["spec"]["ts_version"],
            "input": rel_input, **result, "notes": "; ".join(n for n in notes if n)}


def _crop_note(log: str) -> str:
    """TotalSegmentator's own 'cropping from A to B' line."""
    for line in log.splitlines():
        if "cropping from" in line:
            return "TS " + line.strip()
    return ""


def rows(work: Path) -> list[dict]:
    venv = ts_venv()
    only = [s for s in os.environ.get("VOLSEG_PARITY_SUBTASKS", "").split(",") if s]
    out = []
    for task, rel in ROWS:
        if only and task not in only:
            continue
        if venv is None:
            out.append({"model": task, "peer": "TotalSegmentator", "peer_version": "-", "input": rel,
                        "agreement_pct": None, "near_ties": None, "disagreements_all_near_ties": None,
                        "same_grid": None, "same_labels": None,
                        "notes": "skipped: no TotalSegmentator venv (set VOLSEG_PEER_TS_VENV)"})
            continue
        try:
            out.append(run_row(task, rel, work, venv))
        except Exception as exc:  # noqa: BLE001  (one failed row must not hide the others)
            out.append({"model": task, "peer": "TotalSegmentator", "peer_version": "?", "input": rel,
                        "agreement_pct": None, "near_ties": None, "disagreements_all_near_ties": None,
                        "same_grid": None, "same_labels": None, "notes": f"FAILED: {exc}"})
    return out
