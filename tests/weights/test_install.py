"""Installing as one verified transaction: downloads through a mirror, offline folders and bundles,
the lock file, --require-lock, verification, and what backends call (require_installed)."""
from __future__ import annotations

import io
import json
import zipfile

import pytest

from tests.weights.factories import TEST_ENTRY_FILES, make_entry, payload, sha256
from volseg.errors import InputError, ModelError
from volseg.segmenters.weights import (
    download_model,
    export_bundle,
    install_from_source,
    installed_path,
    read_lock,
    require_installed,
    verify,
)
from volseg.segmenters.weights.cache import MANIFEST_NAME

CKPT = "Dataset999_Test/nnUNetTrainer__nnUNetPlans__3d_fullres/fold_0/checkpoint_final.pth"


def test_download_installs_verified_files_and_extracts_archives(volseg_home, catalogue, mirror, server):
    catalogue(make_entry(pin=True))
    mirror("testnet")
    result = download_model("testnet")
    folder = volseg_home / "models" / "testnet" / "1.0.0"
    assert result.path == folder and not result.already_installed
    assert (folder / "weights_a.pt").read_bytes() == TEST_ENTRY_FILES["weights_a.pt"]
    assert (folder / CKPT).read_bytes() == payload(7, 20_000)
    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    assert manifest["extracted"][CKPT] == sha256(payload(7, 20_000))
    assert [f["pinned_by"] for f in manifest["files"]] == ["catalogue", "catalogue"]
    assert require_installed("testnet") == folder and installed_path("testnet") == folder
    assert verify("testnet").ok and len(verify("testnet").checks) == 2 + 3
    assert not (volseg_home / "downloads" / "testnet").exists()  # the download cache is cleared
    assert sorted(p for p, _ in server.requests) == ["testnet/1.0.0/Dataset999_Test.zip",
                                                     "testnet/1.0.0/weights_a.pt"]
    assert download_model("testnet").already_installed and len(server.requests) == 2  # no refetch


def test_wrong_hash_installs_nothing(volseg_home, catalogue, mirror):
    catalogue(make_entry(pin=True))
    mirror("testnet", {**TEST_ENTRY_FILES, "weights_a.pt": payload(99, 30_000)})  # not what is pinned
    expected, got = sha256(TEST_ENTRY_FILES["weights_a.pt"]), sha256(payload(99, 30_000))
    with pytest.raises(ModelError, match=f"failed verification: expected sha256 {expected}, got {got}"):
        download_model("testnet")
    models = volseg_home / "models" / "testnet"
    assert not models.exists() or not any(models.iterdir())
    with pytest.raises(ModelError, match="not installed") as info:
        require_installed("testnet")
    assert "volseg models download testnet" in info.value.hint


def test_unpinned_files_are_recorded_in_the_lock_and_then_enforced(volseg_home, catalogue, mirror):
    catalogue(make_entry(pin=False))
    mirror("testnet")
    result = download_model("testnet")
    assert set(result.recorded) == {"weights_a.pt", "Dataset999_Test.zip"}
    lock = read_lock()
    assert lock.sha256("testnet", "1.0.0", "weights_a.pt") == sha256(TEST_ENTRY_FILES["weights_a.pt"])
    mirror("testnet", {**TEST_ENTRY_FILES, "weights_a.pt": payload(5, 30_000)})  # upstream file changes
    with pytest.raises(ModelError, match="expected sha256 " + sha256(TEST_ENTRY_FILES["weights_a.pt"])):
        download_model("testnet", force=True)
    assert verify("testnet").ok  # the first installation is untouched


def test_require_lock_refuses_unlocked_files_before_downloading(volseg_home, catalogue, mirror, server):
    catalogue(make_entry(pin=False))
    mirror("testnet")
    with pytest.raises(ModelError, match="--require-lock: testnet 1.0.0 weights_a.pt .* not in the lock"):
        download_model("testnet", require_lock=True)
    assert server.requests == []


def test_require_lock_accepts_an_exported_lock(volseg_home, catalogue, mirror, tmp_path, monkeypatch):
    from volseg.api_models import export_lock

    catalogue(make_entry(pin=False))
    mirror("testnet")
    download_model("testnet")
    exported = tmp_path / "cluster.lock.json"
    export_lock(exported)
    monkeypatch.setenv("VOLSEG_HOME", str(tmp_path / "cluster-home"))  # a fresh machine with the lock
    result = download_model("testnet", require_lock=True, lock_path=exported)
    assert result.path.is_dir() and verify("testnet").ok


