"""Regenerate src/volseg/compare/comparison.schema.json and its version snapshot from the Comparison model.

    PYTHONPATH=src python tools/comparison_schema.py
"""
from __future__ import annotations

from volseg.compare.schema import write_schema_files

if __name__ == "__main__":
    for path in write_schema_files():
        print(path)
