"""`volseg models list/show/...` output: every entry, grouped, with licence, size and state."""
from __future__ import annotations

import json

import pytest

from volseg.cli.main import main
from volseg.segmenters.catalogue import load_catalogue


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(autouse=True)
def wide(monkeypatch, volseg_home):
    monkeypatch.setenv("COLUMNS", "250")


def test_list_shows_every_entry_grouped_with_licence_and_size(capsys):
    code, out, _ = run(capsys, "models", "list")
    assert code == 0
    lines = out.splitlines()
    groups = ("organs", "tumours", "airways", "lymph nodes", "other")
    titles = [line.strip() for line in lines if line.strip() in groups]
    assert titles == ["organs", "tumours", "airways", "lymph nodes", "other"]
    for entry in load_catalogue().values():
        row = next(line for line in lines if line.startswith(f"│ {entry.name} "))
        assert entry.licence in row
        size = "-" if not entry.needs_weights else ("?" if entry.size_bytes is None else None)
        assert (size or f"{entry.size_bytes / 1e6:.1f} MB") in row
        section = max(i for i, line in enumerate(lines) if line.strip() in titles and i < lines.index(row))
        assert lines[section].strip() == entry.task.replace("_", " ")
    assert "50.1 MB" in next(line for line in lines if line.startswith("│ blast-ct "))


def test_list_json_has_installed_state(capsys):
    code, out, _ = run(capsys, "models", "list", "--json")
    rows = {r["name"]: r for r in json.loads(out)}
    assert code == 0 and set(rows) == set(load_catalogue())
    assert rows["classic-ct"]["installed"] is True and rows["total"]["installed"] is False
    assert rows["blast-ct"]["size_bytes"] == 50_056_342


def test_show_prints_classes_input_and_citation(capsys):
    code, out, _ = run(capsys, "models", "show", "blast-ct")
    assert code == 0
    assert "Intraventricular haemorrhage (IVH)" in out and "1 × 1 × 1 mm" in out
    assert "window [-15.0, 100.0] → [-1.0, 1.0]" in out and "Lancet Digital Health" in out


def test_show_unknown_model_suggests_the_closest(capsys):
    code, _, err = run(capsys, "models", "show", "totl")
    assert code == 7 and "unknown model 'totl'" in err and "did you mean 'total'" in err


def test_download_refuses_unknown_names_before_fetching(capsys):
    code, _, err = run(capsys, "models", "download", "blast-ct", "nope")
    assert code == 7 and "unknown model 'nope'" in err


def test_verify_with_nothing_installed(capsys):
    code, _, err = run(capsys, "models", "verify")
    assert code == 0 and "no models installed" in err
