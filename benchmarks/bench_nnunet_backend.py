"""volseg's nnU-Net backend vs nnU-Net's own predictor (TotalSegmentator's engine), same model, same NIfTI.

One command, every ratio measured in the same run:

    PYTHONPATH=src python benchmarks/bench_nnunet_backend.py [--cases ct3mm ctnative] [--repeats 1]

What runs: a TotalSegmentator-size 3 mm nnU-Net model (the peers' ``ts3``: 6 stages, 32→320 features,
118 classes, patch 128×112×112, random weights) and the peers' synthetic CTs ``ct3mm`` (150×160×160
at 3 mm, on the model grid) and ``ctnative`` (224×240×240 at 1.5 mm, resampled both ways), both
written by ``../shared/peers/make_model.py`` / ``make_volume.py`` (called, not copied). Optional
case ``ct0820``: 400×400×160 at 0.8×0.8×2 mm written by volseg's phantom (slow for nnU-Net).

Each engine runs in a fresh process (so peak RSS is its own; sampled over the whole process tree):

* ``nnunet``: ``nnUNetPredictor(tile_step_size=0.5, use_mirroring=False)`` +
  ``initialize_from_trained_model_folder`` + ``predict_from_files`` (2 preprocessing and 2 export
  workers), exactly as TotalSegmentator calls it; then, for the stage breakdown, the same steps
  in one process (read, preprocess, sliding window with the network's forward time, export, write).
* ``volseg``: load the model folder + ``read_image`` + ``predict`` + ``write_nifti`` with volseg's
  default engine settings (bf16 where the CPU has it, exact export: the ones
  ``tests/backends/test_nnunet_fidelity.py`` checks against nnU-Net), and again with
  ``export="nearest"`` (labels mapped back by nearest neighbour only).

Printed: end-to-end wall time, time per stage, peak RSS, ours/nnU-Net ratios, our time outside the
network's forward passes, and the CPU load of other processes during each run (the host is shared).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PEERS = Path(os.environ.get("VOLSEG_PEERS", REPO.parent / "shared" / "peers"))
WORK = Path(os.environ.get("BENCH_WORK", REPO / "benchmarks" / "_work" / "nnunet_backend"))
MODEL = "ts3"
MODEL_DIR = WORK / "nnUNet_results" / "Dataset990_Benchts3" / "nnUNetTrainer__nnUNetPlans__3d_fullres"


def case_path(case: str) -> Path:
    return WORK / "data" / case / f"{case}_0000.nii.gz"


# ---- set-up ----------------------------------------------------------------------------------
def prepare(cases: list[str]) -> None:
    env = {**os.environ, "BENCH_WORK": str(WORK)}
    if not (MODEL_DIR / "fold_0" / "checkpoint_final.pth").is_file():
        subprocess.run([sys.executable, "make_model.py", "--configs", MODEL, "--no-check"], cwd=PEERS, env=env,
                       check=True)
    peer_cases = [c for c in cases if c != "ct0820" and not case_path(c).is_file()]
    if peer_cases:
        subprocess.run([sys.executable, "make_volume.py", "--cases", *peer_cases], cwd=PEERS, env=env, check=True)
    if "ct0820" in cases and not case_path("ct0820").is_file():
        _write_ct0820()


def _write_ct0820() -> None:
    sys.path.insert(0, str(REPO / "src"))
    from volseg.io.nifti import write_nifti
    from volseg.phantom import make_phantom

    case_path("ct0820").parent.mkdir(parents=True, exist_ok=True)
    write_nifti(make_phantom((400, 400, 160), (0.8, 0.8, 2.0), orientation="LPS").image, case_path("ct0820"))


# ---- workers (run in their own process) ------------------------------------------------------
def _nnunet_predictor():
    import torch
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    p = nnUNetPredictor(tile_step_size=0.5, use_gaussian=True, use_mirroring=False,
                        perform_everything_on_device=True, device=torch.device("cpu"), verbose=False,
                        allow_tqdm=False)
    p.initialize_from_trained_model_folder(str(MODEL_DIR), use_folds=(0,))
    return p


def worker_nnunet(image: Path, out: Path) -> dict:
    """What a user (and TotalSegmentator) runs: predictor, then predict_from_files."""
    t0 = time.perf_counter()
    p = _nnunet_predictor()
    t1 = time.perf_counter()
    p.predict_from_files([[str(image)]], [str(out / "nnunet")], save_probabilities=False, overwrite=True,
                         num_processes_preprocessing=2, num_processes_segmentation_export=2)
    return {"wall_s": time.perf_counter() - t0, "stages_s": {"load_model": t1 - t0}}


def worker_nnunet_stages(image: Path, out: Path) -> dict:
    """The same work in one process, each stage timed (for the breakdown only)."""
    t0 = time.perf_counter()
    p = _nnunet_predictor()
    stages = {"load_model": time.perf_counter() - t0, **_nnunet_stages(p, image, out)}
    return {"wall_s": time.perf_counter() - t0, "stages_s": stages}


def _nnunet_stages(p, image: Path, out: Path) -> dict:
    import torch
    from nnunetv2.inference.export_prediction import (
        convert_predicted_logits_to_segmentation_with_correct_shape,
    )

    st: dict[str, float] = {}
    forward = _time_forward(p.network)
    rw = p.plans_manager.image_reader_writer_class()
    t = time.perf_counter()
    data, props = rw.read_images([str(image)])
    st["read"] = time.perf_counter() - t
    t = time.perf_counter()
    pre = p.configuration_manager.preprocessor_class(verbose=False)
    data, _, props = pre.run_case_npy(data, None, props, p.plans_manager, p.configuration_manager, p.dataset_json)
    st["preprocess"] = time.perf_counter() - t
    t = time.perf_counter()
    logits = p.predict_logits_from_preprocessed_data(torch.from_numpy(data)).cpu()
    st["sliding_window"] = time.perf_counter() - t
    st["network_forward"] = forward["s"]
    t = time.perf_counter()
    seg = convert_predicted_logits_to_segmentation_with_correct_shape(logits, p.plans_manager,
                                                                      p.configuration_manager, p.label_manager,
                                                                      props, False)
    st["export"] = time.perf_counter() - t
    t = time.perf_counter()
    rw.write_seg(seg, str(out / "nnunet_sequential.nii.gz"), props)
    st["write"] = time.perf_counter() - t
    return st


def _time_forward(module) -> dict:
    acc = {"s": 0.0, "t": 0.0}
    module.register_forward_pre_hook(lambda m, i: acc.__setitem__("t", time.perf_counter()))
    module.register_forward_hook(lambda m, i, o: acc.__setitem__("s", acc["s"] + time.perf_counter() - acc["t"]))
    return acc


def worker_volseg(image: Path, out: Path, export: str = "exact") -> dict:
    """volseg as a user runs it: load the model folder, read, predict, write (default settings)."""
    from volseg.io import read_image
    from volseg.io.nifti import label_dtype, write_nifti
    from volseg.segmenters.backends.nnunet import load_folder
    from volseg.segmenters.engine.settings import EngineSettings

    t0 = time.perf_counter()
    seg = load_folder(MODEL_DIR, device="cpu", settings=EngineSettings(export=export))
    t1 = time.perf_counter()
    volume = read_image(image).volume
    t2 = time.perf_counter()
    labels = seg.predict(volume)
    t3 = time.perf_counter()
    write_nifti(labels, out / f"volseg_{export}.nii.gz", dtype=label_dtype(int(labels.array.max())))
    t4 = time.perf_counter()
    run = seg.provenance()["runs"][0]
    timed = run["timings_s"]
    stages = {"load_model": t1 - t0, "read": t2 - t1, **timed, "write": t4 - t3,
              "predict_other": (t3 - t2) - sum(timed[k] for k in ("preprocess", "sliding_window", "export"))}
    info = {k: run.get(k) for k in ("precision", "blend", "window_batch", "windows", "export", "scored_fraction")}
    return {"wall_s": t4 - t0, "stages_s": stages, "settings": info}


WORKERS = {"nnunet": worker_nnunet, "nnunet-stages": worker_nnunet_stages, "volseg": worker_volseg,
           "volseg-nearest": lambda image, out: worker_volseg(image, out, "nearest")}


# ---- the driver ------------------------------------------------------------------------------
def run_worker(engine: str, case: str, out: Path) -> dict:
    """Run one engine on one case in a fresh process; wall, peak tree RSS and foreign CPU load."""
    sys.path.insert(0, str(PEERS))
    from common import Contention  # the peers' contention monitor: CPU used by other processes

    out.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, __file__, "--worker", engine, "--image", str(case_path(case)), "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    with Contention() as contention:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True)
        peak, watcher = _watch_rss(proc.pid)
        stdout, _ = proc.communicate()
        wall = time.perf_counter() - t0
        watcher.join()
    if proc.returncode != 0:
        raise SystemExit(f"{engine} worker failed on {case} (exit {proc.returncode})")
    result = json.loads(stdout.strip().splitlines()[-1])
    result.update(process_wall_s=wall, peak_rss_gb=peak["gb"], foreign_cores=round(contention.foreign_cores, 2))
    return result


def _watch_rss(pid: int) -> tuple[dict, threading.Thread]:
    peak = {"gb": 0.0}

    def loop():
        while os.path.exists(f"/proc/{pid}") and _state(pid) not in ("Z", "X"):
            peak["gb"] = max(peak["gb"], _tree_rss_bytes(pid) / 2**30)
            time.sleep(0.2)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return peak, thread


def _state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "X"


def _tree_rss_bytes(root: int) -> int:
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                parts = f.read().rsplit(")", 1)[1].split()
            children.setdefault(int(parts[1]), []).append(int(name))
            rss[int(name)] = int(parts[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            continue
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo.extend(children.get(pid, []))
    return total


def agreement(out: Path, export: str) -> float | None:
    import nibabel as nib
    import numpy as np

    a, b = out / "nnunet.nii.gz", out / f"volseg_{export}.nii.gz"
    if not (a.is_file() and b.is_file()):
        return None
    return float(np.mean(np.asarray(nib.load(a).dataobj) == np.asarray(nib.load(b).dataobj)))


ENGINES = {"nnunet": "nnUNetPredictor", "volseg": "volseg (default)", "volseg-nearest": "volseg nearest",
           "nnunet-stages": "nnU-Net stages"}


def report(case: str, runs: dict[str, dict], out: Path) -> dict:
    theirs = runs["nnunet"]
    print(f"\n=== {case} ===")
    for engine, r in runs.items():
        stages = ", ".join(f"{k} {v:.2f}" for k, v in r["stages_s"].items())
        print(f"{ENGINES[engine]:>17}: wall {r['wall_s']:7.2f} s | peak RSS {r['peak_rss_gb']:5.2f} GB | "
              f"other processes {r['foreign_cores']:.2f} cores | {stages}")
    summary = {"case": case}
    for engine in ("volseg", "volseg-nearest"):
        ours = runs.get(engine)
        if ours is None:
            continue
        forward = ours["stages_s"]["network_forward"]
        without_load = ours["wall_s"] - ours["stages_s"]["load_model"]
        row = {"wall_ratio": ours["wall_s"] / theirs["wall_s"],
               "rss_ratio": ours["peak_rss_gb"] / max(theirs["peak_rss_gb"], 1e-9),
               "outside_forward": (ours["wall_s"] - forward) / ours["wall_s"],
               "outside_forward_excl_load": (without_load - forward) / without_load,
               "agreement_with_nnunet": agreement(out, ours["settings"]["export"]),
               "settings": ours["settings"]}
        summary[engine] = row
        print(f"{ENGINES[engine]:>17}: wall ratio vs nnU-Net {row['wall_ratio']:.3f}, peak RSS ratio "
              f"{row['rss_ratio']:.3f}; time outside the forward passes {row['outside_forward']:.1%} "
              f"({row['outside_forward_excl_load']:.1%} without model load); settings {row['settings']}; "
              f"label agreement with nnU-Net (random weights) {row['agreement_with_nnunet']}")
    return summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", nargs="+", default=["ct3mm", "ctnative"], choices=["ct3mm", "ctnative", "ct0820"])
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--no-nnunet-stages", action="store_true", help="skip nnU-Net's per-stage breakdown run")
    ap.add_argument("--no-nearest", action="store_true", help="skip volseg's export='nearest' variant")
    ap.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    ap.add_argument("--image", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        print(json.dumps(WORKERS[a.worker](a.image, a.out)))
        return
    prepare(a.cases)
    engines = ["nnunet", "volseg"] + ([] if a.no_nearest else ["volseg-nearest"])
    results = []
    for repeat in range(a.repeats):
        for case in a.cases:
            out = WORK / "out" / f"{case}_r{repeat}"
            order = engines if repeat % 2 == 0 else engines[::-1]
            runs = {e: run_worker(e, case, out) for e in order}
            if not a.no_nnunet_stages:
                runs["nnunet-stages"] = run_worker("nnunet-stages", case, out)
            results.append({"summary": report(case, runs, out), "runs": runs})
    path = WORK / "results.json"
    path.write_text(json.dumps(results, indent=1))
    print(f"\nresults: {path}")


if __name__ == "__main__":
    main()
