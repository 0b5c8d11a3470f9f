"""volseg's TotalSegmentator entries against TotalSegmentator itself, on the same fabricated weights.

Per row: ask the installed TotalSegmentator (its own venv) for the task's facts, fabricate
deterministic weights under its folder names, zip them as its release assets, serve the zips on
127.0.0.1 and ``volseg models download`` them through ``VOLSEG_MIRROR``; unpack the same zips into a
``TOTALSEG_HOME_DIR`` as TotalSegmentator's downloader does; run ``TotalSegmentator --ml`` (offline:
a guard on its ``PYTHONPATH`` refuses any non-loopback connection, statistics switched off) and
``volseg segment`` on the same input, then compare (:mod:`benchmarks.parity.compare`).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

from benchmarks.parity import compare, fabricate
from benchmarks.parity.serve import serve

REPO = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("VOLSEG_PARITY_DATA", REPO.parent / "shared" / "data"))
if not DATA.is_dir():
    DATA = Path("/work/shared/data")
HERE = Path(__file__).resolve().parent

#: volseg model -> (TotalSegmentator task, sub-mode, CLI flags)
MODELS = {"total-fast": ("total", "fast", ["--fast"]), "total": ("total", "default", []),
          "total_v3-fast": ("total_v3", "fast", ["--task", "total_v3", "--fast"]),
          "total_v3": ("total_v3", "default", ["--task", "total_v3"]),
          "total_mr": ("total_mr", "default", ["--task", "total_mr"]),
          "total-fastest": ("total", "fastest", ["--fastest"]),
          "total_v3-fastest": ("total_v3", "fastest", ["--task", "total_v3", "--fastest"])}
#: the default rows: (model, input relative to the data folder, or synthetic/NAME made by
#: :func:`fabricate.synthetic_input`; "tiny": tiny networks even with --full-size)
ROWS = [("total-fast", "chest-ct-dicom", None), ("total-fast", "totalseg-example/example_ct.nii.gz", None),
        ("total", "totalseg-example/example_ct.nii.gz", None),
        ("total_v3-fast", "totalseg-example/example_ct.nii.gz", None),
        ("total_v3", "totalseg-example/example_ct.nii.gz", None),
        ("total_mr", "totalseg-example/example_mr_sm.nii.gz", None),
        ("total-fastest", "totalseg-example/example_ct.nii.gz", None),
        ("total_v3-fastest", "totalseg-example/example_ct.nii.gz", None),
        # > 512*512*900 voxels at 1.5 mm and > 200 slices: TotalSegmentator's three-slab split
        ("total_mr", "synthetic/split-mr.nii.gz", "tiny")]

NETGUARD = '''import socket, sys
def _guard(event, args):
    if event == "socket.connect":
        addr = args[1]
        if isinstance(addr, tuple) and addr and addr[0] not in ("127.0.0.1", "::1", "localhost"):
            raise OSError(f"parity harness: network blocked ({addr[0]})")
    elif event == "socket.getaddrinfo" and args and args[0] not in ("127.0.0.1", "::1", "localhost", None):
        raise OSError(f"parity harness: DNS blocked ({args[0]})")
sys.addaudithook(_guard)
'''


_NOT_RUN = subprocess.CompletedProcess([], 0, "", "")


def ts_venv() -> Path | None:
    """``VOLSEG_PEER_TS_VENV``, else /work/peers/ts-venv where it exists."""
    given = os.environ.get("VOLSEG_PEER_TS_VENV")
    path = Path(given) if given else Path("/work/peers/ts-venv")
    return path if (path / "bin" / "TotalSegmentator").exists() else None


def facts(venv: Path, task: str, mode: str) -> dict:
    out = subprocess.run([str(venv / "bin" / "python"), str(HERE / "ts_side.py"), "facts", task, mode],
                         check=True, capture_output=True, text=True, env=_ts_env(venv, None))
    return json.loads(out.stdout)


def _ts_env(venv: Path, home: Path | None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TOTALSEG", "VOLSEG", "PYTHON"))}
    env["PATH"] = f"{venv / 'bin'}:{env.get('PATH', '')}"
    env["OMP_NUM_THREADS"] = env.get("OMP_NUM_THREADS", "2")
    if home is not None:
        env["TOTALSEG_HOME_DIR"] = str(home)
        env["PYTHONPATH"] = str(home / "guard")
        env["MPLCONFIGDIR"] = str(home / "mpl")
    return env


def _ts_home(home: Path, zips: list[Path]) -> Path:
    """A TOTALSEG_HOME_DIR with the zips unpacked where TotalSegmentator's downloader puts them."""
    results = home / "nnunet" / "results"
    results.mkdir(parents=True, exist_ok=True)
    for z in zips:
        with zipfile.ZipFile(z) as zf:
            zf.extractall(results)
    (home / "config.json").write_text(json.dumps({"totalseg_id": "totalseg_PARITY0", "send_usage_stats": False,
                                                  "statistics_disclaimer_shown": True, "prediction_counter": 0}))
    (home / "guard").mkdir(exist_ok=True)
    (home / "guard" / "sitecustomize.py").write_text(NETGUARD)
    return home


