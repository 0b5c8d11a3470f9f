"""Fixtures for the weights manager: an isolated VOLSEG_HOME, a local HTTP server, a small catalogue."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.weights.factories import TEST_ENTRY_FILES
from tests.weights.http_server import FileServer


@pytest.fixture
def volseg_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "volseg-home"
    monkeypatch.setenv("VOLSEG_HOME", str(home))
    monkeypatch.delenv("VOLSEG_OFFLINE", raising=False)
    monkeypatch.delenv("VOLSEG_MIRROR", raising=False)
    return home


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "served"
    root.mkdir()
    with FileServer(root) as srv:
        yield srv


@pytest.fixture
def catalogue(monkeypatch):
    """Replace the catalogue by the given entries: ``catalogue(make_entry(pin=True), ...)``."""
    from volseg.segmenters import catalogue as cat
    from volseg.segmenters.weights import bundle

    def install(*raw: dict):
        entries = {e.name: e for e in (cat.ModelEntry.model_validate(r) for r in raw)}
        monkeypatch.setattr(cat, "load_catalogue", lambda: entries)
        monkeypatch.setattr(bundle, "load_catalogue", lambda: entries)
        return entries

    return install


@pytest.fixture
def mirror(server, monkeypatch):
    """Serve TEST_ENTRY_FILES as $VOLSEG_MIRROR/<name>/1.0.0/<file>; returns a writer for more files."""
    monkeypatch.setenv("VOLSEG_MIRROR", server.base_url)

    def put(name: str, files: dict[str, bytes] = TEST_ENTRY_FILES, version: str = "1.0.0") -> None:
        folder = server.state.root / name / version
        folder.mkdir(parents=True, exist_ok=True)
        for fname, data in files.items():
            (folder / fname).write_bytes(data)

    return put
