"""Regenerate src/volseg/compare/comparison.schema.json and its version snapshot from the Comparison model.

    PYTHONPATH=src python tools/comparison_schema.py
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from volseg.compare.schema import write_schema_files  # noqa: E402  (after the sys.path insert)

if __name__ == "__main__":
    for path in write_schema_files():
        print(path)
