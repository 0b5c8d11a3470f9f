"""Lossy and 12-bit JPEG DICOM series: lossy data are flagged; JPEG Extended without its decoder is
refused as unsupported (exit 3), never as corrupt."""
from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.encaps import encapsulate
from pydicom.uid import JPEG2000, JPEGExtended12Bit

from tests.factories.dicom_series import write_series
from volseg.errors import InputError
from volseg.io import dicom_pixels, read_image

LOSSY_J2K = "pixel data are lossy-compressed (JPEG 2000 lossy): HU statistics come from lossy data"


def _phantom() -> np.ndarray:
    array = np.full((64, 48, 4), -1000, dtype=np.int16)  # big enough for openjpeg's resolutions
    array[12:52, 8:40] = 40
    array[24:36, 16:28] = 700
    return array


def _rewrite(series, change) -> None:
    for path in series.files:
        ds = pydicom.dcmread(path)
        change(ds)
        ds.save_as(path, enforce_file_format=True)


def test_lossy_jpeg2000_series_is_read_and_flagged(tmp_path):
    pytest.importorskip("openjpeg", reason="pylibjpeg-openjpeg encodes JPEG 2000")
    series = write_series(tmp_path / "j2k", _phantom(), shuffle_files=False)
    _rewrite(series, lambda ds: ds.compress(JPEG2000, j2k_cr=[20], encoding_plugin="pylibjpeg"))
    loaded = read_image(tmp_path / "j2k")
    assert LOSSY_J2K in loaded.source.warnings
    assert np.abs(np.asarray(loaded.volume.array, float) - _phantom()).mean() < 200


def test_lossless_series_is_not_flagged(tmp_path):
    write_series(tmp_path / "raw", _phantom())
    loaded = read_image(tmp_path / "raw")
    assert not [w for w in loaded.source.warnings if "lossy" in w]
    np.testing.assert_array_equal(loaded.volume.array, _phantom())


def test_lossy_image_compression_header_is_flagged(tmp_path):
    overrides = {k: {"LossyImageCompression": "01", "LossyImageCompressionMethod": "ISO_10918_1"}
                 for k in range(4)}
    write_series(tmp_path / "s", _phantom(), slice_overrides=overrides)
    warnings = read_image(tmp_path / "s").source.warnings
    assert ("pixel data are lossy-compressed (LossyImageCompression 01, ISO_10918_1): "
            "HU statistics come from lossy data") in warnings


def _as_jpeg_extended(ds) -> None:
    """A 12-bit JPEG Extended file header around a stream no installed plugin decodes."""
    ds.BitsStored, ds.HighBit = 12, 11
    ds.PixelData = encapsulate([b"\xff\xd8\xff\xc1" + bytes(64) + b"\xff\xd9"])
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = JPEGExtended12Bit


def test_jpeg_extended_without_libjpeg_is_unsupported_not_corrupt(tmp_path, monkeypatch):
    monkeypatch.setattr(dicom_pixels, "has_libjpeg", lambda: False)
    series = write_series(tmp_path / "jpx", _phantom())
    _rewrite(series, _as_jpeg_extended)
    with pytest.raises(InputError, match=r"unsupported transfer syntax JPEG Extended \(12-bit lossy\): "
                                         r"install volseg\[jpeg-extended\]") as info:
        read_image(tmp_path / "jpx")
    assert info.value.exit_code == 3
    assert "corrupt" not in str(info.value)


def test_jpeg_extended_with_libjpeg_and_a_bad_stream_is_corrupt(tmp_path, monkeypatch):
    monkeypatch.setattr(dicom_pixels, "has_libjpeg", lambda: True)
    series = write_series(tmp_path / "jpx", _phantom())
    _rewrite(series, _as_jpeg_extended)
    with pytest.raises(InputError, match="truncated or corrupt|no decoder installed"):
        read_image(tmp_path / "jpx")


def test_lossy_syntaxes_are_named():
    assert dicom_pixels.LOSSY_SYNTAXES["1.2.840.10008.1.2.4.91"] == "JPEG 2000 lossy"
    assert dicom_pixels.lossy_warning("JPEG 2000 lossy") == LOSSY_J2K
