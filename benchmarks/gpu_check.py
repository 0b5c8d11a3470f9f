"""The GPU check: what no test can show without a device, in one script and one table.

    PYTHONPATH=src python benchmarks/gpu_check.py --out gpu_check.json           # on CUDA, < 8 min
    PYTHONPATH=src python benchmarks/gpu_check.py --device cpu --out dry.json    # dry run here
    PYTHONPATH=src python benchmarks/gpu_check.py --device cpu --quick --out q.json  # seconds (the test)

Rows (``--out X.json`` also writes ``X.md``):

1. **fp32 on the device vs fp32 on the CPU**: the streaming engine's labels, same smooth model and
   image; agreement ≥ 99.99 %.
2. **fp16 / bf16 autocast vs fp32** on the device: Dice of every class ≥ 0.999. The model is smooth
   by construction (a blur, then class logits ``-(x - μ_c)²`` of the blurred intensity), so labels
   flip only where two classes truly tie, as with a trained network.
3. **A real out-of-memory fallback**: the process's GPU memory is capped
   (``torch.cuda.set_per_process_memory_fraction``) just above what one window needs, the engine is
   asked for a batch of 8 windows, the first attempt fails with ``torch.cuda.OutOfMemoryError`` and
   the engine's fallbacks (smaller batches, then scores on the CPU) must succeed, be reported and give
   the uncapped labels. Skipped on the CPU (nothing to cap).
4. **Wall time, volseg vs ``nnUNetPredictor``**, same random-weight nnU-Net folder (PlainConvUNet,
   118 classes on CUDA), same array, same device; volseg's default settings and nnU-Net's
   (``tile_step_size=0.5``, no mirroring, everything on the device). If ``nnunetv2`` cannot be
   imported, the row says so.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

SIZES = {  # image shape (model grid), patch, classes, width of the OOM model, nnU-Net case
    "cuda": {"image": (160, 192, 192), "patch": (128, 128, 128), "classes": 8, "width": 64,
             "nnunet": {"shape": (192, 224, 160), "patch": (128, 128, 128), "classes": 118,
                        "features": (32, 64, 128, 256, 320, 320)}},
    "cpu": {"image": (72, 64, 56), "patch": (32, 32, 32), "classes": 6, "width": 4,
            "nnunet": {"shape": (56, 64, 48), "patch": (32, 32, 32), "classes": 6, "features": (4, 8)}},
    "quick": {"image": (36, 28, 24), "patch": (16, 16, 16), "classes": 4, "width": 2,
              "nnunet": {"shape": (24, 20, 18), "patch": (16, 16, 16), "classes": 4, "features": (2, 4)}},
}


class SmoothNet:
    """A blur (``width`` identical 3×3×3 means), then logits ``-4·(h - μ_c)²`` of the blurred ``h``.

    On a piecewise-constant image (:func:`smooth_image`) the blurred value of a voxel is at least
    1/54 from any midpoint between two class means, so fp32 and 16-bit autocast agree unless the
    arithmetic is wrong: like a trained network, whose logits tie only on thin boundaries.
    """

    def __new__(cls, classes: int, width: int = 1):
        import torch

        class _Net(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.blur = torch.nn.Conv3d(1, width, 3, padding=1, padding_mode="replicate", bias=False)
                self.register_buffer("mu", (torch.arange(classes, dtype=torch.float32) + 0.5).view(1, -1, 1, 1, 1))
                with torch.no_grad():
                    self.blur.weight.fill_(1.0 / 27)

            def forward(self, x):
                h = self.blur(x).mean(1, keepdim=True)
                return -4 * (h - self.mu.to(h.dtype)) ** 2

        return _Net().eval()


def smooth_image(shape, classes: int, seed: int = 0):
    """(1, *shape) float32: regions of constant value c + 0.5, c in 0…classes-1 (a quantised smooth field)."""
    import torch
    from scipy import ndimage

    field = ndimage.gaussian_filter(np.random.default_rng(seed).normal(size=shape), 4.0)
    field = (field - field.min()) / (np.ptp(field) + 1e-9) * classes
    return torch.from_numpy(np.minimum(np.floor(field), classes - 1).astype(np.float32) + 0.5)[None]


def engine_labels(image, net, *, device: str, patch, precision: str = "fp32", window_batch: int = 1):
    """Labels of the streaming engine (exact export onto the model grid itself) and its run."""
    import torch

    from volseg.segmenters.engine.export import LabelDecoder
    from volseg.segmenters.engine.resample import AxisMap
    from volseg.segmenters.engine.settings import EngineSettings
    from volseg.segmenters.engine.stream import segment_windows

    dev = torch.device(device)
    model = net.to(dev)
    classes = int(model.mu.shape[1])
    maps = [AxisMap.from_matrix(np.eye(n)) for n in image.shape[1:]]
    settings = EngineSettings(precision=precision, window_batch=window_batch, accumulator="auto")
    run = segment_windows(image.to(dev), model, channels=classes, patch=patch, settings=settings,
                          decoder=LabelDecoder(tuple(range(classes))), maps=maps)
    return run.labels.cpu().numpy(), run


def dice_per_class(a: np.ndarray, b: np.ndarray) -> dict[int, float]:
    out = {}
    for c in np.union1d(np.unique(a), np.unique(b)):
        x, y = a == c, b == c
        out[int(c)] = float(2 * np.logical_and(x, y).sum() / max(1, x.sum() + y.sum()))
    return out


def row(check: str, setting: str, value: str, threshold: str, passed: bool | None, seconds: float,
        note: str = "") -> dict:
    return {"check": check, "setting": setting, "result": value, "threshold": threshold,
            "pass": "skipped" if passed is None else ("yes" if passed else "NO"), "seconds": round(seconds, 2),
            "note": note}


def check_device_vs_cpu(sizes: dict, device: str) -> dict:
    t0 = time.perf_counter()
    image, net = smooth_image(sizes["image"], sizes["classes"]), SmoothNet(sizes["classes"])
    on_device, _ = engine_labels(image, net, device=device, patch=sizes["patch"])
    on_cpu, _ = engine_labels(image, net, device="cpu", patch=sizes["patch"])
    agree = float(np.mean(on_device == on_cpu))
    note = "dry run: both on the CPU" if device == "cpu" else ""
    return row("fp32 labels, device vs CPU", f"{device} vs cpu", f"{agree:.6%}", "≥ 99.99 %", agree >= 0.9999,
               time.perf_counter() - t0, note)


def check_autocast(sizes: dict, device: str, precision: str) -> dict:
    import torch

    from volseg.errors import UsageError

    t0 = time.perf_counter()
    image, net = smooth_image(sizes["image"], sizes["classes"], seed=1), SmoothNet(sizes["classes"])
    reference, _ = engine_labels(image, net, device=device, patch=sizes["patch"])
    try:
        reduced, run = engine_labels(image, net, device=device, patch=sizes["patch"], precision=precision)
    except (UsageError, RuntimeError, torch.cuda.OutOfMemoryError) as exc:  # autocast not supported here
        return row(f"{precision} autocast vs fp32", device, "not run", "Dice ≥ 0.999", None,
                   time.perf_counter() - t0, str(exc).splitlines()[0][:80])
    dice = dice_per_class(reduced, reference)
    worst = min(dice.values())
    note = f"ran as {run.precision}; {len(dice)} classes; agreement {np.mean(reduced == reference):.5%}"
    return row(f"{precision} autocast vs fp32", device, f"min Dice {worst:.5f}", "Dice ≥ 0.999", worst >= 0.999,
               time.perf_counter() - t0, note)


def check_oom_fallback(sizes: dict, device: str) -> dict:
    import torch

    if not device.startswith("cuda"):
        return row("out-of-memory fallback", device, "not run", "first attempt fails, fallback succeeds", None, 0.0,
                   "needs CUDA: set_per_process_memory_fraction caps GPU memory only")
    t0 = time.perf_counter()
    image, net = smooth_image(sizes["image"], sizes["classes"], seed=2), SmoothNet(sizes["classes"], sizes["width"])
    dev = torch.device(device)
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(dev)
    reference, _ = engine_labels(image, net, device=device, patch=sizes["patch"], window_batch=1)
    one_window = torch.cuda.max_memory_allocated(dev)
    total = torch.cuda.get_device_properties(dev).total_memory
    torch.cuda.empty_cache()
    torch.cuda.set_per_process_memory_fraction(min(1.0, 1.3 * one_window / total), dev)
    try:
        labels, run = engine_labels(image, net, device=device, patch=sizes["patch"], window_batch=8)
    except Exception as exc:  # noqa: BLE001 - the row must say what went wrong
        return row("out-of-memory fallback", device, "failed", "first attempt fails, fallback succeeds", False,
                   time.perf_counter() - t0, f"{type(exc).__name__}: {str(exc).splitlines()[0][:80]}")
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0, dev)
        torch.cuda.empty_cache()
    same = bool(np.array_equal(labels, reference))
    passed = bool(run.fallbacks) and same
    value = f"{len(run.fallbacks)} fallback(s), batch {run.window_batch}, scores on {run.accumulator}"
    note = f"cap {1.3 * one_window / 2**20:.0f} MiB; labels equal uncapped: {same}; " + " | ".join(run.fallbacks)
    return row("out-of-memory fallback", device, value, "first attempt fails, fallback succeeds", passed,
               time.perf_counter() - t0, note)


def check_wall_times(sizes: dict, device: str, repeats: int, work: Path) -> list[dict]:
    case = sizes["nnunet"]
    folder = write_folder(work / f"gpu_check_{case['classes']}_{len(case['features'])}", case)
    array = smooth_image(case["shape"], 4, seed=3)[0].numpy() * 400 - 1000  # HU-like, volseg's (i, j, k)
    ours, labels = time_volseg(folder, array, device, repeats)
    rows = [row("wall time: volseg", device, f"{ours:.2f} s", "", None, ours, f"shape {case['shape']}, "
                f"{case['classes']} classes, default settings")]
    rows[0]["pass"] = ""
    try:
        theirs, their_labels = time_nnunet(folder, array, device, repeats)
    except ImportError as exc:
        rows.append(row("wall time: nnUNetPredictor", device, "not run", "", None, 0.0,
                        f"nnunetv2 not importable: {exc}"))
        return rows
    agree = float(np.mean(labels == their_labels))
    rows.append(row("wall time: nnUNetPredictor", device, f"{theirs:.2f} s", "", None, theirs,
                    f"volseg/nnU-Net = {ours / theirs:.2f}; label agreement {agree:.4%}"))
    rows[1]["pass"] = ""
    return rows


def write_folder(folder: Path, case: dict) -> Path:
    """A random-weight nnU-Net v2 trained-model folder (PlainConvUNet) for ``case`` (written once)."""
    import torch
    from nnunetv2.utilities.get_network_from_plans import get_network_from_plans

    if (folder / "fold_0" / "checkpoint_final.pth").exists():
        return folder
    n, classes = len(case["features"]), case["classes"]
    arch = {"network_class_name": "dynamic_network_architectures.architectures.unet.PlainConvUNet",
            "arch_kwargs": {"n_stages": n, "features_per_stage": list(case["features"]),
                            "conv_op": "torch.nn.modules.conv.Conv3d", "kernel_sizes": [[3, 3, 3]] * n,
                            "strides": [[1, 1, 1]] + [[2, 2, 2]] * (n - 1), "n_conv_per_stage": [2] * n,
                            "n_conv_per_stage_decoder": [2] * (n - 1), "conv_bias": True,
                            "norm_op": "torch.nn.modules.instancenorm.InstanceNorm3d",
                            "norm_op_kwargs": {"eps": 1e-05, "affine": True}, "dropout_op": None,
                            "dropout_op_kwargs": None, "nonlin": "torch.nn.LeakyReLU",
                            "nonlin_kwargs": {"inplace": True}},
            "_kw_requires_import": ["conv_op", "norm_op", "dropout_op", "nonlin"]}
    resampling = {"is_seg": False, "order": 1, "order_z": 0, "force_separate_z": None}
    config = {"data_identifier": "gpu_check", "preprocessor_name": "DefaultPreprocessor", "batch_size": 2,
              "patch_size": list(case["patch"]), "median_image_size_in_voxels": list(case["shape"]),
              "spacing": [1.5, 1.5, 1.5], "normalization_schemes": ["CTNormalization"], "use_mask_for_norm": [False],
              "resampling_fn_data": "resample_data_or_seg_to_shape",
              "resampling_fn_seg": "resample_data_or_seg_to_shape",
              "resampling_fn_data_kwargs": {**resampling, "order": 3},
              "resampling_fn_seg_kwargs": {**resampling, "is_seg": True},
              "resampling_fn_probabilities": "resample_data_or_seg_to_shape",
              "resampling_fn_probabilities_kwargs": resampling, "architecture": arch, "batch_dice": False}
    intensity = {"max": 3000.0, "mean": 40.0, "median": 40.0, "min": -1024.0, "percentile_00_5": -1000.0,
                 "percentile_99_5": 1500.0, "std": 300.0}
    plans = {"dataset_name": "Dataset997_GpuCheck", "plans_name": "nnUNetPlans",
             "original_median_spacing_after_transp": [1.5, 1.5, 1.5],
             "original_median_shape_after_transp": list(case["shape"]), "image_reader_writer": "SimpleITKIO",
             "transpose_forward": [0, 1, 2], "transpose_backward": [0, 1, 2],
             "configurations": {"3d_fullres": config}, "experiment_planner_used": "ExperimentPlanner",
             "label_manager": "LabelManager", "foreground_intensity_properties_per_channel": {"0": intensity}}
    dataset = {"channel_names": {"0": "CT"}, "labels": {"background": 0, **{f"s{i}": i for i in range(1, classes)}},
               "numTraining": 1, "file_ending": ".nii.gz"}
    torch.manual_seed(0)
    net = get_network_from_plans(arch["network_class_name"], arch["arch_kwargs"], arch["_kw_requires_import"],
                                 1, classes, allow_init=True, deep_supervision=False)
    (folder / "fold_0").mkdir(parents=True, exist_ok=True)
    (folder / "plans.json").write_text(json.dumps(plans))
    (folder / "dataset.json").write_text(json.dumps(dataset))
    torch.save({"network_weights": net.state_dict(), "trainer_name": "nnUNetTrainer",
                "init_args": {"plans": plans, "configuration": "3d_fullres", "fold": 0, "dataset_json": dataset},
                "inference_allowed_mirroring_axes": (0, 1, 2), "current_epoch": 1},
               folder / "fold_0" / "checkpoint_final.pth")
    return folder


def _best_of(repeats: int, fn, sync) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(max(1, repeats)):
        sync()
        t0 = time.perf_counter()
        out = fn()
        sync()
        best = min(best, time.perf_counter() - t0)
    return best, out


def _sync(device: str):
    import torch

    return (lambda: torch.cuda.synchronize()) if device.startswith("cuda") else (lambda: None)


def time_volseg(folder: Path, array: np.ndarray, device: str, repeats: int) -> tuple[float, np.ndarray]:
    """Seconds of ``NnUNetPart.predict`` (default engine settings) on the (i, j, k) ``array`` at 1.5 mm."""
    import torch

    from volseg.segmenters.backends.nnunet_folder import read_model_folder
    from volseg.segmenters.backends.nnunet_pipeline import NnUNetPart
    from volseg.segmenters.engine.settings import EngineSettings

    settings = EngineSettings()
    part = NnUNetPart(read_model_folder(folder, folds=(0,)), torch.device(device), settings)
    seconds, result = _best_of(repeats, lambda: part.predict(array, (1.5, 1.5, 1.5), settings), _sync(device))
    return seconds, result.labels


def time_nnunet(folder: Path, array: np.ndarray, device: str, repeats: int) -> tuple[float, np.ndarray]:
    """Seconds of ``nnUNetPredictor.predict_single_npy_array`` on the same array (ImportError without it)."""
    import torch
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor
    from nnunetv2.utilities.get_network_from_plans import get_network_from_plans
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    plans = PlansManager(json.loads((folder / "plans.json").read_text()))
    config = plans.get_configuration("3d_fullres")
    dataset = json.loads((folder / "dataset.json").read_text())
    params = [torch.load(folder / "fold_0" / "checkpoint_final.pth", map_location="cpu",
                         weights_only=False)["network_weights"]]
    network = get_network_from_plans(config.network_arch_class_name, config.network_arch_init_kwargs,
                                     config.network_arch_init_kwargs_req_import, 1, len(dataset["labels"]),
                                     allow_init=False, deep_supervision=False)
    network.load_state_dict(params[0])
    predictor = nnUNetPredictor(tile_step_size=0.5, use_gaussian=True, use_mirroring=False,
                                perform_everything_on_device=device.startswith("cuda"),
                                device=torch.device(device), allow_tqdm=False)
    predictor.manual_initialization(network, plans, config, params, dataset, "nnUNetTrainer", (0, 1, 2))
    data = np.ascontiguousarray(array.transpose(2, 1, 0)[None], dtype=np.float32)  # (z, y, x)

    def predict():
        return predictor.predict_single_npy_array(data, {"spacing": [1.5, 1.5, 1.5]}, None, None, False)

    seconds, seg = _best_of(repeats, predict, _sync(device))
    return seconds, np.asarray(seg).transpose(2, 1, 0)


def render_markdown(rows: list[dict], device: str) -> str:
    lines = [f"GPU check on {device}", "", "| check | setting | result | threshold | pass | s | note |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append("| " + " | ".join(str(r[k]) for k in ("check", "setting", "result", "threshold", "pass",
                                                               "seconds", "note")) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    import torch

    parser = argparse.ArgumentParser(description="volseg GPU check (one table)")
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:N, or cpu for a dry run")
    parser.add_argument("--quick", action="store_true", help="the smallest sizes (seconds; for the test)")
    parser.add_argument("--skip-wall-times", action="store_true", help="leave out the volseg/nnU-Net timing")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs each (best is kept)")
    parser.add_argument("--out", type=Path, help="write the table here as JSON, and beside it as Markdown")
    parser.add_argument("--work", type=Path, default=Path(__file__).resolve().parent / "_work")
    args = parser.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("CUDA is not available; run with --device cpu for a dry run", file=sys.stderr)
        return 2
    sizes = SIZES["quick" if args.quick else ("cuda" if args.device.startswith("cuda") else "cpu")]
    repeats = args.repeats or (2 if args.device.startswith("cuda") else 1)
    rows = [check_device_vs_cpu(sizes, args.device)]
    rows += [check_autocast(sizes, args.device, p) for p in ("fp16", "bf16")]
    rows.append(check_oom_fallback(sizes, args.device))
    if not args.skip_wall_times:
        rows += check_wall_times(sizes, args.device, repeats, args.work)
    table = render_markdown(rows, args.device)
    print(table)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"device": args.device, "rows": rows}, indent=1))
        args.out.with_suffix(".md").write_text(table)
    return 0 if all(r["pass"] in ("yes", "skipped", "") for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
