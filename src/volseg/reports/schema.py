"""The committed JSON Schema of ``report.json``: generation, validation and compatibility rules.

``report.schema.json`` (package data, next to this module) is generated from the pydantic
:class:`~volseg.reports.model.Report` by ``tools/report_schema.py``; a test fails when it is stale.
Every released schema version also keeps an immutable snapshot ``schemas/report-<version>.schema.json``.

Semver rules, checked against every snapshot of the current major version (``breaking_changes``):

* a field removed or renamed, a field whose JSON type narrowed, an optional field made required, or a
  new required field inside an object that already existed → a MAJOR bump is needed;
* new optional fields (or new objects, whatever their inner fields) → a MINOR bump is enough;
* any change of the field set with no version change at all is refused too.
"""
from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from volseg.errors import InputError
from volseg.reports.model import SCHEMA_VERSION, Report

SCHEMA_FILE = "report.schema.json"
SNAPSHOT_DIR = "schemas"
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


# ---- generation ------------------------------------------------------------------------------
def generate_schema(model: type[BaseModel] = Report, version: str = SCHEMA_VERSION, *, name: str = "report",
                    title: str = "volseg per-study report") -> dict[str, Any]:
    """The JSON Schema of ``model`` with its dialect, title and version stated (``name`` in its ``$id``)."""
    schema = model.model_json_schema()
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": f"https://volseg.org/schemas/{name}-{version}.schema.json",
        "title": title,
        "x-schema-version": version,
        **{k: v for k, v in schema.items() if k != "title"},
    }


def schema_text(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def package_dir() -> Path:
    return Path(str(resources.files("volseg.reports")))


@lru_cache(maxsize=1)
def committed_schema() -> dict[str, Any]:
    """The committed ``report.schema.json`` shipped with volseg."""
    return json.loads((package_dir() / SCHEMA_FILE).read_text(encoding="utf-8"))


def snapshots() -> dict[str, dict[str, Any]]:
    """Every committed snapshot, by schema version."""
    out = {}
    for path in sorted((package_dir() / SNAPSHOT_DIR).glob("report-*.schema.json")):
        schema = json.loads(path.read_text(encoding="utf-8"))
        out[str(schema["x-schema-version"])] = schema
    return out


# ---- validation --------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _validator():
    """The committed schema's validator, built once (collect validates every study's report)."""
    import jsonschema

    return jsonschema.Draft202012Validator(committed_schema())


def validate_report(payload: dict[str, Any], *, path: str | Path | None = None) -> None:
    """Raise :class:`InputError` unless ``payload`` (parsed report.json) satisfies the schema."""
    given = str(payload.get("schema_version", "?")) if isinstance(payload, dict) else "?"
    if _version(given) and _version(given)[0] != _version(SCHEMA_VERSION)[0]:
        raise InputError(f"report schema {given} is not readable by this volseg (schema {SCHEMA_VERSION})",
                         path=path)
    errors = sorted(_validator().iter_errors(payload), key=lambda e: list(e.absolute_path))
    if not errors:
        return
    shown = "; ".join(f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}"
                      for e in errors[:3])
    newer = _version(given) > _version(SCHEMA_VERSION)
    hint = f"written by a newer volseg (schema {given}); upgrade volseg" if newer else None
    raise InputError(f"report.json does not match schema {SCHEMA_VERSION} ({len(errors)} problem(s): "
                     f"{shown})", path=path, hint=hint)


