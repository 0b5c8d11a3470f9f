"""Class 1, integrity: a damaged file is an error naming it, never a silently wrong number."""
from __future__ import annotations

import numpy as np
import pytest

from tests.faults.makers import flip_bit, nifti_bytes, ramp, stored_gzip, write
from volseg.cli.main import main
from volseg.errors import InputError
from volseg.io import read_image

VOXEL_BYTE = 10 + 5 + 352 + 100  # gzip header + stored-block header + NIfTI header + 100 data bytes


def test_intact_stored_gzip_reads_back_exactly(tmp_path):
    path = write(tmp_path / "ok.nii.gz", stored_gzip(nifti_bytes(ramp())))
    np.testing.assert_array_equal(read_image(path).volume.array, ramp())


def test_one_flipped_voxel_bit_is_a_crc_error_exit_3(tmp_path, capsys):
    blob = stored_gzip(nifti_bytes(ramp()))
    path = write(tmp_path / "flipped.nii.gz", flip_bit(blob, VOXEL_BYTE, bit=6))
    with pytest.raises(InputError, match="gzip CRC mismatch: file corrupt") as info:
        read_image(path)
    assert info.value.path == str(path) and info.value.exit_code == 3
    assert main(["info", str(path)]) == 3
    err = capsys.readouterr().err
    assert "flipped.nii.gz: gzip CRC mismatch: file corrupt" in err and "Traceback" not in err


def test_wrong_gzip_length_is_an_error(tmp_path):
    blob = stored_gzip(nifti_bytes(ramp()))
    path = write(tmp_path / "len.nii.gz", flip_bit(blob, len(blob) - 4))  # ISIZE, the trailer's last field
    with pytest.raises(InputError, match="gzip length mismatch: file corrupt"):
        read_image(path)


def test_tampered_installed_weights_fail_at_load_exit_7(tmp_path, monkeypatch):
    from tests.weights.factories import TEST_ENTRY_FILES, make_entry
    from volseg.segmenters import catalogue as cat
    from volseg.segmenters.weights import bundle, install_from_source, require_installed

    monkeypatch.setenv("VOLSEG_HOME", str(tmp_path / "home"))
    entries = {"testnet": cat.ModelEntry.model_validate(make_entry(pin=True))}
    monkeypatch.setattr(cat, "load_catalogue", lambda: entries)
    monkeypatch.setattr(bundle, "load_catalogue", lambda: entries)
    src = tmp_path / "src"
    src.mkdir()
    for name, data in TEST_ENTRY_FILES.items():
        (src / name).write_bytes(data)
    folder = install_from_source(src, model="testnet")[0].path
    assert require_installed("testnet") == folder
    weights = folder / "weights_a.pt"
    weights.write_bytes(flip_bit(weights.read_bytes(), 10))  # same size, one bit different
    with pytest.raises(Exception) as info:
        require_installed("testnet")
    assert info.value.exit_code == 7 and info.value.path == str(weights)
    assert "does not match its install record" in info.value.message
    data = bytearray(weights.read_bytes())
    data[-200:] = bytes(200)  # last 200 bytes zeroed, same size
    weights.write_bytes(bytes(data))
    with pytest.raises(Exception, match="does not match its install record"):
        require_installed("testnet")


def test_segment_with_tampered_blast_ct_weights_exits_7_at_load(shared_data, tmp_path, monkeypatch, capsys):
    """The issue's case: real weights installed, one byte flipped at the same size; segment must stop
    at load (before predicting), naming the file."""
    weights, image = shared_data / "blast-ct-v1", shared_data / "head-ct" / "cranium_ct_0051.nii.gz"
    if not weights.is_dir() or not image.is_file():
        pytest.skip("blast-ct weights or head CT not in the shared data")
    monkeypatch.setenv("VOLSEG_HOME", str(tmp_path / "home"))
    assert main(["models", "install", str(weights)]) == 0
    tampered = tmp_path / "home" / "models" / "blast-ct" / "1.0.0" / "model_7.pt"
    tampered.chmod(0o644)
    tampered.write_bytes(flip_bit(tampered.read_bytes(), tampered.stat().st_size // 2, bit=3))
    assert main(["segment", str(image), "--model", "blast-ct", "-o", str(tmp_path / "out")]) == 7
    err = capsys.readouterr().err
    assert f"{tampered}: installed weight file does not match its install record" in err
    assert not (tmp_path / "out" / "report.json").exists()
