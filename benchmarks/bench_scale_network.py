"""The network alone on the CPU (issue 18, item 4): which settings pay for a TS-size 3-D U-Net here.

    PYTHONPATH=src python benchmarks/bench_scale_network.py [--folder F] [--variants base cl jit ...] [--reps 3]
    ONEDNN_MAX_CPU_ISA=AVX2 PYTHONPATH=src python benchmarks/bench_scale_network.py --precision fp32   # AVX2-only

Times ``reps`` forward passes of one window (the plans' patch; the network's trunk as volseg runs it,
head split off) per variant after one warm-up pass, each variant in this process, in the order
given, and reports seconds per window (wall and process CPU) and the largest difference of its
output from the ``base`` variant's. Variants: ``base`` (as volseg runs it), ``cl`` (channels_last_3d
network and input), ``jit`` (``torch.jit.trace`` + ``torch.jit.freeze``: oneDNN conv fusions),
``compile`` (``torch.compile``, inductor on the CPU), ``batch2`` (two windows per call; per window),
``threads1`` (one intra-op thread), ``interop1`` (``torch.set_num_threads(2)`` with one inter-op
thread). The folder defaults to the scale benchmark's ``total-fast`` network (``bench_scale_prepare``).
Prints one JSON line per variant and the ``uptime`` load before and after.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def load_avg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def trunk(folder: Path):
    import torch

    from volseg.segmenters.backends.nnunet_folder import read_model_folder
    from volseg.segmenters.backends.nnunet_network import load_fold_networks

    model = read_model_folder(folder)
    net = load_fold_networks(model, torch.device("cpu"))[0].trunk
    return net, tuple(model.config().patch_size)


def timed(fn, x, reps: int) -> tuple[float, float, object]:
    import torch

    with torch.inference_mode():
        out = fn(x)  # warm-up (compilation, oneDNN primitive caches)
        t, c = time.perf_counter(), time.process_time()
        for _ in range(reps):
            out = fn(x)
        return (time.perf_counter() - t) / reps, (time.process_time() - c) / reps, out


def main(argv=None) -> int:
    import bench_scale_prepare as prep
    import torch

    from volseg.segmenters.engine.precision import autocast, autocast_dtype

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--folder", type=Path, default=None)
    ap.add_argument("--variants", nargs="+", default=["base", "cl", "jit", "batch2", "threads1", "interop1"])
    ap.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    folder = a.folder or prep.ts_fast_folder()
    net, patch = trunk(folder)
    dtype = autocast_dtype(a.precision, torch.device("cpu"))
    x1 = torch.randn(1, 1, *patch, generator=torch.Generator().manual_seed(0))
    print(json.dumps({"folder": folder.name, "patch": patch, "precision": a.precision, "dtype": str(dtype),
                      "threads": torch.get_num_threads(), "isa": os.environ.get("ONEDNN_MAX_CPU_ISA", "native"),
                      "load": load_avg()}), flush=True)
    ref = None
    for variant in a.variants:
        fn, x, per = (lambda t: net(t)), x1, 1
        torch.set_num_threads(a.threads)
        if variant == "cl":
            net_cl = trunk(folder)[0].to(memory_format=torch.channels_last_3d)
            fn, x = (lambda t: net_cl(t)), x1.contiguous(memory_format=torch.channels_last_3d)
        elif variant == "jit":
            with torch.inference_mode(), autocast(torch.device("cpu"), dtype):
                frozen = torch.jit.freeze(torch.jit.trace(trunk(folder)[0], x1))
            fn = frozen
        elif variant == "compile":
            compiled = torch.compile(trunk(folder)[0])
            fn = compiled
        elif variant == "batch2":
            x, per = torch.cat([x1, x1]), 2
        elif variant == "threads1":
            torch.set_num_threads(1)
        elif variant == "interop1":
            torch.set_num_interop_threads(1) if variant == a.variants[0] else None

        def run(t, fn=fn):
            with autocast(torch.device("cpu"), dtype):
                return fn(t).float()

        before = load_avg()
        try:
            wall, cpu, out = timed(run, x, a.reps)
        except Exception as exc:  # a variant that does not work here is reported, not fatal
            print(json.dumps({"variant": variant, "error": f"{type(exc).__name__}: {str(exc)[:200]}"}), flush=True)
            continue
        out = out[:1]
        if ref is None:
            ref = out
        diff = float((out - ref).abs().max())
        print(json.dumps({"variant": variant, "s_per_window": round(wall / per, 3), "cpu_s_per_window": round(cpu / per, 3),
                          "max_abs_diff_vs_first": diff, "load_before": before, "load_after": load_avg(),
                          "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
