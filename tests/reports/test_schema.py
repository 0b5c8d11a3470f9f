"""report.json's committed JSON Schema: current, validating, and guarded by semver rules."""
import importlib.util
import json
from pathlib import Path

import pytest
from pydantic import create_model

from volseg.errors import InputError
from volseg.reports import schema as rs
from volseg.reports.model import SCHEMA_VERSION, Report, StructureRow

REPO = Path(__file__).resolve().parents[2]


def _variant(*, rename: dict[str, str] | None = None, add: dict | None = None,
             required: tuple[str, ...] = ()) -> type:
    """A Report whose StructureRow has fields renamed / added (as a real schema change would)."""
    rename, add = rename or {}, add or {}
    fields = {}
    for name, info in StructureRow.model_fields.items():
        fields[rename.get(name, name)] = (info.annotation, info)
    for name, (annotation, default) in add.items():
        fields[name] = (annotation, ... if name in required else default)
    row = create_model("StructureRow", __config__=StructureRow.model_config, **fields)
    return create_model("Report", __base__=Report, structures=(list[row], ...))


def test_committed_schema_is_current():
    generated = rs.schema_text(rs.generate_schema())
    committed = (REPO / "src/volseg/reports" / rs.SCHEMA_FILE).read_text(encoding="utf-8")
    assert committed == generated, "report.schema.json is stale: run python tools/report_schema.py"


def test_snapshots_agree_with_schema_version():
    assert rs.version_problems(rs.generate_schema(), rs.snapshots()) == []
    assert SCHEMA_VERSION in rs.snapshots()


def test_the_regeneration_tool_reports_current_files():
    spec = importlib.util.spec_from_file_location("report_schema_tool", REPO / "tools" / "report_schema.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    assert tool.main(["--check"]) == 0


def test_field_map_reaches_nested_rows():
    fields = rs.field_map(rs.generate_schema())
    assert fields["structures[].volume_ml"] == {"types": ["number"], "required": True}
    assert fields["provenance.model.weights"]["required"] is False
    assert "input.spacing_mm" in fields and "provenance.timings_s" in fields


def test_renamed_field_without_major_bump_fails():
    renamed = rs.generate_schema(_variant(rename={"volume_ml": "volume_mL"}), SCHEMA_VERSION)
    problems = rs.version_problems(renamed, rs.snapshots())
    assert any("field removed or renamed: structures[].volume_ml" in p for p in problems), problems
    # also as a minor bump: still refused
    minor = rs.generate_schema(_variant(rename={"volume_ml": "volume_mL"}), "1.99.0")
    problems = rs.version_problems(minor, {**rs.snapshots(), "1.99.0": minor})
    assert any("needs a major version bump" in p for p in problems), problems


def test_renamed_field_with_major_bump_passes():
    major = rs.generate_schema(_variant(rename={"volume_ml": "volume_mL"}), "2.0.0")
    assert rs.version_problems(major, {**rs.snapshots(), "2.0.0": major}) == []


def test_additive_optional_field_with_minor_bump_passes():
    added = rs.generate_schema(_variant(add={"reader_comment": (str, "")}), "1.99.0")
    assert rs.version_problems(added, {**rs.snapshots(), "1.99.0": added}) == []


def test_additive_field_without_any_bump_fails():
    added = rs.generate_schema(_variant(add={"reader_comment": (str, "")}), SCHEMA_VERSION)
    problems = rs.version_problems(added, rs.snapshots())
    assert problems == [f"fields were added but SCHEMA_VERSION is still {SCHEMA_VERSION}: bump it (minor)"]


def test_new_required_field_in_existing_object_is_breaking():
    added = rs.generate_schema(_variant(add={"reader_comment": (str, None)}, required=("reader_comment",)), "1.99.0")
    problems = rs.breaking_changes(rs.snapshots()[SCHEMA_VERSION], added)
    assert problems == ["new required field in an existing object: structures[].reader_comment (make it optional)"]


def test_type_narrowing_is_breaking():
    old = rs.generate_schema()
    new = json.loads(json.dumps(old))
    new["$defs"]["StructureRow"]["properties"]["mean_hu"] = {"type": "number"}
    assert rs.breaking_changes(old, new) == ["type of structures[].mean_hu changed: ['null', 'number'] → ['number']"]


def test_a_written_report_validates(phantom_report):
    rs.validate_report(json.loads(phantom_report.to_json()))


def test_invalid_report_is_one_clear_error(phantom_report, tmp_path):
    payload = json.loads(phantom_report.to_json())
    payload["structures"][0]["volume_mL"] = payload["structures"][0].pop("volume_ml")
    path = tmp_path / "report.json"
    path.write_text(json.dumps(payload))
    with pytest.raises(InputError, match=r"structures/0: 'volume_ml' is a required property") as info:
        rs.load_report(path)
    assert str(path) in info.value.one_line()


def test_other_major_version_is_refused(phantom_report):
    payload = json.loads(phantom_report.to_json())
    payload["schema_version"] = "2.0.0"
    with pytest.raises(InputError, match="report schema 2.0.0 is not readable"):
        rs.validate_report(payload)


def test_newer_minor_version_says_upgrade(phantom_report):
    payload = json.loads(phantom_report.to_json())
    payload["schema_version"] = "1.99.0"
    payload["brand_new_field"] = 1
    with pytest.raises(InputError) as info:
        rs.validate_report(payload)
    assert "upgrade volseg" in info.value.one_line()