def test_offline_download_names_the_install_command(volseg_home, catalogue, mirror, server, monkeypatch):
    catalogue(make_entry(pin=True))
    mirror("testnet")
    monkeypatch.setenv("VOLSEG_OFFLINE", "1")
    with pytest.raises(ModelError, match="offline mode") as info:
        download_model("testnet")
    assert "volseg models install" in info.value.hint and server.requests == []
    with pytest.raises(ModelError) as info:
        require_installed("testnet")
    assert "volseg models install testnet.zip" in info.value.hint


def test_install_from_folder_matches_by_name_and_hash(volseg_home, catalogue, tmp_path):
    catalogue(make_entry(pin=True))
    folder = tmp_path / "weights"
    folder.mkdir()
    for name, data in TEST_ENTRY_FILES.items():
        (folder / name).write_bytes(data)
    (folder / "README.txt").write_text("ignored")
    [result] = install_from_source(folder)
    assert result.name == "testnet" and verify("testnet").ok


def test_install_from_tampered_folder_is_rejected(volseg_home, catalogue, tmp_path):
    catalogue(make_entry(pin=True))
    folder = tmp_path / "weights"
    folder.mkdir()
    for name, data in TEST_ENTRY_FILES.items():
        (folder / name).write_bytes(data)
    tampered = bytearray(TEST_ENTRY_FILES["weights_a.pt"])
    tampered[100] ^= 0xFF
    (folder / "weights_a.pt").write_bytes(bytes(tampered))
    expected, got = sha256(TEST_ENTRY_FILES["weights_a.pt"]), sha256(bytes(tampered))
    with pytest.raises(ModelError, match=f"weights_a.pt of testnet 1.0.0 does not match: "
                                         f"expected sha256 {expected}, got {got}"):
        install_from_source(folder)
    assert installed_path("testnet") is None


def test_unpinned_folder_needs_an_explicit_model(volseg_home, catalogue, tmp_path):
    catalogue(make_entry(pin=False))
    folder = tmp_path / "weights"
    folder.mkdir()
    for name, data in TEST_ENTRY_FILES.items():
        (folder / name).write_bytes(data)
    with pytest.raises(ModelError, match="no catalogued model is complete") as info:
        install_from_source(folder)
    assert "--model testnet" in info.value.hint
    [result] = install_from_source(folder, model="testnet")
    assert set(result.recorded) == {"weights_a.pt", "Dataset999_Test.zip"}


def test_incomplete_folder_names_missing_files(volseg_home, catalogue, tmp_path):
    catalogue(make_entry(pin=True))
    folder = tmp_path / "weights"
    folder.mkdir()
    (folder / "weights_a.pt").write_bytes(TEST_ENTRY_FILES["weights_a.pt"])
    with pytest.raises(ModelError, match="lacks 1 file\\(s\\) of testnet: Dataset999_Test.zip"):
        install_from_source(folder, model="testnet")
    with pytest.raises(InputError, match="no such file"):
        install_from_source(tmp_path / "nowhere")


