"""The catalogue: every entry parses strictly, names are unique, classes contiguous, backends
registered, hashes well-formed, facts agree with the publishers' files we hold, the JSON Schema
is stable and the README model table is generated from it."""
from __future__ import annotations

import importlib.util
import json
import re
from importlib import resources
from pathlib import Path

import pytest
from pydantic import ValidationError

from volseg.errors import DependencyError, ModelError
from volseg.segmenters import registry
from volseg.segmenters.catalogue import (
    SCHEMA_PATH,
    TASK_GROUPS,
    entry_json_schema,
    get_entry,
    load_catalogue,
    parse_entry,
)

REPO = Path(__file__).resolve().parents[2]
MODELS = resources.files("volseg.segmenters") / "models"
REQUIRED = {"total", "total-fast", "total_mr", "mrsegmentator", "wholebody_ct_segmentation", "lung_vessels",
            "raidionics-ct-airways", "raidionics-ct-lymphnodes", "lung_nodules", "liver_lesions",
            "raidionics-mri-gbm", "raidionics-mri-meningioma", "raidionics-mri-metastasis",
            "raidionics-mri-lgglioma", "blast-ct", "classic-ct"}


def raw(name: str) -> dict:
    return json.loads((MODELS / f"{name}.json").read_text(encoding="utf-8"))


def test_entries_load_with_unique_names_matching_their_files():
    catalogue = load_catalogue()
    files = sorted(p.name[:-5] for p in MODELS.iterdir() if p.name.endswith(".json"))
    assert sorted(catalogue) == files  # one file per entry, named after it (so names are unique)
    assert REQUIRED <= set(catalogue)
    assert {e.task for e in catalogue.values()} == set(TASK_GROUPS)


def test_duplicate_names_are_refused(monkeypatch):
    entry = parse_entry(json.dumps(raw("classic-ct")))
    assert entry.name == "classic-ct"
    from volseg.segmenters import catalogue as cat

    class TwoFiles:
        def iterdir(self):
            return [FakeFile("a.json"), FakeFile("b.json")]

    class FakeFile:
        def __init__(self, name):
            self.name = name

        def read_text(self, encoding):
            return json.dumps(raw("classic-ct"))

    class Files:
        def __truediv__(self, other):
            return TwoFiles()

    monkeypatch.setattr(cat.resources, "files", lambda package: Files())
    cat.load_catalogue.cache_clear()
    try:
        with pytest.raises(ModelError, match="'classic-ct' is defined twice"):
            cat.load_catalogue()
    finally:
        monkeypatch.undo()
        cat.load_catalogue.cache_clear()


def test_class_indices_are_contiguous_and_gaps_are_refused():
    for entry in load_catalogue().values():
        assert [c.index for c in entry.classes] == list(range(1, len(entry.classes) + 1))
    bad = raw("lung_vessels")
    bad["classes"][1]["index"] = 5
    with pytest.raises(ModelError, match="1..N in order"):
        parse_entry(json.dumps(bad))


def test_every_backend_named_is_registered_and_missing_modules_are_clear(monkeypatch):
    for entry in load_catalogue().values():
        assert entry.backend in registry.BACKENDS
    assert registry.BACKENDS["blast_ct"] == "volseg.segmenters.backends.blast_ct:load"
    bad = raw("classic-ct")
    bad["backend"] = "nonexistent"
    with pytest.raises(ModelError, match="backend 'nonexistent' is not registered"):
        parse_entry(json.dumps(bad))
    monkeypatch.setitem(registry.BACKENDS, "ghost", "volseg.segmenters.backends.ghost_backend:load")
    with pytest.raises(ModelError, match="backend 'ghost' is not available in this volseg build"):
        registry.backend_factory("ghost")
    monkeypatch.setitem(registry.BACKENDS, "needs_pkg", "volseg_test_missing_pkg_xyz:load")
    with pytest.raises(ModelError, match="not available"):
        registry.backend_factory("needs_pkg")
    monkeypatch.setitem(registry.BACKENDS, "third_party", "json:load")
    assert registry.backend_factory("third_party") is json.load


