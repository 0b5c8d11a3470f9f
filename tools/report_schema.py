#!/usr/bin/env python3
"""Regenerate ``src/volseg/reports/report.schema.json`` from the pydantic ``Report`` model.

    python tools/report_schema.py           # write the schema (+ the snapshot of a new version)
    python tools/report_schema.py --check   # exit 1 when the committed files are stale

The snapshot ``schemas/report-<SCHEMA_VERSION>.schema.json`` of a released version is never
rewritten with a different field set: change the fields → bump ``SCHEMA_VERSION`` in
``reports/model.py`` (minor for added optional fields, major for renamed/removed ones) and re-run.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from volseg.reports import schema as rs  # imported after the sys.path insert above


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check that the committed files are current")
    args = parser.parse_args(argv)

    current = rs.generate_schema()
    version = current["x-schema-version"]
    folder = REPO / "src" / "volseg" / "reports"
    target, snapshot = folder / rs.SCHEMA_FILE, folder / rs.SNAPSHOT_DIR / f"report-{version}.schema.json"
    text = rs.schema_text(current)
    snaps = rs.snapshots()
    if version in snaps and rs.field_map(snaps[version]) != rs.field_map(current):
        print(f"refused: the fields changed but SCHEMA_VERSION is still {version}; bump it in "
              "src/volseg/reports/model.py and re-run", file=sys.stderr)
        return 1
    problems = rs.version_problems(current, {**snaps, version: current})
    if problems:
        print("refused:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    stale = [p for p in (target, snapshot) if not p.is_file() or p.read_text(encoding="utf-8") != text]
    if args.check:
        for p in stale:
            print(f"stale: {p.relative_to(REPO)} (run tools/report_schema.py)", file=sys.stderr)
        return 1 if stale else 0
    for p in stale:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
        print(f"wrote {p.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
