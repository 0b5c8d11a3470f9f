"""Piped output is complete: whole names in tables whatever the width, and --format table|tsv|json."""
from __future__ import annotations

import json

import pytest

from volseg.cli.main import main
from volseg.io.nifti import write_nifti
from volseg.phantom import make_phantom
from volseg.segmenters.catalogue import load_catalogue


def _names() -> set[str]:
    return set(load_catalogue())


def test_models_list_piped_shows_every_name_and_title_whole(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "60")  # a narrow terminal setting must not cut piped output
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert "…" not in out
    cells = {cell.strip() for line in out.splitlines() for cell in line.split("│")}
    assert _names() <= cells
    catalogue = load_catalogue()
    assert all(entry.title in out for entry in catalogue.values())


def test_models_list_tsv_has_one_whole_row_per_model(capsys):
    assert main(["models", "list", "--format", "tsv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = lines[0].split("\t")
    assert header[:3] == ["task", "name", "title"]
    rows = [line.split("\t") for line in lines[1:]]
    assert all(len(row) == len(header) for row in rows)
    assert {row[1] for row in rows} == _names() and len(rows) == len(_names())


@pytest.mark.parametrize("flags", [["--format", "json"], ["--json"], ["-f", "json"]])
def test_models_list_json_and_its_alias(capsys, flags):
    assert main(["models", "list", *flags]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {row["name"] for row in rows} == _names()


def test_unknown_format_is_a_usage_error(capsys):
    assert main(["models", "list", "--format", "tvs"]) == 2
    err = capsys.readouterr().err
    assert "tvs" in err and "tsv" in err


@pytest.fixture(scope="module")
def small_ct(tmp_path_factory):
    phantom = make_phantom((40, 32, 16), (8.0, 8.0, 15.0))
    return write_nifti(phantom.image, tmp_path_factory.mktemp("ct") / "a_rather_long_file_name_for_a_ct.nii.gz")


def test_info_formats(small_ct, capsys):
    assert main(["info", str(small_ct), "--format", "tsv"]) == 0
    rows = dict(line.split("\t") for line in capsys.readouterr().out.splitlines())
    assert rows["key"] == "value" and rows["file_name"] == small_ct.name
    assert rows["shape"].replace(" ", "") in ("(40,32,16)", "[40,32,16]", "40×32×16")
    assert main(["info", str(small_ct), "--format", "json"]) == 0
    as_format = json.loads(capsys.readouterr().out)
    assert main(["info", str(small_ct), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == as_format
    assert as_format["image"]["file_name"] == small_ct.name


def test_info_lists_whole_series_uids_when_piped(tmp_path, capsys):
    import numpy as np

    from tests.factories.dicom_series import write_series

    uids = []
    for n in (1, 2):
        uid = f"1.2.826.0.1.3680043.8.498.12345678901234567890123456789.{n}"  # 62 characters
        uids.append(uid)
        write_series(tmp_path / "study" / f"s{n}", np.zeros((8, 8, 3), dtype=np.int16), spacing=(1, 1, 2),
                     series_uid=uid, study_uid="1.2.3.4", series_number=n)
    assert main(["info", str(tmp_path / "study")]) == 0
    out = capsys.readouterr().out
    assert all(uid in out for uid in uids)
    assert main(["info", str(tmp_path / "study"), "--format", "tsv"]) == 0
    rows = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert rows[0][-1] == "uid" and sorted(r[-1] for r in rows[1:]) == uids
