"""Scale benchmark (issue 18): volseg against TotalSegmentator 2.18 and nnUNetPredictor, same weights, one run.

    PYTHONPATH=src python benchmarks/bench_scale.py                      # everything
    PYTHONPATH=src python benchmarks/bench_scale.py --models total-fast --inputs ct3mm ctnative full
    PYTHONPATH=src python benchmarks/bench_scale.py --programs volseg --inputs full

Inputs (:mod:`bench_scale_prepare`): ``ct3mm`` 150×160×160 @ 3 mm (on the model grid), ``ctnative``
224×240×240 @ 1.5 mm, ``full`` 512×512×300 @ 0.8×0.8×1.5 mm (the chest series resampled). Models:
``total-fast`` (TS-size 3 mm net, installed into volseg from a release-layout zip), ``total`` (five
TS-size 1.5 mm nets), ``net118`` (one 118-class 1.5 mm net, by path). Programs: ``volseg`` (``volseg
segment``, default settings, HTML pictures on), ``totalseg`` (``TotalSegmentator --ml -d cpu``, its own
settings: ``--fast`` for total-fast; it has no single 118-class 1.5 mm task) and ``nnunet``
(``nnUNetPredictor.predict_from_files``, step 0.5, the same folder; single-network models only).

Every program runs in its own process tree, timed by the peers' ``timed_subprocess``
(``../shared/peers/bench_totalseg.py``: wall, peak RSS summed over the process tree, other processes'
CPU use). volseg's stages come from its ``report.json`` (``timings_s``: read, model load, segment —
split into preprocessing, network, blending and return to the input grid by the backend's info —,
measuring, pictures, DICOM outputs, writing). ``uptime`` load is recorded with every run: the host
is shared, compare ratios from one run only. Writes ``bench_scale_results.json`` and
``bench_scale_results.md`` next to this file (``--out`` to change) and prints the table.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import bench_scale_prepare as prep  # noqa: E402

MODELS = ("total-fast", "total", "net118")
PROGRAMS = ("volseg", "totalseg", "nnunet")


def peers():
    """The peers' timing module, configured for this benchmark (no waiting for a quiet host: it is never quiet)."""
    os.environ.update(BENCH_WORK=str(prep.PEER_WORK), TS_VENV=str(prep.TS_VENV),
                      TS_HOME=str(prep.PEER_WORK / "ts_home"))
    os.environ.setdefault("BENCH_MAX_WAIT", "0")
    os.environ.setdefault("BENCH_TS_TIMEOUT", "3600")
    sys.path.insert(0, str(prep.PEERS))
    import bench_totalseg

    return bench_totalseg


def load_avg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def run_volseg(bt, case: str, model: str, out: Path, log: Path) -> dict:
    target = model if model != "net118" else str(prep.net118_folder())
    cmd = [sys.executable, "-m", "volseg.cli.main", "segment", str(prep.input_file(case)), "-m", target,
           "--device", "cpu", "-o", str(out)]
    rec, _, _ = bt.timed_subprocess(cmd, {**prep.volseg_env(), "PYTHONPATH": str(prep.REPO / "src")}, log,
                                    out.parent / "netlog.jsonl")
    report = out / "report.json"
    if report.exists():
        rec["stages_s"] = volseg_stages(json.loads(report.read_text()))
    return rec


def volseg_stages(report: dict) -> dict:
    """Seconds per stage from report.json: the run's timings_s, the backend's per-part timings summed."""
    prov = report["provenance"]
    stages = {k: float(v) for k, v in prov.get("timings_s", {}).items() if isinstance(v, (int, float))}
    backend: dict[str, float] = {}
    for model in [prov.get("model")] if isinstance(prov.get("model"), dict) else prov.get("models", []):
        details = model.get("details", {})
        for run in details.get("runs", []) or [details]:
            for key, value in (run.get("timings_s") or {}).items():
                if isinstance(value, (int, float)):
                    backend[key] = backend.get(key, 0.0) + float(value)
    stages.update({f"backend.{k}": v for k, v in backend.items()})
    return {k: round(v, 3) for k, v in stages.items()}


