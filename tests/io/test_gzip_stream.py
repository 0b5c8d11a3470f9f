"""The gzip reader of NIfTI voxel blocks: same bytes as Python's gzip, every trailer checked."""
from __future__ import annotations

import gzip
import io
import zlib

import numpy as np
import pytest

from volseg.errors import InputError
from volseg.io import gzip_stream
from volseg.io.gzip_stream import NotGzipError, inflate_into, inflated
from volseg.io.nifti import read_gzip_block


def _payload(n: int = 3_000_000) -> bytes:
    rng = np.random.default_rng(1)
    return (rng.integers(0, 6, n, dtype=np.uint8) * 40).tobytes()  # compressible, not trivially


def _fill(raw: bytes, offset: int, size: int) -> tuple[bytes, int]:
    out = bytearray(size)
    done = inflate_into(io.BytesIO(raw), offset, memoryview(out))
    return bytes(out), done


def test_same_bytes_as_gzip_in_small_pieces(monkeypatch):
    monkeypatch.setattr(gzip_stream, "_IN_BYTES", 1000)
    monkeypatch.setattr(gzip_stream, "_OUT_BYTES", 777)  # many pieces, split anywhere
    data = _payload(200_000)
    raw = gzip.compress(data, compresslevel=6)
    assert b"".join(inflated(io.BytesIO(raw))) == gzip.decompress(raw) == data
    out, done = _fill(raw, 352, 1000)
    assert done == 1000 and out == data[352:1352]


def test_members_and_zero_padding_as_gzip_reads_them():
    data = _payload(100_000)
    raw = gzip.compress(data[:40_000]) + b"\x00" * 5 + gzip.compress(data[40_000:]) + b"\x00" * 3
    assert b"".join(inflated(io.BytesIO(raw))) == gzip.decompress(raw) == data


def test_garbage_after_a_member_is_refused():
    raw = gzip.compress(b"abc" * 1000) + b"junk"
    with pytest.raises(gzip.BadGzipFile):
        gzip.decompress(raw)
    with pytest.raises(NotGzipError, match="Not a gzipped file"):
        list(inflated(io.BytesIO(raw)))


def test_truncated_stream_ends_early():
    raw = gzip.compress(_payload(100_000))
    with pytest.raises(EOFError, match="end-of-stream marker"):
        list(inflated(io.BytesIO(raw[: len(raw) // 2])))
    with pytest.raises(EOFError, match="inside the header"):
        _fill(gzip.compress(b"x" * 100), 352, 10)


def test_short_stream_fills_part_of_the_buffer():
    out, done = _fill(gzip.compress(b"y" * 500), 352, 1000)
    assert done == 148 and out[:148] == b"y" * 148


def test_trailer_checked_by_zlib(tmp_path):
    data = _payload(50_000)
    raw = bytearray(gzip.compress(data))
    crc = raw.copy()
    crc[-8] ^= 0xFF  # the CRC-32
    length = raw.copy()
    length[-4] ^= 0x01  # ISIZE
    with pytest.raises(zlib.error, match="incorrect data check"):
        list(inflated(io.BytesIO(bytes(crc))))
    with pytest.raises(zlib.error, match="incorrect length check"):
        list(inflated(io.BytesIO(bytes(length))))
    for name, blob, message in (("crc.nii.gz", crc, "gzip CRC mismatch"), ("len.nii.gz", length, "gzip length mismatch")):
        path = tmp_path / name
        path.write_bytes(bytes(blob))
        with pytest.raises(InputError, match=message):
            read_gzip_block(path, 0, memoryview(bytearray(100)))
    good = tmp_path / "good.nii.gz"
    good.write_bytes(bytes(raw))
    out = bytearray(1000)
    read_gzip_block(good, 10, memoryview(out))
    assert bytes(out) == data[10:1010]
    with pytest.raises(InputError, match="truncated or corrupt voxel data: 40000 of 60000 bytes"):
        read_gzip_block(good, 10_000, memoryview(bytearray(60_000)))
