"""Time ``volseg measure`` of a 117-class label map on a 512×512×300 grid (target: under 10 s here).

Usage::

    python benchmarks/bench_measure.py --prepare                 # write the inputs once (~1 min)
    python benchmarks/bench_measure.py --map smooth              # time measure on the smooth map
    python benchmarks/bench_measure.py --map fragmented --json out.json
    /usr/bin/time -v python benchmarks/bench_measure.py --map fragmented --no-instances   # + peak RSS

Two label maps at 512×512×300, 0.8×0.8×1.5 mm, with TotalSegmentator v2's 117 class names:

* ``smooth``: ``totalseg-example/example_seg_fast_force_split.nii.gz`` (61 classes) with its 56
  largest classes split at their median slice into the 56 missing labels (117 classes present),
  upsampled (nearest) onto the full-size grid: anatomy-like, few components per class;
* ``fragmented``: what a random-weight network gives: random labels on 4×4×4 blocks plus 5 % of
  the voxels set to random labels (every class scattered over the whole volume in many pieces).

The image is ``example_ct.nii.gz`` upsampled (linear) onto the same grid, in HU, with the region
outside a 250-voxel reconstruction circle padded to -2048 HU as scanners store it. Inputs are
written to ``--cache`` (default ``/tmp/volseg-bench-measure``), never into the repository.
Prints the stage times volseg reports (read, measure, clinical; writing = the rest), the wall
time, the process's peak RSS and the cProfile top functions by cumulative time.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("VOLSEG_SHARED_DATA", REPO.parent / "shared" / "data"))
EXAMPLE = SHARED / "totalseg-example"
SHAPE = (512, 512, 300)
SPACING = (0.8, 0.8, 1.5)
N_CLASSES = 117
TARGET_S = 10.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prepare", action="store_true", help="only write the inputs")
    parser.add_argument("--map", choices=("smooth", "fragmented"), default="smooth")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "volseg-bench-measure")
    parser.add_argument("--top", type=int, default=25, help="cProfile functions to print")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    parser.add_argument("--no-instances", action="store_true",
                        help="split no class into lesion instances (the fragmented map's kidney cysts "
                             "are tens of thousands of random pieces, each measured as a lesion)")
    args = parser.parse_args(argv)
    if not EXAMPLE.is_dir():
        sys.exit(f"no input: {EXAMPLE} is absent")
    if args.prepare or not _inputs(args.cache, args.map)[0].exists():
        prepare(args.cache)
        if args.prepare:
            return 0
    numbers = run(args.cache, args.map, top=args.top, instances=[] if args.no_instances else None)
    if args.json:
        args.json.write_text(json.dumps(numbers, indent=2))
    return 0


def _inputs(cache: Path, which: str) -> tuple[Path, Path, Path]:
    return cache / f"labels_{which}.nii.gz", cache / "ct.nii.gz", cache / "labels.json"


def run(cache: Path, which: str, *, top: int, instances: list[str] | None = None) -> dict:
    from volseg.api import measure

    seg, ct, names = _inputs(cache, which)
    out = Path(tempfile.mkdtemp(prefix=f"bench-measure-{which}-"))
    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.enable()
    result = measure(seg, out, image=ct, labels=names, instances=instances)
    profiler.disable()
    wall = time.perf_counter() - start
    timings = dict(result.report.provenance.timings_s) if hasattr(result.report, "provenance") else {}
    timings = timings or _timings_from_json(out / "report.json")
    stages = {k: round(float(v), 2) for k, v in timings.items()}
    stages["write (rest)"] = round(wall - sum(float(v) for v in timings.values()), 2)
    numbers = {"map": which, "instances": "none" if instances == [] else "default", "shape": list(SHAPE), "wall_s": round(wall, 2), "stages_s": stages,
               "peak_rss_mb": round(_peak_rss_mb()), "output": str(out)}
    print(f"{which}: wall {wall:.1f} s ({'within' if wall < TARGET_S else 'OVER'} the {TARGET_S:.0f} s "
          f"target); stages " + ", ".join(f"{k} {v:.2f} s" for k, v in stages.items())
          + f"; peak RSS {numbers['peak_rss_mb']} MB; outputs in {out}")
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(top)
    print(text.getvalue())
    return numbers


def _timings_from_json(path: Path) -> dict:
    report = json.loads(path.read_text())
    prov = report.get("provenance", {})
    return dict(prov.get("timings_s", {}))


def prepare(cache: Path) -> None:
    import nibabel as nib
    import numpy as np
    from scipy import ndimage

    cache.mkdir(parents=True, exist_ok=True)
    affine = np.diag([*SPACING, 1.0])
    seg_small = np.asanyarray(nib.load(EXAMPLE / "example_seg_fast_force_split.nii.gz").dataobj).astype(np.uint8)
    ct_small = np.asanyarray(nib.load(EXAMPLE / "example_ct.nii.gz").dataobj).astype(np.float32)
    factors = [t / s for t, s in zip(SHAPE, seg_small.shape)]
    smooth = ndimage.zoom(_split_to_117(seg_small), factors, order=0, grid_mode=True, mode="grid-constant")
    nib.save(nib.Nifti1Image(smooth, affine), _inputs(cache, "smooth")[0])
    ct = ndimage.zoom(ct_small, factors, order=1, grid_mode=True, mode="nearest")
    ct = np.clip(np.rint(ct), -1024, 3071).astype(np.int16)
    i, j = np.ogrid[: SHAPE[0], : SHAPE[1]]
    circle = (i - (SHAPE[0] - 1) / 2) ** 2 + (j - (SHAPE[1] - 1) / 2) ** 2 > 250.0 ** 2
    ct[circle] = -2048
    nib.save(nib.Nifti1Image(ct, affine), _inputs(cache, "smooth")[1])
    nib.save(nib.Nifti1Image(_fragmented(np.random.default_rng(0)), affine), _inputs(cache, "fragmented")[0])
    names = json.loads((EXAMPLE / "label_map_total_v2.json").read_text())
    _inputs(cache, "smooth")[2].write_text(json.dumps(names))


def _split_to_117(seg):
    """Split the largest classes at their median slice into the missing labels 1..117."""
    import numpy as np

    seg = seg.copy()
    counts = np.bincount(seg.ravel(), minlength=N_CLASSES + 1)
    missing = [lab for lab in range(1, N_CLASSES + 1) if counts[lab] == 0]
    largest = [int(lab) for lab in np.argsort(counts[1:])[::-1] + 1][: len(missing)]
    for new, lab in zip(missing, largest):
        k = np.nonzero(seg == lab)[2]
        seg[(seg == lab) & (np.arange(seg.shape[2]) >= np.median(k))[None, None, :]] = new
    return seg


def _fragmented(rng):
    import numpy as np

    blocks = rng.integers(0, N_CLASSES + 1, size=tuple(s // 4 for s in SHAPE), dtype=np.uint8)
    labels = np.repeat(np.repeat(np.repeat(blocks, 4, 0), 4, 1), 4, 2)
    salt = rng.random(SHAPE, dtype=np.float32) < 0.05
    labels[salt] = rng.integers(0, N_CLASSES + 1, size=int(salt.sum()), dtype=np.uint8)
    return labels


def _peak_rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


if __name__ == "__main__":
    raise SystemExit(main())
