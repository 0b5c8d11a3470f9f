"""``--fastest`` (TotalSegmentator's 6 mm models): catalogue data, options, ``segment`` and ``batch``."""
from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from volseg.cli.main import main
from volseg.errors import ModelError, UsageError
from volseg.options import SegmentOptions


@pytest.fixture()
def seen(monkeypatch):
    """api.segment_many and api.batch replaced: they record the options they were given."""
    from volseg import api

    calls: dict = {}

    def fake_segment(inputs, out_dir, *, options, progress=None, **_):
        calls["options"] = options
        return []

    def fake_batch(input_dir, out_dir, *, options, on_event=None, **_):
        calls["batch"] = options
        return SimpleNamespace(exit_code=0)

    monkeypatch.setattr(api, "segment_many", fake_segment)
    monkeypatch.setattr(api, "batch", fake_batch)
    return calls


def test_fastest_variant_is_catalogue_data():
    from volseg.segmenters.catalogue import fast_variant, load_catalogue
    from volseg.segmenters.subset import resolve_model

    catalogue = load_catalogue()
    assert catalogue["total_v3"].fastest_variant == "total_v3-fastest"
    fastest = catalogue["total_v3-fastest"]
    assert fastest.input.spacing_mm == (6.0, 6.0, 6.0)
    assert [p.options.dataset_id for p in fastest.parts] == [837]  # TotalSegmentator's total_v3 fastest
    assert [c.name for c in fastest.classes] == [c.name for c in catalogue["total_v3"].classes]
    assert fast_variant("total_v3", fastest=True) == "total_v3-fastest"
    assert resolve_model(SegmentOptions(model="total_v3", fastest=True)) == "total_v3-fastest"
    assert resolve_model(SegmentOptions(model="total_v3", fast=True)) == "total_v3-fast"
    with pytest.raises(UsageError, match="model 'classic-ct' has no fastest variant.*total_v3"):
        resolve_model(SegmentOptions(model="classic-ct", fastest=True))


def test_fastest_variant_must_name_an_existing_entry():
    from volseg.segmenters import catalogue

    entry = catalogue.load_catalogue()["total"].model_copy(update={"fast_variant": None})
    with pytest.raises(ModelError, match="fastest variant 'total-fastest' is not catalogued"):
        catalogue._check_fast_variants({"total": entry.model_copy(update={"fastest_variant": "total-fastest"})})
    # with a total-fastest entry in the catalogue (a tmp one here), total --fastest runs it
    twin = catalogue.load_catalogue()["total_v3-fastest"].model_copy(update={"name": "total-fastest"})
    catalogue._check_fast_variants({"total": entry.model_copy(update={"fastest_variant": "total-fastest"}),
                                    "total-fastest": twin})
    raw = json.loads((catalogue.SCHEMA_PATH.parent / "models" / "total_v3.json").read_text())
    with pytest.raises(ModelError, match="its own fastest variant"):
        catalogue.parse_entry(json.dumps({**raw, "fastest_variant": "total_v3"}))


def test_fast_and_fastest_together_are_a_usage_error(seen, capsys):
    with pytest.raises(UsageError, match="--fast and --fastest contradict each other"):
        SegmentOptions(fast=True, fastest=True)
    assert main(["segment", "a.nii.gz", "-o", "out", "-m", "total_v3", "--fast", "--fastest"]) == 2
    err = capsys.readouterr().err
    assert "--fast and --fastest contradict each other" in err and "Traceback" not in err
    assert not seen


def test_segment_fastest_reaches_the_options(seen):
    assert main(["segment", "a.nii.gz", "-o", "out", "-m", "total_v3", "--fastest"]) == 0
    assert (seen["options"].fastest, seen["options"].fast, seen["options"].model) == (True, False, "total_v3")
    assert main(["segment", "a.nii.gz", "-o", "out", "-m", "total_v3"]) == 0
    assert seen["options"].fastest is False


def test_segment_fastest_on_a_model_without_one_exits_2(tmp_path, capsys):
    from volseg.io.nifti import write_nifti
    from volseg.phantom import make_phantom

    ct = write_nifti(make_phantom((40, 32, 20), (4.0, 4.0, 6.0)).image, tmp_path / "ct.nii.gz")
    assert main(["segment", str(ct), "-o", str(tmp_path / "out"), "-m", "classic-ct", "-d", "cpu", "--no-html",
                 "--fastest"]) == 2
    err = capsys.readouterr().err
    assert "model 'classic-ct' has no fastest variant" in err and "Traceback" not in err


def test_batch_fastest_runs_each_models_fastest_variant(seen, tmp_path, capsys):
    (tmp_path / "in").mkdir()
    assert main(["-q", "batch", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-m", "total_v3",
                 "--fastest"]) == 0
    assert seen["batch"].models == ("total_v3-fastest",)
    assert main(["-q", "batch", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-m", "total_v3"]) == 0
    assert seen["batch"].models == ("total_v3",)
    assert main(["-q", "batch", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-m", "classic-ct",
                 "--fastest"]) == 2
    assert "has no fastest variant" in capsys.readouterr().err
