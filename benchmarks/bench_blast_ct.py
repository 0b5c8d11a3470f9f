"""BLAST-CT v1 on a real head CT: the 12-model ensemble end to end through volseg's CLI path.

One command (from the repository root):

    PYTHONPATH=src python benchmarks/bench_blast_ct.py [--models 12] [--device cpu] [--precision auto]

It installs the weights from ``../shared/data/blast-ct-v1`` into a temporary VOLSEG_HOME (the
offline install path users take), segments ``../shared/data/head-ct/cranium_ct_0051.nii.gz`` with
``api.segment`` (what ``volseg segment --model blast-ct`` calls), checks that the labels lie on the
input grid, and prints wall time per stage, peak RSS and the lesion volume per class in mL. On this
normal head every lesion class should stay below 1 mL in total.

No peer runs here: the publisher's own tool downloads its weights at run time; the network itself
was checked equal to the publisher's DeepMedic class (identical logits on model_1.pt).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("VOLSEG_SHARED_DATA", REPO.parent / "shared" / "data"))


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=12, help="ensemble members to use (1-12)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default=None, help="auto | fp32 | bf16 | fp16 (default: the model's)")
    parser.add_argument("--image", type=Path, default=DATA / "head-ct" / "cranium_ct_0051.nii.gz")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    if not (DATA / "blast-ct-v1").is_dir() or not args.image.is_file():
        print(f"shared data not found under {DATA}", file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory(prefix="bench-blast-") as tmp:
        os.environ["VOLSEG_HOME"] = str(Path(tmp) / "home")
        import numpy as np

        from volseg import api
        from volseg.io import read_image
        from volseg.segmenters.backends.blast_ct import load
        from volseg.segmenters.catalogue import get_entry
        from volseg.segmenters.engine.settings import EngineSettings
        from volseg.segmenters.weights import install_from_source

        t0 = time.perf_counter()
        install_from_source(DATA / "blast-ct-v1")
        t_install = time.perf_counter() - t0
        entry = get_entry("blast-ct")
        members = list(entry.backend_options["ensemble"])[: args.models]
        settings = None
        if args.precision:
            settings = EngineSettings().with_options(**entry.backend_options.get("engine", {}),
                                                     precision=args.precision)
        t0 = time.perf_counter()
        segmenter = load(entry, device=args.device, models=members, settings=settings)
        t_load = time.perf_counter() - t0
        progress_state = {"last": 0.0}

        def progress(stage: str, done: int, total: int) -> None:
            now = time.perf_counter()
            if now - progress_state["last"] > 60 or done == total:
                progress_state["last"] = now
                print(f"  {stage}: {done}/{total}", file=sys.stderr, flush=True)

        out_dir = Path(tmp) / "out"
        t0 = time.perf_counter()
        result = api.segment(args.image, out_dir, segmenter=segmenter, progress=progress)
        t_segment = time.perf_counter() - t0
        image = read_image(args.image).volume
        labels = read_image(out_dir / "segmentation.nii.gz").volume
        on_grid = labels.shape == image.shape and np.allclose(labels.affine, image.affine, atol=1e-4)
        voxel_ml = image.voxel_volume_mm3 / 1000.0
        volumes = {segmenter.labels[i].name: float((labels.array == i).sum() * voxel_ml) for i in segmenter.labels}
        prov = segmenter.provenance()
        results = {
            "image": args.image.name, "shape": list(image.shape), "spacing_mm": list(image.spacing),
            "models": len(members), "device": prov["device"], "precision": prov["precision"],
            "windows": prov["windows"], "windows_reused": prov["windows_reused"],
            "install_s": round(t_install, 2), "load_s": round(t_load, 2), "segment_wall_s": round(t_segment, 2),
            "stages_s": {k: round(v, 2) for k, v in prov["timings_s"].items()},
            "peak_rss_mb": round(peak_rss_mb(), 1), "labels_on_input_grid": bool(on_grid),
            "lesion_volume_ml": {k: round(v, 4) for k, v in volumes.items()},
            "lesion_volume_total_ml": round(sum(volumes.values()), 4),
            "report_structures": len(result.report.structures),
        }
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    ok = results["labels_on_input_grid"] and results["lesion_volume_total_ml"] < 1.0
    print(f"labels on the input grid: {on_grid}; total lesion volume {results['lesion_volume_total_ml']:.3f} mL "
          f"({'below' if ok else 'NOT below'} 1 mL) with {len(members)} model(s) in {t_segment:.0f} s",
          file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