def test_archive_with_escaping_member_installs_nothing(volseg_home, catalogue, tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("../../../escaped.txt", b"pwned")
    evil = buf.getvalue()
    entry = make_entry(pin=True)
    entry["weights"][1].update(sha256=sha256(evil), members=[])
    catalogue(entry)
    folder = tmp_path / "weights"
    folder.mkdir()
    (folder / "weights_a.pt").write_bytes(TEST_ENTRY_FILES["weights_a.pt"])
    (folder / "Dataset999_Test.zip").write_bytes(evil)
    with pytest.raises(ModelError, match="escapes the target"):
        install_from_source(folder)
    assert installed_path("testnet") is None
    assert not list(tmp_path.rglob("escaped.txt"))


def test_missing_archive_member_installs_nothing(volseg_home, catalogue, tmp_path):
    entry = make_entry(pin=True)
    entry["weights"][1]["members"] = ["Dataset999_Test/not_there.json"]
    catalogue(entry)
    folder = tmp_path / "weights"
    folder.mkdir()
    for name, data in TEST_ENTRY_FILES.items():
        (folder / name).write_bytes(data)
    with pytest.raises(ModelError, match="lacks expected member"):
        install_from_source(folder)
    assert installed_path("testnet") is None


def test_export_bundle_then_install_elsewhere(volseg_home, catalogue, mirror, tmp_path, monkeypatch):
    catalogue(make_entry(pin=False))
    mirror("testnet")
    download_model("testnet")
    bundle = export_bundle(["testnet"], tmp_path / "bundle.zip")
    names = zipfile.ZipFile(bundle).namelist()
    assert sorted(names) == ["models/testnet/1.0.0/Dataset999_Test.zip", "models/testnet/1.0.0/weights_a.pt",
                             "volseg-bundle.json"]
    monkeypatch.setenv("VOLSEG_HOME", str(tmp_path / "offline-home"))
    monkeypatch.setenv("VOLSEG_OFFLINE", "1")
    [result] = install_from_source(bundle)
    assert result.name == "testnet" and verify("testnet").ok
    assert read_lock().sha256("testnet", "1.0.0", "weights_a.pt") == sha256(TEST_ENTRY_FILES["weights_a.pt"])


def test_tampered_bundle_is_rejected(volseg_home, catalogue, mirror, tmp_path, monkeypatch):
    catalogue(make_entry(pin=True))
    mirror("testnet")
    download_model("testnet")
    bundle = export_bundle(["testnet"], tmp_path / "bundle.zip")
    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(bundle) as src, zipfile.ZipFile(tampered, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith("weights_a.pt"):
                data = data[:-1] + bytes([data[-1] ^ 1])
            dst.writestr(info, data)
    monkeypatch.setenv("VOLSEG_HOME", str(tmp_path / "offline-home"))
    with pytest.raises(ModelError, match="weights_a.pt of testnet 1.0.0 does not match"):
        install_from_source(tampered)
    assert installed_path("testnet") is None


def test_verify_detects_changed_and_missing_files(volseg_home, catalogue, mirror):
    catalogue(make_entry(pin=True))
    mirror("testnet")
    folder = download_model("testnet").path
    (folder / CKPT).write_bytes(b"changed")
    report = verify("testnet")
    assert not report.ok and report.problems == [f"{CKPT}: expected sha256 {sha256(payload(7, 20_000))}, "
                                                 f"got {sha256(b'changed')}"]
    original = (folder / "weights_a.pt").read_bytes()
    (folder / "weights_a.pt").write_bytes(bytes([original[0] ^ 1]) + original[1:])  # same size, new bytes
    with pytest.raises(ModelError, match="does not match its install record") as info:  # load re-hashes
        require_installed("testnet")
    assert info.value.path == str(folder / "weights_a.pt") and info.value.exit_code == 7
    with pytest.raises(ModelError, match="fails verification"):  # ... and so does export
        export_bundle(["testnet"], folder.parent / "x.zip")
    (folder / "weights_a.pt").unlink()
    assert "weights_a.pt: missing" in verify("testnet").problems
    with pytest.raises(ModelError, match="incomplete"):
        require_installed("testnet")


def test_reinstall_replaces_atomically(volseg_home, catalogue, mirror):
    catalogue(make_entry(pin=True))
    mirror("testnet")
    first = download_model("testnet").path
    (first / "stray.txt").write_text("left from before")
    download_model("testnet", force=True)
    assert not (first / "stray.txt").exists() and verify("testnet").ok
    assert [p.name for p in first.parent.iterdir()] == ["1.0.0"]  # no staging or old folders left


def test_damaged_installation_is_downloaded_again(volseg_home, catalogue, mirror):
    catalogue(make_entry(pin=True))
    mirror("testnet")
    folder = download_model("testnet").path
    (folder / "weights_a.pt").unlink()
    result = download_model("testnet")
    assert not result.already_installed and verify("testnet").ok


def test_require_lock_applies_to_offline_installs(volseg_home, catalogue, tmp_path):
    catalogue(make_entry(pin=True))
    folder = tmp_path / "weights"
    folder.mkdir()
    for name, data in TEST_ENTRY_FILES.items():
        (folder / name).write_bytes(data)
    lock = tmp_path / "empty.lock.json"
    lock.write_text(json.dumps({"schema_version": "1.0.0", "models": {}}))
    with pytest.raises(ModelError, match="--require-lock: testnet 1.0.0 weights_a.pt"):
        install_from_source(folder, require_lock=True, lock_path=lock)
    assert installed_path("testnet") is None
    from volseg.segmenters.weights.lock import LockFile, write_lock

    pins = LockFile()
    for name, data in TEST_ENTRY_FILES.items():
        pins.record("testnet", "1.0.0", name, sha256=sha256(data), size_bytes=len(data), url=None)
    write_lock(pins, lock)
    [result] = install_from_source(folder, require_lock=True, lock_path=lock)
    assert result.name == "testnet" and verify("testnet").ok
