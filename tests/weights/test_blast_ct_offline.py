"""The real BLAST-CT v1 weights (../shared/data/blast-ct-v1) through the CLI: offline install,
verification, a tampered copy, export → air-gapped install, and a mirrored download with a cut."""
from __future__ import annotations

import json
import shutil

import pytest

from volseg.cli.main import main

EXPECTED = {f"model_{k}.pt" for k in range(1, 13)}


@pytest.fixture
def blast_dir(shared_data):
    return shared_data / "blast-ct-v1"


@pytest.fixture
def sums(blast_dir) -> dict[str, str]:
    lines = (blast_dir / "SHA256SUMS").read_text().splitlines()
    return {name: digest for digest, name in (line.split() for line in lines)}


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_install_shared_folder_offline_then_verify_all_12(volseg_home, blast_dir, monkeypatch, capsys):
    monkeypatch.setenv("VOLSEG_OFFLINE", "1")
    monkeypatch.setenv("COLUMNS", "200")
    code, _, err = run(capsys, "models", "install", str(blast_dir))
    assert code == 0, err
    assert "blast-ct 1.0.0: installed 12 verified file(s)" in err
    installed = volseg_home / "models" / "blast-ct" / "1.0.0"
    assert {p.name for p in installed.glob("*.pt")} == EXPECTED
    code, out, err = run(capsys, "models", "verify")
    assert code == 0, err
    assert "blast-ct" in out and "│ 12    │ ok" in out
    manifest = json.loads((installed / "volseg-model.json").read_text())
    assert {f["name"]: f["pinned_by"] for f in manifest["files"]} == {n: "catalogue" for n in EXPECTED}


def test_installed_hashes_are_the_published_ones(volseg_home, blast_dir, sums, capsys):
    assert run(capsys, "models", "install", str(blast_dir))[0] == 0
    from volseg.segmenters.weights import verify

    report = verify("blast-ct")
    assert report.ok and {c.name: c.actual for c in report.checks} == {n: sums[n] for n in EXPECTED}


def test_tampered_copy_is_rejected_and_nothing_installed(volseg_home, blast_dir, sums, tmp_path, capsys):
    copy = tmp_path / "blast-copy"
    shutil.copytree(blast_dir, copy)
    target = copy / "model_5.pt"
    target.chmod(0o644)
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    import hashlib

    code, _, err = run(capsys, "models", "install", str(copy))
    assert code == 7
    assert "model_5.pt of blast-ct 1.0.0 does not match" in err
    assert f"expected sha256 {sums['model_5.pt']}, got {hashlib.sha256(bytes(data)).hexdigest()}" in err
    assert not (volseg_home / "models" / "blast-ct" / "1.0.0").exists()


def test_verify_reports_a_file_changed_after_install(volseg_home, blast_dir, capsys):
    assert run(capsys, "models", "install", str(blast_dir))[0] == 0
    installed = volseg_home / "models" / "blast-ct" / "1.0.0" / "model_3.pt"
    installed.chmod(0o644)
    data = bytearray(installed.read_bytes())
    data[0] ^= 0xFF
    installed.write_bytes(bytes(data))
    code, out, _ = run(capsys, "models", "verify", "blast-ct")
    assert code == 7 and "FAILED: model_3.pt" in out


def test_export_then_air_gapped_install(volseg_home, blast_dir, tmp_path, monkeypatch, capsys):
    assert run(capsys, "models", "install", str(blast_dir))[0] == 0
    bundle = tmp_path / "blast.zip"
    code, _, err = run(capsys, "models", "export", "blast-ct", "-o", str(bundle))
    assert code == 0 and "volseg models install blast.zip" in err
    monkeypatch.setenv("VOLSEG_HOME", str(tmp_path / "cluster"))
    monkeypatch.setenv("VOLSEG_OFFLINE", "1")
    code, _, err = run(capsys, "models", "install", str(bundle))
    assert code == 0, err
    assert run(capsys, "models", "verify", "blast-ct")[0] == 0


def test_lock_exports_every_installed_hash(volseg_home, blast_dir, sums, capsys):
    assert run(capsys, "models", "install", str(blast_dir))[0] == 0
    code, out, _ = run(capsys, "models", "lock")
    assert code == 0
    files = json.loads(out)["models"]["blast-ct"]["files"]
    assert {n: f["sha256"] for n, f in files.items()} == {n: sums[n] for n in EXPECTED}


def test_download_through_a_mirror_resumes_and_verifies(volseg_home, blast_dir, server, monkeypatch, capsys):
    folder = server.state.root / "blast-ct" / "1.0.0"
    folder.mkdir(parents=True)
    for name in EXPECTED:
        shutil.copyfile(blast_dir / name, folder / name)
    server.state.cut_after["blast-ct/1.0.0/model_7.pt"] = 1_000_000
    monkeypatch.setenv("VOLSEG_MIRROR", server.base_url)
    code, _, err = run(capsys, "models", "download", "blast-ct")
    assert code == 0, err
    assert ("blast-ct/1.0.0/model_7.pt", "bytes=1000000-") in server.requests
    assert run(capsys, "models", "verify", "blast-ct")[0] == 0