def run_totalseg(bt, case: str, model: str, out: Path, log: Path) -> dict:
    flags = ["--fast"] if model == "total-fast" else []
    cmd = [str(prep.TS_VENV / "bin" / "TotalSegmentator"), "-i", str(prep.input_file(case)), "-o",
           str(out / "seg.nii.gz"), *flags, "--ml", "-d", "cpu"]
    rec, so, _ = bt.timed_subprocess(cmd, bt.ts_env(out.parent / "netlog.jsonl"), log, out.parent / "netlog.jsonl")
    rec["stages_s"] = bt.parse_ts_stdout(so)
    return rec


def run_nnunet(bt, case: str, model: str, out: Path, log: Path) -> dict:
    folder = prep.ts_fast_folder() if model == "total-fast" else prep.net118_folder()
    cmd = [str(prep.TS_PY), "-u", str(prep.PEERS / "bench_totalseg.py"), "_nnunet_child", "--model", str(folder),
           "--input", str(prep.input_file(case)), "--out", str(out / case), "--step", "0.5", "--threads",
           str(os.cpu_count() or 2)]
    rec, so, _ = bt.timed_subprocess(cmd, bt.ts_env(out.parent / "netlog.jsonl"), log, out.parent / "netlog.jsonl")
    found = re.search(r"NNUNET_CHILD (.*)", so)
    rec["stages_s"] = json.loads(found.group(1)) if found else {}
    return rec


RUNNERS = {"volseg": run_volseg, "totalseg": run_totalseg, "nnunet": run_nnunet}


def applicable(program: str, model: str) -> bool:
    """TotalSegmentator has no single 118-class 1.5 mm task; nnUNetPredictor runs one network folder."""
    return not ((program == "totalseg" and model == "net118") or (program == "nnunet" and model == "total"))


def run_all(a, save=lambda rows: None) -> list[dict]:
    """Every selected (input, model, program) once; ``save`` gets the rows so far after each run."""
    bt = peers()
    prep.prepare(cases=a.inputs, models=a.models)
    rows = []
    for case in a.inputs:
        for model in a.models:
            for program in a.programs:
                if not applicable(program, model):
                    continue
                out = prep.WORK / "out" / f"{case}_{model}_{program}"
                shutil.rmtree(out, ignore_errors=True)
                out.mkdir(parents=True)
                before = load_avg()
                print(f"[{time.strftime('%H:%M:%S')}] {program} {model} {case} (load {before})", file=sys.stderr,
                      flush=True)
                rec = RUNNERS[program](bt, case, model, out, prep.WORK / "out" / f"{case}_{model}_{program}.log")
                rec.update(input=case, model=model, program=program, load_before=before, load_after=load_avg())
                print(json.dumps({k: v for k, v in rec.items() if k not in ("net_sample", "log")}), file=sys.stderr,
                      flush=True)
                rows.append(rec)
                save(rows)
    return rows


def summary(rows: list[dict]) -> list[dict]:
    """One line per (input, model): each program's wall and peak tree RSS, and volseg's ratios."""
    lines = []
    for key in dict.fromkeys((r["input"], r["model"]) for r in rows):
        got = {r["program"]: r for r in rows if (r["input"], r["model"]) == key and r["returncode"] == 0}
        line = {"input": key[0], "model": key[1]}
        for program, r in got.items():
            line[f"{program}_wall_s"] = r["wall_s"]
            line[f"{program}_rss_gb"] = round(r["peak_tree_rss_mb"] / 1024, 2)
            line[f"{program}_cpu_s"] = round(r.get("user_s", 0.0) + r.get("sys_s", 0.0), 1)
            line[f"{program}_load"] = r["load_before"].split()[0]
        peers_wall = [got[p]["wall_s"] for p in ("totalseg", "nnunet") if p in got]
        if "volseg" in got:
            v = got["volseg"]
            network = v.get("stages_s", {}).get("backend.network_forward")
            if network:
                line["volseg_outside_network"] = round(1 - network / v["wall_s"], 3)
            if peers_wall:
                line["volseg_vs_faster_peer"] = round(v["wall_s"] / min(peers_wall), 3)
                line["volseg_cpu_vs_faster_peer"] = round(line["volseg_cpu_s"] / min(
                    line[f"{p}_cpu_s"] for p in ("totalseg", "nnunet") if p in got), 3)
            if "totalseg" in got:
                line["volseg_rss_vs_ts"] = round(v["peak_tree_rss_mb"] / got["totalseg"]["peak_tree_rss_mb"], 3)
        lines.append(line)
    return lines


