"""``python -m benchmarks.parity [--full-size] [--only MODEL ...] [--work DIR] [--json FILE]``.

Prints the parity table in Markdown on stdout and writes the rows as JSON. Other peers' modules
(``benchmarks/parity/raidionics.py``, ``monai.py``: ``rows(work) -> list[dict]``) join when present.
"""
from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a file: python benchmarks/parity/__main__.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    __package__ = "benchmarks.parity"

from benchmarks.parity import COLUMNS

OTHER_PEERS = ("raidionics", "monai", "blast", "mrsegmentator", "nnunet_predict", "totalseg_subtasks")


def markdown(rows: list[dict]) -> str:
    def cell(v):
        if v is None:
            return "-"
        if isinstance(v, bool):
            return "yes" if v else "NO"
        if isinstance(v, float):
            return f"{v:.3f}"
        return str(v).replace("|", "/")
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(cell(r.get(c)) for c in COLUMNS) + " |" for r in rows]
    return "\n".join(lines)


def collect(work: Path, *, full_size: bool, only: list[str] | None, peers: list[str],
            near_ties: bool = True) -> list[dict]:
    from benchmarks.parity import totalseg

    rows: list[dict] = []
    if "totalseg" in peers:
        rows += totalseg.rows(work / "totalseg", full_size=full_size, only=only, near_ties=near_ties)
    for name in OTHER_PEERS:
        if name not in peers:
            continue
        try:
            module = importlib.import_module(f"benchmarks.parity.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"benchmarks.parity.{name}":
                raise
            continue  # that peer's module is not written (yet)
        rows += _peer_rows(module, work / name)
    return rows


def _peer_rows(module, work: Path) -> list[dict]:
    """``module.rows(work)``, kept in ``work/rows.json``; with ``VOLSEG_PARITY_REUSE=1`` the kept rows
    of an earlier run are shown again instead (as the TotalSegmentator rows reuse their outputs)."""
    import os

    kept = work / "rows.json"
    if os.environ.get("VOLSEG_PARITY_REUSE") == "1" and kept.exists():
        return [{**r, "notes": f"{r.get('notes', '')} (reused)"} for r in json.loads(kept.read_text())]
    rows = module.rows(work)
    work.mkdir(parents=True, exist_ok=True)
    kept.write_text(json.dumps(rows, indent=1))
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.parity", description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("/tmp/volseg-parity"), help="scratch folder (weights, outputs)")
    ap.add_argument("--json", type=Path, default=None, help="where to write the rows (default WORK/parity.json)")
    ap.add_argument("--full-size", action="store_true", help="TotalSegmentator-size networks (slow on CPU)")
    ap.add_argument("--only", nargs="*", default=None, help="models (or model:input) to run")
    ap.add_argument("--no-near-ties", action="store_true", help="skip the extra peer run that counts near-ties")
    ap.add_argument("--peers", nargs="*", default=["totalseg", *OTHER_PEERS])
    a = ap.parse_args(argv)
    t0 = time.time()
    rows = collect(a.work, full_size=a.full_size, only=a.only, peers=a.peers, near_ties=not a.no_near_ties)
    out = a.json or a.work / ("parity-full.json" if a.full_size else "parity.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"created": time.strftime("%Y-%m-%d %H:%M:%S"), "seconds": round(time.time() - t0),
                               "full_size": a.full_size, "rows": rows}, indent=1))
    print(markdown(rows))
    print(f"\n(rows written to {out})", file=sys.stderr)
    bad = [r for r in rows if not str(r.get("notes", "")).startswith("skipped") and not _passes(r)]
    return 1 if bad else 0


def _passes(row: dict) -> bool:
    """Same grid and labels, and >= 99.9 % agreement or every disagreement a near-tie (tiny random
    networks tie often: their rows can be under 99.9 % with every difference explained)."""
    if not row.get("same_grid") or not row.get("same_labels") or row.get("agreement_pct") is None:
        return False
    return row["agreement_pct"] >= 99.9 or row.get("disagreements_all_near_ties") is True


if __name__ == "__main__":
    sys.exit(main())
