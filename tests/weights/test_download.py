"""The real download code against a local HTTP server on 127.0.0.1."""
from __future__ import annotations

import hashlib

import pytest

from tests.weights.factories import payload, sha256
from volseg.errors import ModelError
from volseg.segmenters.weights.download import fetch

DATA = payload(3, 50_000)


@pytest.fixture
def served(server):
    (server.state.root / "w.bin").write_bytes(DATA)
    return server


def test_good_download_verifies_and_renames(served, tmp_path):
    dest = tmp_path / "out" / "w.bin"
    result = fetch(served.url("w.bin"), dest, expected_sha256=sha256(DATA), expected_size=len(DATA))
    assert dest.read_bytes() == DATA
    assert (result.sha256, result.size_bytes, result.requests) == (sha256(DATA), len(DATA), 1)
    assert not dest.with_name("w.bin.part").exists()
    assert served.requests == [("w.bin", None)]


def test_wrong_hash_is_rejected_and_nothing_kept(served, tmp_path):
    dest = tmp_path / "w.bin"
    wrong = "0" * 64
    with pytest.raises(ModelError) as info:
        fetch(served.url("w.bin"), dest, expected_sha256=wrong)
    message = str(info.value)
    assert served.url("w.bin") in message and wrong in message and sha256(DATA) in message
    assert not dest.exists() and not dest.with_name("w.bin.part").exists()


def test_wrong_publisher_md5_is_rejected(served, tmp_path):
    with pytest.raises(ModelError, match="expected md5 0{32}, got " + hashlib.md5(DATA).hexdigest()):
        fetch(served.url("w.bin"), tmp_path / "w.bin", publisher_hash=("md5", "0" * 32))
    assert not (tmp_path / "w.bin").exists()


def test_wrong_size_is_rejected(served, tmp_path):
    with pytest.raises(ModelError, match=f"expected {len(DATA) + 1} bytes, got {len(DATA)}"):
        fetch(served.url("w.bin"), tmp_path / "w.bin", expected_size=len(DATA) + 1)


def test_connection_cut_mid_file_is_resumed_with_range(served, tmp_path):
    served.state.cut_after["w.bin"] = 12_345
    dest = tmp_path / "w.bin"
    result = fetch(served.url("w.bin"), dest, expected_sha256=sha256(DATA), retries=1)
    assert served.requests == [("w.bin", None), ("w.bin", "bytes=12345-")]
    assert result.requests == 2 and dest.read_bytes() == DATA


def test_interrupted_download_keeps_part_and_next_call_resumes(served, tmp_path):
    served.state.cut_after["w.bin"] = 20_000
    dest = tmp_path / "w.bin"
    with pytest.raises(ModelError, match="interrupted .*20000 bytes kept"):
        fetch(served.url("w.bin"), dest, expected_sha256=sha256(DATA), retries=0)
    part = dest.with_name("w.bin.part")
    assert part.read_bytes() == DATA[:20_000] and not dest.exists()
    fetch(served.url("w.bin"), dest, expected_sha256=sha256(DATA), retries=0)
    assert served.requests[-1] == ("w.bin", "bytes=20000-")
    assert dest.read_bytes() == DATA and not part.exists()


def test_server_ignoring_range_restarts_from_zero(served, tmp_path):
    served.state.cut_after["w.bin"] = 9_000
    served.state.ignore_range.add("w.bin")
    dest = tmp_path / "w.bin"
    fetch(served.url("w.bin"), dest, expected_sha256=sha256(DATA), retries=1)
    assert served.requests[1] == ("w.bin", "bytes=9000-")  # asked, got 200 with the whole file
    assert dest.read_bytes() == DATA


def test_complete_part_file_is_finished_without_new_bytes(served, tmp_path):
    dest = tmp_path / "w.bin"
    dest.with_name("w.bin.part").write_bytes(DATA)  # a previous run got everything, then died
    fetch(served.url("w.bin"), dest, expected_sha256=sha256(DATA))
    assert served.requests == [("w.bin", f"bytes={len(DATA)}-")]  # answered 416: nothing left
    assert dest.read_bytes() == DATA


def test_404_is_a_clear_error(served, tmp_path):
    url = served.url("missing.bin")
    with pytest.raises(ModelError, match=f"HTTP 404 .* for {url}"):
        fetch(url, tmp_path / "missing.bin")
    assert not (tmp_path / "missing.bin.part").exists()


def test_offline_mode_never_touches_the_network(served, tmp_path, monkeypatch):
    monkeypatch.setenv("VOLSEG_OFFLINE", "1")
    with pytest.raises(ModelError) as info:
        fetch(served.url("w.bin"), tmp_path / "w.bin")
    assert "VOLSEG_OFFLINE=1" in str(info.value) and "volseg models install" in info.value.hint
    assert served.requests == []


def test_only_http_urls(tmp_path):
    with pytest.raises(ModelError, match="only http"):
        fetch("file:///etc/passwd", tmp_path / "x")


def test_progress_reports_bytes_up_to_the_total(served, tmp_path):
    seen = []
    fetch(served.url("w.bin"), tmp_path / "w.bin", progress=lambda s, d, t: seen.append((s, d, t)), stage="w")
    assert seen[-1] == ("w", len(DATA), len(DATA))
    assert [d for _, d, _ in seen] == sorted(d for _, d, _ in seen)