COLUMNS = [("input", "input"), ("model", "model"), ("volseg_wall_s", "volseg s"), ("volseg_cpu_s", "volseg CPU s"),
           ("volseg_rss_gb", "volseg GB"), ("totalseg_wall_s", "TS 2.18 s"), ("totalseg_cpu_s", "TS CPU s"),
           ("totalseg_rss_gb", "TS GB"), ("nnunet_wall_s", "nnU-Net s"), ("nnunet_cpu_s", "nnU-Net CPU s"),
           ("nnunet_rss_gb", "nnU-Net GB"), ("volseg_vs_faster_peer", "volseg ÷ faster peer (wall)"),
           ("volseg_cpu_vs_faster_peer", "(CPU)"),
           ("volseg_outside_network", "volseg outside network"), ("volseg_rss_vs_ts", "RSS ÷ TS"),
           ("volseg_load", "load (volseg)"), ("totalseg_load", "load (TS)")]


NOTES = """Made by `PYTHONPATH=src python benchmarks/bench_scale.py` (see its docstring). Same fabricated
TS-size weights for every program; volseg with its defaults (step 0.5, HTML pictures on), TotalSegmentator 2.18
with its own settings (`--fast --ml -d cpu`: step 0.8, its own resampling and chunking), nnUNetPredictor at
step 0.5, 2 preprocessing and 2 export workers. Peak RSS is summed over each process tree.
"""


def markdown(lines: list[dict], rows: list[dict]) -> str:
    head = "| " + " | ".join(t for _, t in COLUMNS) + " |\n|" + "---|" * len(COLUMNS) + "\n"
    body = "".join("| " + " | ".join(str(line.get(k, "")) for k, _ in COLUMNS) + " |\n" for line in lines)
    stages = "".join(f"| {r['input']} | {r['model']} | {r['program']} | {r['wall_s']} (CPU {r.get('cpu_percent')} %) | "
                     f"{json.dumps(r.get('stages_s', {}))} | {r['load_before']} |\n" for r in rows)
    return (f"# Scale benchmark ({time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores, shared host)\n\n"
            f"{NOTES}\n{head}{body}\nPer run (stages in s; load = `uptime` 1/5/15-min load before the run):\n\n"
            f"| input | model | program | wall s | stages | load |\n|---|---|---|---|---|---|\n{stages}\n"
            "CPU s = user + system seconds of the process tree (GNU time): less sensitive than wall time to the\n"
            "other engineers' processes on this 2-core host; wall-time ratios hold only when the loads match.\n")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--inputs", nargs="+", choices=prep.INPUTS, default=list(prep.INPUTS))
    ap.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    ap.add_argument("--programs", nargs="+", choices=PROGRAMS, default=list(PROGRAMS))
    ap.add_argument("--out", type=Path, default=HERE / "bench_scale_results")
    ap.add_argument("--merge", action="store_true", help="add these runs to the existing JSON results")
    a = ap.parse_args(argv)
    json_path = a.out.with_suffix(".json")
    before = json.loads(json_path.read_text())["runs"] if a.merge and json_path.exists() else []
    rows = run_all(a, save=lambda rows: write(before + rows, a.out))
    print(write(before + rows, a.out))
    return 0


def write(rows: list[dict], out: Path) -> str:
    """``out``.json (summary and every run) and ``out``.md (the table); returns the Markdown."""
    lines = summary(rows)
    out.with_suffix(".json").write_text(json.dumps({"summary": lines, "runs": rows}, indent=1))
    text = markdown(lines, rows)
    out.with_suffix(".md").write_text(text)
    return text


if __name__ == "__main__":
    raise SystemExit(main())
