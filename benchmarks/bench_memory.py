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


def network(part, settings, head_features: int):
    """The fabricated model's network, or (``head_features`` > 0) a cheap stand-in with that many last
    features and a 1×1×1 head to every class (TotalSegmentator's networks: 32 features → 118 classes)."""
    import torch

    from volseg.segmenters.backends.network_pipeline import Network
    from volseg.segmenters.engine.export import AffineHead

    if head_features <= 0:
        predictor, head, channels = part._predictor(settings)
        return Network(predictor, channels, part.decoder, head)
    torch.manual_seed(0)
    lift = torch.nn.Conv3d(1, head_features, 1).eval()
    classes = len(part.decoder.values)
    head = AffineHead(torch.randn(classes, head_features), torch.randn(classes) * 0.1)
    return Network(lambda x: torch.tanh(lift(x)), head_features, part.decoder, head)


def predict_whole(array: np.ndarray, spacing, spec, net, settings) -> tuple[np.ndarray, dict]:
    """The pipeline as wired before the streaming engine: whole-grid sums, then codes, then the export."""
    import torch

    from volseg.segmenters.backends.network_pipeline import preprocess, score_maps
    from volseg.segmenters.engine.export import exact_labels, model_grid_codes
    from volseg.segmenters.engine.infer import run_windows

    x, prep = preprocess(array, spacing, spec, torch.device("cpu"))
    run = run_windows(x, net.predictor, channels=net.channels, patch=spec.patch, settings=settings)
    del x
    codes = model_grid_codes(run.blend, run.keep, net.decoder, net.head)
    maps = score_maps(spec.score_resampling, prep.model_shape, prep.in_shape, prep.target, prep.spacing)
    stats: dict = {}
    labels = exact_labels(codes, run.blend, run.keep, maps, net.decoder, net.head, stats=stats)
    forward_s, run.blend = run.blend.forward_s, None
    full = torch.zeros(tuple(array.shape[p] for p in spec.axes), dtype=labels.dtype)
    full[prep.box] = labels
    out = full.permute(tuple(int(i) for i in np.argsort(spec.axes))).numpy()
    return out, {"model_grid_shape": list(prep.model_shape), "network_forward": forward_s, **stats}


def predict_streamed(array: np.ndarray, spacing, spec, net, settings) -> tuple[np.ndarray, dict]:
    """The pipeline as wired now (``run_on_array`` → ``segment_windows``)."""
    import torch

    from volseg.segmenters.backends.network_pipeline import run_on_array

    run = run_on_array(array, spacing, spec, net, settings, device=torch.device("cpu"))
    return run.labels, {"model_grid_shape": list(run.model_shape), "network_forward": run.timings["network_forward"],
                        **run.stats, "timings_s": {k: round(v, 2) for k, v in run.timings.items()}}


def run(engine: str, classes: int, labels_path: Path | None, head_features: int = 0) -> dict:
    import torch

    from volseg.io import read_image
    from volseg.segmenters.backends.nnunet_folder import read_model_folder
    from volseg.segmenters.backends.nnunet_pipeline import NnUNetPart
    from volseg.segmenters.engine.settings import EngineSettings

    torch.set_num_threads(2)
    folder = model_folder(classes)
    t0 = time.perf_counter()
    volume = read_image(CT).volume
    blend = "features" if head_features > 0 else "logits"
    settings = EngineSettings(precision="fp32", blend=blend, export="exact")
    part = NnUNetPart(read_model_folder(folder, folds=(0,)), torch.device("cpu"), settings)
    net, spec = network(part, settings, head_features), part.spec()
    t1 = time.perf_counter()
    predict = predict_whole if engine == "whole" else predict_streamed
    labels, info = predict(volume.array, volume.spacing, spec, net, settings)
    t2 = time.perf_counter()
    if labels_path is not None:
        np.save(labels_path, labels)
    return {"engine": engine, "classes": classes, "blend": blend, "channels_blended": net.channels,
            "shape": list(volume.shape), "spacing_mm": list(volume.spacing),
            "read_and_load_s": round(t1 - t0, 2), "predict_s": round(t2 - t1, 2), **info,
            "labels_present": int(len(np.unique(labels))),
            "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=("whole", "stream"), default="stream")
    parser.add_argument("--classes", type=int, default=118)
    parser.add_argument("--head-features", type=int, default=0,
                        help="blend this many last features of a stand-in network with a 1×1×1 head (0: logits)")
    parser.add_argument("--labels", type=Path, help="save the label map here (.npy)")
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("A", "B"), help="compare two saved label maps")
    args = parser.parse_args(argv)
    if args.compare:
        a, b = (np.load(p) for p in args.compare)
        same = a.shape == b.shape and float(np.mean(a == b))
        print(json.dumps({"agreement": same, "identical": bool(a.shape == b.shape and np.array_equal(a, b))}))
        return 0
    print(json.dumps(run(args.engine, args.classes, args.labels, args.head_features)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
