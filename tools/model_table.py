#!/usr/bin/env python3
"""Regenerate the model table in README.md from the catalogue (between the models markers).

    python tools/model_table.py           # rewrite README.md
    python tools/model_table.py --check   # exit 1 if README.md is out of date (used by the tests)
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
START, END = "<!-- models:start -->", "<!-- models:end -->"


def render_table() -> str:
    sys.path.insert(0, str(REPO / "src"))
    from volseg.segmenters.catalogue import TASK_GROUPS, load_catalogue

    def size(e) -> str:
        if not e.needs_weights:
            return "built in"
        return "unknown" if e.size_bytes is None else f"{e.size_bytes / 1e6:.1f} MB"

    commercial = {True: "yes", False: "no", None: "unknown"}
    lines = ["| Model | Task | Modality | Classes | Backend | Licence | Commercial use | Download |",
             "| --- | --- | --- | ---: | --- | --- | --- | ---: |"]
    entries = sorted(load_catalogue().values(), key=lambda e: (TASK_GROUPS.index(e.task), e.name))
    for e in entries:
        title = e.title.replace("|", "\\|")
        task = e.task.replace("_", " ")
        lines.append(f"| `{e.name}` {e.version}: {title} | {task} | {e.modality} | {len(e.classes)} | "
                     f"{e.backend} | {e.licence} | {commercial[e.commercial_use]} | {size(e)} |")
    return "\n".join(lines) + "\n"


def splice(readme: str, table: str) -> str:
    if START not in readme or END not in readme:
        raise SystemExit(f"README.md lacks the markers {START} ... {END}")
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{table}{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="fail if README.md is out of date")
    parser.add_argument("--readme", type=Path, default=REPO / "README.md")
    args = parser.parse_args(argv)
    readme = args.readme.read_text(encoding="utf-8")
    updated = splice(readme, render_table())
    if args.check:
        if updated != readme:
            print("README.md model table is out of date: run python tools/model_table.py", file=sys.stderr)
            return 1
        return 0
    if updated != readme:
        args.readme.write_text(updated, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
