"""A gzip file inflated straight into a caller's buffer, with every member's CRC-32 and length
checked by zlib itself on the same pass.

Python's :mod:`gzip` inflates raw deflate through a buffered reader and computes the CRC-32 in a
second pass over each piece; here zlib reads the gzip framing (``wbits=31``), checks the trailer
while it inflates, and each piece is copied once, into the caller's buffer. The file is accepted
and refused as :mod:`gzip` does: several members in a row, zero padding after a member; anything
else after a member is "not a gzipped file"; a stream that stops before its end marker is an
``EOFError``.
"""
from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import BinaryIO

GZIP_MAGIC = b"\x1f\x8b"
_GZIP_WBITS = 16 + zlib.MAX_WBITS
_IN_BYTES = 1 << 20  # compressed bytes per read
_OUT_BYTES = 1 << 23  # inflated bytes per piece at most (bounds the temporaries)
ENDED_EARLY = "Compressed file ended before the end-of-stream marker was reached"


class NotGzipError(ValueError):
    """What follows a member is neither padding nor another gzip member."""


def inflated(fh: BinaryIO) -> Iterator[bytes]:
    """The inflated bytes of the gzip file ``fh``, in pieces, member after member; zlib raises
    ``zlib.error`` ("incorrect data check" / "incorrect length check") on a bad trailer."""
    d = zlib.decompressobj(_GZIP_WBITS)
    data = b""
    while True:
        piece = d.decompress(data, _OUT_BYTES)
        data = d.unconsumed_tail
        if piece:
            yield piece
        if d.eof:
            following = _next_member(fh, d.unused_data)
            if following is None:
                return
            data = following
            d = zlib.decompressobj(_GZIP_WBITS)
        elif not data and not piece:  # zlib wants more input
            data = fh.read(_IN_BYTES)
            if not data:
                raise EOFError(ENDED_EARLY)


def _next_member(fh: BinaryIO, rest: bytes) -> bytes | None:
    """The start of the next member after ``rest`` (zero padding skipped), None at the file's end."""
    rest = rest.lstrip(b"\x00")
    while not rest:
        rest = fh.read(_IN_BYTES)
        if not rest:
            return None
        rest = rest.lstrip(b"\x00")
    if len(rest) < 2:
        rest += fh.read(1)
    if rest[:2] != GZIP_MAGIC:
        raise NotGzipError(f"Not a gzipped file ({rest[:2]!r})")
    return rest


def inflate_into(fh: BinaryIO, offset: int, out: memoryview) -> int:
    """Skip ``offset`` inflated bytes, fill ``out`` with the next ones, then inflate on to the end
    (so that every trailer is checked). Returns how many bytes of ``out`` were filled (fewer
    than its length when the data ends early)."""
    done, size = 0, len(out)
    for piece in inflated(fh):
        view = memoryview(piece)
        if offset:
            skip = min(offset, len(view))
            offset -= skip
            view = view[skip:]
        if done < size and len(view):
            n = min(size - done, len(view))
            out[done:done + n] = view[:n]
            done += n
    if offset:
        raise EOFError("file ends inside the header")
    return done
