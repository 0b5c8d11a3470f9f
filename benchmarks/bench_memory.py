"""Peak memory of the sliding-window engine with many classes: whole-volume blend vs the streaming band.

One run = one engine in this process (run each under ``/usr/bin/time -v`` for the max RSS):

    PYTHONPATH=src /usr/bin/time -v python benchmarks/bench_memory.py --engine whole  --labels /tmp/whole.npy
    PYTHONPATH=src /usr/bin/time -v python benchmarks/bench_memory.py --engine stream --labels /tmp/stream.npy
    PYTHONPATH=src python benchmarks/bench_memory.py --compare /tmp/whole.npy /tmp/stream.npy

What runs: a fabricated nnU-Net v2 model folder (random weights, ``PlainConvUNet`` with 2 stages of 2 and 4 features —
memory is about classes × volume, not the network — 118 output classes, patch 128³, 1.5 mm isotropic,
CT normalisation, written under ``benchmarks/_work/``) on the 512×512×141 chest CT
(``../shared/data/chest-ct-dicom``, 0.977×0.977×2.0 mm): model grid 188×333×333, class scores
blended as logits (``blend="logits"``: every class accumulated, the worst case), fp32, exact export
to the input grid.

* ``whole``: ``NnUNetPart.predict`` as the pipelines call it today (``run_windows`` →
  ``model_grid_codes`` → ``exact_labels``): all 118 classes in fp32 on the whole model grid.
* ``stream``: the same steps with ``segment_windows`` (``volseg.segmenters.engine.stream``): class
  scores in a band about one patch deep, decoded and exported as rows become final.

Prints one JSON line: engine, wall and stage seconds, peak RSS (``ru_maxrss``) and label counts.
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CT = REPO.parent / "shared" / "data" / "chest-ct-dicom"
WORK = REPO / "benchmarks" / "_work" / "bench_memory"
FEATURES = (2, 4)
PATCH = (128, 128, 128)
INTENSITY = {"max": 3000.0, "mean": 40.0, "median": 40.0, "min": -1024.0, "percentile_00_5": -1000.0,
             "percentile_99_5": 1500.0, "std": 300.0}


def model_folder(classes: int, root: Path = WORK) -> Path:
    """A random-weight nnU-Net v2 trained-model folder with ``classes`` outputs (written once)."""
    import torch

    folder = root / f"Dataset998_Mem{classes}" / "nnUNetTrainer__nnUNetPlans__3d_fullres"
    if (folder / "fold_0" / "checkpoint_final.pth").exists():
        return folder
    sys.path.insert(0, str(REPO))
    from tests.factories import nnunet_model as factory

    plans = factory.plans()
    conf = plans["configurations"]["3d_fullres"]
    n = len(FEATURES)
    conf.update(patch_size=list(PATCH), spacing=[1.5, 1.5, 1.5])
    conf["architecture"]["arch_kwargs"].update(
        n_stages=n, features_per_stage=list(FEATURES), kernel_sizes=[[3, 3, 3]] * n,
        strides=[[1, 1, 1]] + [[2, 2, 2]] * (n - 1), n_conv_per_stage=[2] * n, n_conv_per_stage_decoder=[2] * (n - 1))
    plans.update(transpose_forward=[0, 1, 2], transpose_backward=[0, 1, 2],
                 original_median_spacing_after_transp=[1.5, 1.5, 1.5],
                 foreground_intensity_properties_per_channel={"0": INTENSITY})
    dataset = {"channel_names": {"0": "CT"}, "labels": {"background": 0, **{f"s{i}": i for i in range(1, classes)}},
               "numTraining": 1, "file_ending": ".nii.gz"}
    from nnunetv2.utilities.get_network_from_plans import get_network_from_plans

    arch = conf["architecture"]
    torch.manual_seed(0)
    net = get_network_from_plans(arch["network_class_name"], arch["arch_kwargs"], arch["_kw_requires_import"],
                                 1, classes, allow_init=True, deep_supervision=False)
    (folder / "fold_0").mkdir(parents=True, exist_ok=True)
    (folder / "plans.json").write_text(json.dumps(plans))
    (folder / "dataset.json").write_text(json.dumps(dataset))
    checkpoint = {"network_weights": net.state_dict(), "trainer_name": "nnUNetTrainer",
                  "init_args": {"plans": plans, "configuration": "3d_fullres", "fold": 0, "dataset_json": dataset},
                  "inference_allowed_mirroring_axes": (0, 1, 2), "current_epoch": 1}
    torch.save(checkpoint, folder / "fold_0" / "checkpoint_final.pth")
    return folder


def predict_streamed(part, array: np.ndarray, spacing, settings) -> tuple[np.ndarray, dict]:
    """``NnUNetPart.predict`` (no body crop, no relabelling) with the streaming engine."""
    import torch

    from volseg.segmenters.backends.nnunet_pipeline import _to_device
    from volseg.segmenters.backends.nnunet_resampling import (compute_new_shape, export_axis_maps,
                                                              plan_resampling, resample_volume)
    from volseg.segmenters.engine.stream import segment_windows

    perm = part.axis_order
    x = _to_device(array, perm, part.device)
    spacing_n = tuple(float(spacing[p]) for p in perm)
    box = part._crop_box(x, spacing_n, None)
    x = part._normalise(x[(slice(None), *box)])
    cropped_shape = tuple(x.shape[1:])
    model_shape = compute_new_shape(cropped_shape, spacing_n, part.spacing)
    x = resample_volume(x, plan_resampling(part.data_resampling, cropped_shape, model_shape, spacing_n, part.spacing))
    predictor, head, channels = part._predictor(settings)
    maps = export_axis_maps(part.score_resampling, model_shape, cropped_shape, part.spacing, spacing_n)
    run = segment_windows(x, predictor, channels=channels, patch=part.patch, settings=settings,
                          decoder=part.decoder, maps=maps, head=head, mirror_axes=part.folder.mirror_axes)
    del x
    full = torch.zeros(tuple(array.shape[p] for p in perm), dtype=run.labels.dtype, device=run.labels.device)
    full[box] = run.labels
    out = full.permute(tuple(int(i) for i in np.argsort(perm))).cpu().numpy()
    return out, {"model_grid_shape": list(model_shape), "band_rows": run.band_rows,
                 "network_forward": run.forward_s, "scored_fraction": run.scored_fraction}


def run(engine: str, classes: int, labels_path: Path | None) -> dict:
    import torch

    from volseg.io import read_image
    from volseg.segmenters.backends.nnunet_folder import read_model_folder
    from volseg.segmenters.backends.nnunet_pipeline import NnUNetPart
    from volseg.segmenters.engine.settings import EngineSettings

    torch.set_num_threads(2)
    folder = model_folder(classes)
    t0 = time.perf_counter()
    volume = read_image(CT).volume
    settings = EngineSettings(precision="fp32", blend="logits", export="exact")
    part = NnUNetPart(read_model_folder(folder, folds=(0,)), torch.device("cpu"), settings)
    t1 = time.perf_counter()
    if engine == "whole":
        result = part.predict(volume.array, volume.spacing, settings)
        labels, info = result.labels, {k: result.info.get(k) for k in ("model_grid_shape", "scored_fraction")}
        info["network_forward"] = result.info["timings_s"]["network_forward"]
    else:
        labels, info = predict_streamed(part, volume.array, volume.spacing, settings)
    t2 = time.perf_counter()
    if labels_path is not None:
        np.save(labels_path, labels)
    return {"engine": engine, "classes": classes, "shape": list(volume.shape), "spacing_mm": list(volume.spacing),
            "read_and_load_s": round(t1 - t0, 2), "predict_s": round(t2 - t1, 2), **info,
            "labels_present": int(len(np.unique(labels))),
            "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=("whole", "stream"), default="stream")
    parser.add_argument("--classes", type=int, default=118)
    parser.add_argument("--labels", type=Path, help="save the label map here (.npy)")
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("A", "B"), help="compare two saved label maps")
    args = parser.parse_args(argv)
    if args.compare:
        a, b = (np.load(p) for p in args.compare)
        same = a.shape == b.shape and float(np.mean(a == b))
        print(json.dumps({"agreement": same, "identical": bool(a.shape == b.shape and np.array_equal(a, b))}))
        return 0
    print(json.dumps(run(args.engine, args.classes, args.labels)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