def test_missing_third_party_dependency_names_the_extra(monkeypatch, tmp_path):
    module = tmp_path / "volseg_fake_backend_mod.py"
    module.write_text("import some_missing_dependency_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(registry.BACKENDS, "onnx", "volseg_fake_backend_mod:load")
    with pytest.raises(DependencyError, match="some_missing_dependency_xyz") as info:
        registry.backend_factory("onnx")
    assert info.value.hint == "pip install 'volseg[onnx]'"


def test_sha256_values_are_well_formed_and_bad_ones_refused():
    for entry in load_catalogue().values():
        for w in entry.weights:
            assert w.sha256 is None or re.fullmatch(r"[0-9a-f]{64}", w.sha256)
            assert w.url.startswith("https://")
    bad = raw("blast-ct")
    bad["weights"][0]["sha256"] = "abc123"
    with pytest.raises(ModelError, match="sha256"):
        parse_entry(json.dumps(bad))
    bad["weights"][0]["sha256"] = "G" * 64
    with pytest.raises(ModelError, match="sha256"):
        parse_entry(json.dumps(bad))


@pytest.mark.parametrize("where", ["top", "class", "input", "weight", "intensity"])
def test_unknown_fields_are_refused(where):
    entry = raw("blast-ct")
    target = {"top": entry, "class": entry["classes"][0], "input": entry["input"],
              "weight": entry["weights"][0], "intensity": entry["input"]["intensity"]}[where]
    target["surprise"] = 1
    with pytest.raises(ModelError, match="surprise"):
        parse_entry(json.dumps(entry))


def test_entries_are_frozen():
    entry = get_entry("total")
    with pytest.raises(ValidationError, match="frozen"):
        entry.name = "other"


def test_json_schema_is_stable():
    committed = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    assert entry_json_schema() == committed, (
        "ModelEntry changed: review, then regenerate with "
        "`python -c 'from volseg.segmenters.catalogue import write_schema; write_schema()'`")


def test_entries_validate_against_the_committed_schema():
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    for path in MODELS.iterdir():
        if path.name.endswith(".json"):
            jsonschema.validate(json.loads(path.read_text(encoding="utf-8")), schema)


def test_parts_map_every_class_once_with_their_dataset_ids():
    total = get_entry("total")
    assert [p.options.dataset_id for p in total.parts] == [291, 292, 293, 294, 295]
    mapped = [n for p in total.parts for n in p.labels.values()]
    assert sorted(mapped) == sorted(c.name for c in total.classes) and len(mapped) == 117
    for part in total.parts:
        assert list(part.labels) == list(range(1, len(part.labels) + 1))
    assert get_entry("total").parts[4].labels[26] == "costal_cartilages"
    assert [p.options.dataset_id for p in get_entry("total_mr").parts] == [850, 851]
    assert get_entry("total-fast").parts[0].options.dataset_id == 297
    bad = raw("lung_nodules")
    bad["parts"][0]["labels"]["2"] = "not_a_class"
    with pytest.raises(ModelError, match="unknown classes"):
        parse_entry(json.dumps(bad))


def test_cascades_crop_to_catalogued_classes():
    lv = get_entry("lung_vessels")
    assert lv.cascade.model == "total-fast" and len(lv.cascade.classes) == 5
    assert set(lv.cascade.classes) <= {c.name for c in get_entry("total-fast").classes}
    assert get_entry("liver_lesions").cascade.classes == ("liver",)
    names = [c.name for c in lv.classes]
    assert names == ["lung_airways", "lung_airways_wall", "lung_arteries", "lung_veins"]


def test_label_tables_carry_names_colours_and_snomed_codes():
    table = get_entry("total").label_table()
    assert table[1].name == "spleen" and table[1].snomed_type == "SCT:78961009"
    assert table[1].snomed_category == "SCT:123037004" and table[1].color == (50, 170, 60)
    kidney_cyst = next(c for c in get_entry("total").classes if c.name == "kidney_cyst_left")
    assert (kidney_cyst.snomed_category, kidney_cyst.snomed_region, kidney_cyst.snomed_region_modifier) == (
        "SCT:49755003", "SCT:64033007", "SCT:7771000")


def test_every_downloadable_entry_cites_https_sources():
    for entry in load_catalogue().values():
        if entry.needs_weights:
            assert entry.sources and entry.citation
            assert all(s.startswith("https://") for s in entry.sources)


def test_total_class_maps_match_the_published_label_maps(shared_data):
    example = shared_data / "totalseg-example"
    for name, label_map in (("total", "label_map_total_v2.json"), ("total-fast", "label_map_total_v2.json"),
                            ("total_mr", "label_map_total_mr.json")):
        published = {int(k): v for k, v in json.loads((example / label_map).read_text()).items()}
        assert get_entry(name).label_table().names() == published


def test_blast_ct_files_match_the_published_sha256sums(shared_data):
    folder = shared_data / "blast-ct-v1"
    sums = {n: d for d, n in (line.split() for line in (folder / "SHA256SUMS").read_text().splitlines())}
    entry = get_entry("blast-ct")
    assert len(entry.weights) == 12
    for w in entry.weights:
        assert w.sha256 == sums[w.name] and w.size_bytes == (folder / w.name).stat().st_size
        assert w.url == ("https://github.com/biomedia-mira/blast-ct/raw/96666a1fe61244071b5d5cf4ad0796e4ae3f572a/"
                         f"blast_ct/data/saved_models/{w.name}")
    config = json.loads((folder / "config.json").read_text())
    assert list(entry.backend_options.feature_maps) == config["model"]["DeepMedic"]["feature_maps"]
    window = config["data"]["transformation"]["IntensityWindowNormalization"]
    assert entry.input.intensity.window == (window["lower_bound"], window["upper_bound"])
    assert [c.display_name.split("(")[-1].rstrip(")") for c in entry.classes if "(" in c.display_name] == \
        [n for n in config["data"]["class_names"] if n in ("IPH", "EAH", "IVH")]


def test_readme_model_table_is_up_to_date():
    spec = importlib.util.spec_from_file_location("model_table", REPO / "tools" / "model_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert module.splice(readme, module.render_table()) == readme, "run python tools/model_table.py"
    for name in load_catalogue():
        assert f"`{name}`" in readme