def _volseg(args: list[str], home: Path, mirror: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOLSEG")}
    env.update(VOLSEG_HOME=str(home), PYTHONPATH=str(REPO / "src"))
    if mirror:
        env["VOLSEG_MIRROR"] = mirror
    return subprocess.run([sys.executable, "-m", "volseg.cli.main", *args], env=env, capture_output=True, check=False,
                          text=True)


def prepare(model: str, work: Path, venv: Path, *, full_size: bool) -> dict:
    """Fabricated weights, release zips, volseg install via the mirror and a TotalSegmentator home."""
    sys.path.insert(0, str(REPO / "src"))
    from volseg.segmenters.catalogue import get_entry

    task, mode, _ = MODELS[model]
    size = "full" if full_size else "tiny"
    base = work / size / model
    spec = facts(venv, task, mode)
    entry = get_entry(model)
    ready = base / "ready.json"
    if ready.exists():
        return json.loads(ready.read_text())
    shutil.rmtree(base, ignore_errors=True)
    modality = "MR" if task.endswith("_mr") else "CT"
    folders = fabricate.fabricate_task(spec, base / "fabricated", full_size=full_size, modality=modality)
    mirror_dir = base / "mirror" / entry.name / entry.version
    zips = [fabricate.release_zip(f, base / "fabricated", mirror_dir) for f in folders]
    layout = _check_layout(entry, spec, zips)
    home = base / "volseg_home"
    with serve(base / "mirror") as url:
        done = _volseg(["models", "download", model], home, mirror=url)
    if done.returncode != 0:
        raise RuntimeError(f"volseg models download {model} failed: {done.stderr.strip()[-600:]}")
    _ts_home(base / "ts_home", zips)
    info = {"spec": spec, "volseg_home": str(home), "ts_home": str(base / "ts_home"), "layout": layout}
    ready.write_text(json.dumps(info))
    return info


def _check_layout(entry, spec: dict, zips: list[Path]) -> str:
    """The catalogue's URLs and members against TotalSegmentator's own names ('' when all agree)."""
    problems = []
    urls = {w.name: w.url for w in entry.weights}
    for part, z in zip(spec["parts"], zips):
        want = f"https://github.com/wasserth/TotalSegmentator/releases/download/{part['version']}/{part['foldername']}.zip"
        if urls.get(z.name) != want:
            problems.append(f"{z.name}: catalogue URL {urls.get(z.name)} != {want}")
        members = {w.name: set(w.members) for w in entry.weights}.get(z.name, set())
        with zipfile.ZipFile(z) as zf:
            if set(zf.namelist()) != members:
                problems.append(f"{z.name}: members differ from the catalogue's")
    return "; ".join(problems)


def run_row(model: str, rel_input: str, work: Path, venv: Path, *, full_size: bool = False,
            near_ties: bool = True, data: Path | None = None) -> dict:
    """One row; ``near_ties=False`` skips the extra network run that scores near-ties."""
    task, mode, flags = MODELS[model]
    info = prepare(model, work, venv, full_size=full_size)
    src = fabricate.synthetic_input(rel_input, work / "inputs") if rel_input.startswith("synthetic/") \
        else (data or DATA) / rel_input
    tag = f"{'full' if full_size else 'tiny'}-{model}-{Path(rel_input).name.split('.')[0]}"
    out = work / "out" / tag
    # VOLSEG_PARITY_REUSE=1: keep the outputs of an earlier run of this row (the peer's, volseg's and the
    # near-tie scores where they exist) and only compare again
    reuse = os.environ.get("VOLSEG_PARITY_REUSE") == "1" and (out / "ts.nii.gz").exists() \
        and ((out / "margin.npz").exists() or not near_ties)
    if not reuse:
        shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    ts = _NOT_RUN if reuse else subprocess.run([str(venv / "bin" / "TotalSegmentator"), "-i", str(src), "-o", str(out / "ts.nii.gz"),
                         "--ml", "-d", "cpu", "-nr", "1", "-ns", "1", *flags],
                        env=_ts_env(venv, Path(info["ts_home"])), capture_output=True, text=True, check=False)
    ts_s = time.perf_counter() - t0
    if ts.returncode != 0:
        raise RuntimeError(f"TotalSegmentator failed on {rel_input}: {(ts.stderr or ts.stdout).strip()[-800:]}")
    t0 = time.perf_counter()
    # fp32: volseg's CPU default is bf16 (faster, a deliberate difference); parity is measured in fp32
    args = ["segment", str(src), "-m", model, "-o", str(out / "volseg" / "seg.nii.gz"), "--device", "cpu",
            "--precision", "fp32", "--no-html"]
    reuse_ours = reuse and (out / "volseg" / "seg.nii.gz").exists()
    vs = _NOT_RUN if reuse_ours else _volseg(args, Path(info["volseg_home"]))
    vs_s = time.perf_counter() - t0
    if vs.returncode != 0:
        raise RuntimeError(f"volseg segment failed on {rel_input}: {vs.stderr.strip()[-800:]}")
    margin = _NOT_RUN if reuse or not near_ties else subprocess.run([str(venv / "bin" / "python"), str(HERE / "ts_side.py"), "margin", task, mode, str(src),
                             str(out / "margin.npz")], env=_ts_env(venv, Path(info["ts_home"])),
                            capture_output=True, text=True, check=False)
    if margin.returncode != 0:
        raise RuntimeError(f"near-tie scores failed: {margin.stderr.strip()[-800:]}")
    sys.path.insert(0, str(REPO / "src"))
    from volseg.segmenters.catalogue import get_entry
    names = {int(c.index): c.name for c in get_entry(model).classes}
    result = compare.compare(out / "ts.nii.gz", out / "volseg" / "seg.nii.gz",
                             out / "margin.npz" if (out / "margin.npz").exists() else None,
                             {int(k): v for k, v in info["spec"]["classes"].items()}, names)
    timing = "(reused)" if reuse else f"{ts_s:.0f} s"
    ours_timing = "(reused)" if reuse_ours else f"{vs_s:.0f} s"
    notes = [f"{'TS-size' if full_size else 'tiny'} nets, fp32; TS {timing}, volseg {ours_timing}"]
    if info["layout"]:
        notes.append(info["layout"])
    notes.extend(result.pop("notes"))
    return {"model": model, "peer": "TotalSegmentator", "peer_version": info["spec"]["ts_version"],
            "input": rel_input, **result, "notes": "; ".join(notes)}


def rows(work: Path, *, full_size: bool = False, only: list[str] | None = None,
         near_ties: bool = True) -> list[dict]:
    venv = ts_venv()
    if venv is None:
        return [_skipped(m, i, "skipped: no TotalSegmentator venv (set VOLSEG_PEER_TS_VENV)") for m, i, _ in ROWS]
    out = []
    catalogued = _catalogued()
    for model, rel, size in ROWS:
        if only and model not in only and f"{model}:{rel}" not in only:
            continue
        if model not in catalogued:  # e.g. total-fastest before the cascade branch lands
            out.append(_skipped(model, rel, f"skipped: {model!r} is not in this branch's catalogue"))
            continue
        try:
            out.append(run_row(model, rel, work, venv, full_size=full_size and size != "tiny",
                               near_ties=near_ties))
        except Exception as exc:  # noqa: BLE001  (one failed row must not hide the others)
            out.append({"model": model, "peer": "TotalSegmentator", "peer_version": "?", "input": rel,
                        "agreement_pct": None, "near_ties": None, "disagreements_all_near_ties": None,
                        "same_grid": None, "same_labels": None, "notes": f"FAILED: {exc}"})
    return out


def _skipped(model: str, rel: str, note: str) -> dict:
    return {"model": model, "peer": "TotalSegmentator", "peer_version": "-", "input": rel, "agreement_pct": None,
            "near_ties": None, "disagreements_all_near_ties": None, "same_grid": None, "same_labels": None,
            "notes": note}


def _catalogued() -> set[str]:
    sys.path.insert(0, str(REPO / "src"))
    from volseg.segmenters.catalogue import load_catalogue

    return set(load_catalogue())