def read_json(path: str | Path, what: str) -> Any:
    """The JSON in ``path``; a missing or unreadable file is an InputError naming ``what`` it should be."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InputError(f"no such {what}", path=path) from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read {what} ({exc})", path=path) from exc


def load_report(path: str | Path) -> Report:
    """Read and validate ``report.json`` (JSON Schema first, then the pydantic model)."""
    path = Path(path)
    payload = read_json(path, "report")
    validate_report(payload, path=path)
    try:
        return Report.model_validate(payload)
    except ValueError as exc:
        raise InputError(f"invalid report: {exc}", path=path) from exc


# ---- compatibility -------------------------------------------------------------------------------
def field_map(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every field of ``schema`` by dotted path (``structures[].volume_ml``) → JSON types, required."""
    defs = schema.get("$defs", {})
    fields: dict[str, dict[str, Any]] = {}

    def walk(node: dict[str, Any], prefix: str, seen: tuple[str, ...]) -> None:
        for name, sub in node.get("properties", {}).items():
            path = f"{prefix}{name}"
            fields[path] = {"types": sorted(_types(sub, defs)), "required": name in node.get("required", [])}
            for target, suffix in _children(sub, defs):
                ref = target.get("title", "")
                if ref not in seen:
                    walk(target, f"{path}{suffix}.", seen + (ref,))

    walk(schema, "", ())
    return fields


def breaking_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Why ``new`` cannot share ``old``'s major version (empty: compatible, additive at most)."""
    before, after = field_map(old), field_map(new)
    problems = [f"field removed or renamed: {p}" for p in before if p not in after]
    for path, spec in after.items():
        if path in before:
            if not set(before[path]["types"]) <= set(spec["types"]):
                problems.append(f"type of {path} changed: {before[path]['types']} → {spec['types']}")
            if spec["required"] and not before[path]["required"]:
                problems.append(f"optional field became required: {path}")
        elif spec["required"] and _parent(path) in before | {"": {}}:
            problems.append(f"new required field in an existing object: {path} (make it optional)")
    return problems


def version_problems(current: dict[str, Any], snaps: dict[str, dict[str, Any]]) -> list[str]:
    """Problems between the current schema and the committed snapshots (see the module rules)."""
    version = str(current["x-schema-version"])
    problems = []
    if version not in snaps:
        problems.append(f"no snapshot for schema {version}: run tools/report_schema.py")
    elif field_map(snaps[version]) != field_map(current) and not breaking_changes(snaps[version], current):
        problems.append(f"fields were added but SCHEMA_VERSION is still {version}: bump it (minor)")
    for old_version, old in snaps.items():
        if _version(old_version)[0] != _version(version)[0]:
            continue
        if _version(old_version) > _version(version):
            problems.append(f"snapshot {old_version} is newer than SCHEMA_VERSION {version}")
            continue
        problems += [f"{p} (since {old_version}; needs a major version bump)"
                     for p in breaking_changes(old, current)]
    return problems


# ---- helpers -----------------------------------------------------------------------------------
def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    return defs[ref.rsplit("/", 1)[-1]] if ref else node


def _alternatives(node: dict[str, Any], defs: dict[str, Any]) -> list[dict[str, Any]]:
    node = _resolve(node, defs)
    options = node.get("anyOf") or node.get("oneOf")
    return [_resolve(o, defs) for o in options] if options else [node]


def _types(node: dict[str, Any], defs: dict[str, Any]) -> set[str]:
    out: set[str] = set()
    for alt in _alternatives(node, defs):
        kind = alt.get("type")
        out |= set(kind) if isinstance(kind, list) else {kind or "any"}
    return out


def _children(node: dict[str, Any], defs: dict[str, Any]) -> list[tuple[dict[str, Any], str]]:
    """Objects below a field: its own properties, list items (``[]``) or dict values (``{}``)."""
    found = []
    for alt in _alternatives(node, defs):
        if "properties" in alt:
            found.append((alt, ""))
        for key, suffix in (("items", "[]"), ("additionalProperties", "{}")):
            sub = alt.get(key)
            if isinstance(sub, dict):
                found += [(a, suffix) for a in _alternatives(sub, defs) if "properties" in a]
    return found


def _parent(path: str) -> str:
    head = path.rsplit(".", 1)[0] if "." in path else ""
    return head.removesuffix("[]").removesuffix("{}")


def _version(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in text.split("."))
    except ValueError:
        return ()
