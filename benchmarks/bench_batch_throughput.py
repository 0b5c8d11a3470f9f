"""Studies per hour: one `volseg batch` over a folder vs one `volseg segment` process per study.

The per-process way is how TotalSegmentator users segment a cohort (one CLI call per image: the
interpreter, the libraries and the model are loaded again for every study, and nothing overlaps).
Both ways run the same model on the same folder of synthetic CT phantoms, from the same Python,
one after the other; per-study volumetry.csv files are checked to be identical, then both rates and
their ratio are printed (and saved as JSON under benchmarks/results/).

    python benchmarks/bench_batch_throughput.py                       # classic-ct, 8 studies
    python benchmarks/bench_batch_throughput.py --model NAME --studies 8 --shape 200 160 96

The host is shared and noisy: compare only the two figures of one run, as a ratio.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
VOLSEG = [sys.executable, "-m", "volseg.cli.main"]


def make_folder(folder: Path, n: int, shape, spacing) -> list[Path]:
    from volseg.io.nifti import write_nifti
    from volseg.phantom import make_phantom

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = folder / f"study_{i:02d}.nii.gz"
        if not path.exists():
            sp = (spacing[0] * (1 + 0.01 * i), spacing[1], spacing[2])
            write_nifti(make_phantom(tuple(shape), sp, seed=i).image, path)
        paths.append(path)
    return paths


def per_process(paths: list[Path], out: Path, model: str) -> float:
    start = time.perf_counter()
    for path in paths:
        name = path.name[: -len(".nii.gz")]
        subprocess.run([*VOLSEG, "-q", "segment", str(path), "-o", str(out / name), "--model", model],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def batch(folder: Path, out: Path, model: str, extra: list[str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run([*VOLSEG, "-q", "batch", str(folder), "-o", str(out), "--model", model, "--json-log",
                           *extra], stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"volseg batch failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return seconds


def _children_cpu() -> float:
    """User + system CPU seconds of every finished child process (and theirs) so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def same_tables(a: Path, b: Path, names: list[str]) -> bool:
    return all((a / n / "volumetry.csv").read_bytes() == (b / n / "volumetry.csv").read_bytes() for n in names)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="classic-ct")
    parser.add_argument("--studies", type=int, default=8)
    parser.add_argument("--shape", type=int, nargs=3, default=(200, 160, 96))
    parser.add_argument("--spacing", type=float, nargs=3, default=(1.75, 1.75, 2.5))
    parser.add_argument("--repeats", type=int, default=1, help="alternate the two ways this many times; best of each")
    parser.add_argument("--work", type=Path, default=HERE / "_work" / "batch_throughput")
    parser.add_argument("--batch-args", default="", help="extra `volseg batch` arguments, e.g. '--gpus 0'")
    args = parser.parse_args()

    folder = args.work / f"in_{args.studies}x{'x'.join(map(str, args.shape))}"
    paths = make_folder(folder, args.studies, args.shape, args.spacing)
    names = [p.name[: -len(".nii.gz")] for p in paths]
    times: dict[str, list[float]] = {"per_process": [], "batch": []}
    cpu: dict[str, list[float]] = {"per_process": [], "batch": []}  # CPU s of the process trees
    for r in range(args.repeats):
        for way in ("per_process", "batch"):
            out = args.work / f"out_{way}"
            shutil.rmtree(out, ignore_errors=True)
            before = _children_cpu()
            if way == "per_process":
                times[way].append(per_process(paths, out, args.model))
            else:
                times[way].append(batch(folder, out, args.model, args.batch_args.split()))
            cpu[way].append(_children_cpu() - before)
            print(f"repeat {r + 1}: {way}: {times[way][-1]:.1f} s wall, {cpu[way][-1]:.1f} s CPU", file=sys.stderr)
    if not same_tables(args.work / "out_per_process", args.work / "out_batch", names):
        sys.exit("the two ways wrote different volumetry.csv files")
    best = {way: min(t) for way, t in times.items()}
    rate = {way: 3600.0 * args.studies / s for way, s in best.items()}
    ratio = rate["batch"] / rate["per_process"]
    print(f"model {args.model}, {args.studies} studies of {'x'.join(map(str, args.shape))} voxels, "
          f"{os.cpu_count()} CPU cores")
    print(f"one `volseg segment` process per study: {best['per_process']:7.1f} s  {rate['per_process']:8.0f} studies/h")
    print(f"one `volseg batch` over the folder:     {best['batch']:7.1f} s  {rate['batch']:8.0f} studies/h")
    paired = [p / b for p, b in zip(times["per_process"], times["batch"])]
    print(f"batch / per-process throughput: {ratio:.2f}x (best of each); per repeat: "
          + ", ".join(f"{r:.2f}x" for r in paired))
    cpu_per_study = {way: min(c) / args.studies for way, c in cpu.items()}
    print(f"CPU seconds per study (all processes, best): per-process {cpu_per_study['per_process']:.2f} s, "
          f"batch {cpu_per_study['batch']:.2f} s ({cpu_per_study['per_process'] / cpu_per_study['batch']:.2f}x less)")
    print(f"load average during the run: {os.getloadavg()[0]:.1f} (compare runs only on a quiet host)")
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    record = {"benchmark": "batch_throughput", "model": args.model, "studies": args.studies,
              "shape": list(args.shape), "seconds": times, "studies_per_hour": rate, "ratio": ratio,
              "ratio_per_repeat": paired, "cpu_seconds": cpu, "load_average": os.getloadavg(),
              "cpu_count": os.cpu_count(), "platform": platform.platform(), "time": time.time()}
    (results / "batch_throughput.json").write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
