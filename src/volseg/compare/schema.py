"""The committed JSON Schema of ``comparison.json`` (``comparison.schema.json`` next to this module, and an
immutable snapshot ``schemas/comparison-<version>.schema.json`` per released version), generated from
:class:`~volseg.compare.results.Comparison` by ``tools/comparison_schema.py``; a test fails when stale.
Versioning follows the report's rules (:mod:`volseg.reports.schema`)."""
from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from volseg.compare.results import SCHEMA_VERSION, Comparison
from volseg.errors import InputError
from volseg.reports import schema as report_schema
from volseg.reports.schema import read_json, schema_text

SCHEMA_FILE = "comparison.schema.json"
SNAPSHOT_DIR = "schemas"


def generate_schema(version: str = SCHEMA_VERSION) -> dict[str, Any]:
    """The JSON Schema of :class:`Comparison` with its dialect, title and version stated."""
    return report_schema.generate_schema(Comparison, version, name="comparison", title="volseg follow-up comparison")


def package_dir() -> Path:
    return Path(str(resources.files("volseg.compare")))


def committed_schema() -> dict[str, Any]:
    return json.loads((package_dir() / SCHEMA_FILE).read_text(encoding="utf-8"))


def load_comparison(path: str | Path) -> Comparison:
    """Read and validate ``comparison.json`` (JSON Schema first, then the pydantic model)."""
    import jsonschema

    path = Path(path)
    payload = read_json(path, "comparison")
    try:
        jsonschema.validate(payload, committed_schema())
        return Comparison.model_validate(payload)
    except (jsonschema.ValidationError, ValueError) as exc:
        raise InputError(f"invalid comparison: {' '.join(str(exc).split())[:300]}", path=path) from exc


def write_schema_files() -> list[Path]:
    """(Re)write comparison.schema.json and this version's snapshot (development tool)."""
    text = schema_text(generate_schema())
    folder = package_dir()
    (folder / SNAPSHOT_DIR).mkdir(exist_ok=True)
    paths = [folder / SCHEMA_FILE, folder / SNAPSHOT_DIR / f"comparison-{SCHEMA_VERSION}.schema.json"]
    for path in paths:
        path.write_text(text, encoding="utf-8")
    return paths

