"""Decoding a DICOM file's pixel data, with one-line errors that name the file (and the package to
install when a compressed transfer syntax has no decoder)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from volseg.errors import InputError

DECODER_HINTS = {
    **dict.fromkeys(("1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91", "1.2.840.10008.1.2.4.201",
                     "1.2.840.10008.1.2.4.202", "1.2.840.10008.1.2.4.203"),
                    "pip install pylibjpeg pylibjpeg-openjpeg (or python-gdcm)"),
    **dict.fromkeys(("1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.57",
                     "1.2.840.10008.1.2.4.70"), "pip install pylibjpeg pylibjpeg-libjpeg (or python-gdcm)"),
    **dict.fromkeys(("1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81"),
                    "pip install pyjpegls (or pylibjpeg pylibjpeg-libjpeg)"),
    "1.2.840.10008.1.2.5": "pip install pylibjpeg pylibjpeg-rle",
}

JPEG_EXTENDED = "1.2.840.10008.1.2.4.51"
#: lossy transfer syntaxes and how the report names them
LOSSY_SYNTAXES = {
    "1.2.840.10008.1.2.4.50": "JPEG baseline", JPEG_EXTENDED: "JPEG Extended (12-bit lossy)",
    "1.2.840.10008.1.2.4.81": "JPEG-LS near-lossless", "1.2.840.10008.1.2.4.91": "JPEG 2000 lossy",
    "1.2.840.10008.1.2.4.203": "HTJ2K lossy",
}


def lossy_compression(ds) -> str | None:
    """How the pixel data were lossy-compressed (transfer syntax or LossyImageCompression "01"), else None."""
    meta = getattr(ds, "file_meta", None)
    ts = str((meta.get("TransferSyntaxUID") if meta else None) or "")
    if ts in LOSSY_SYNTAXES:
        return LOSSY_SYNTAXES[ts]
    if str(ds.get("LossyImageCompression") or "").strip() == "01":
        method = " ".join(str(ds.get("LossyImageCompressionMethod") or "").split())
        return f"LossyImageCompression 01{', ' + method if method else ''}"
    return None


def lossy_warning(method: str) -> str:
    return f"pixel data are lossy-compressed ({method}): HU statistics come from lossy data"


def has_libjpeg() -> bool:
    """Whether pylibjpeg-libjpeg (GPL-3, extra ``jpeg-extended``) is installed: it decodes 12-bit JPEG."""
    import importlib.util

    return importlib.util.find_spec("libjpeg") is not None


def _jpeg_extended_refused(ts, path: Path, folder: Path) -> InputError | None:
    """JPEG Extended without pylibjpeg-libjpeg: unsupported (exit 3), never called corrupt."""
    if str(ts) != JPEG_EXTENDED or has_libjpeg():
        return None
    return InputError(f"file {path.name}: unsupported transfer syntax JPEG Extended (12-bit lossy): "
                      "install volseg[jpeg-extended]", path=folder,
                      hint="pip install 'volseg[jpeg-extended]' (pylibjpeg-libjpeg, GPL-3)")


def decode_frames(path: Path, folder: Path, rows: int, cols: int) -> np.ndarray:
    """Every frame of ``path`` (frames, rows, columns) as stored; a one-line InputError naming the file
    when it cannot be read, lacks pixel data, needs a decoder that is not installed or is corrupt."""
    import pydicom

    try:
        ds = pydicom.dcmread(path)
    except Exception as exc:  # noqa: BLE001
        raise InputError(f"file {path.name}: cannot be read ({short_message(exc)})", path=folder) from exc
    if not any(t in ds for t in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        raise InputError(f"file {path.name}: no pixel data (truncated file?)", path=folder)
    ts = getattr(ds, "file_meta", None) and ds.file_meta.get("TransferSyntaxUID")
    missing = _missing_decoder(ts) if ts else None
    refused = _jpeg_extended_refused(ts, path, folder) if missing else None
    if refused is not None:
        raise refused
    if missing:
        raise InputError(f"file {path.name}: no decoder installed for {missing} pixel data", path=folder,
                         hint=DECODER_HINTS.get(str(ts), "pip install python-gdcm"))
    try:
        pixels = np.asarray(ds.pixel_array)
    except Exception as exc:  # noqa: BLE001 - pydicom raises many kinds for bad data
        refused = _jpeg_extended_refused(ts, path, folder)
        if refused is not None:  # gdcm/pillow are "available" but decode 8-bit JPEG only
            raise refused from exc
        if isinstance(exc, (RuntimeError, NotImplementedError)) and "missing" in str(exc).lower():
            hint = DECODER_HINTS.get(str(ts), "pip install python-gdcm")
            raise InputError(f"file {path.name}: no decoder installed for {ts} pixel data ({short_message(exc)})",
                             path=folder, hint=hint) from exc
        raise InputError(f"file {path.name}: pixel data is truncated or corrupt ({short_message(exc)})",
                         path=folder) from exc
    if pixels.ndim == 2:
        pixels = pixels[None]
    if pixels.ndim != 3 or pixels.shape[1:] != (rows, cols):
        raise InputError(f"file {path.name}: pixel data of shape {pixels.shape} does not match "
                         f"{rows}×{cols} slices", path=folder)
    return pixels


def pixel_claim(ds, rows: int, cols: int, n_frames: int) -> tuple[int, bool]:
    """(bytes of pixel data the header claims for the whole file, whether it is encapsulated)."""
    bits = int(ds.get("BitsAllocated") or 16)
    meta = getattr(ds, "file_meta", None)
    ts = meta.get("TransferSyntaxUID") if meta else None
    encapsulated = bool(ts is not None and getattr(ts, "is_compressed", False))
    samples = max(int(ds.get("SamplesPerPixel") or 1), 1)
    return rows * cols * max(n_frames, 1) * samples * max(bits, 1) // 8, encapsulated


def check_pixel_claims(files: dict[Path, tuple[int, bool]], folder: Path) -> None:
    """An InputError naming the file whose uncompressed pixel data cannot fit in its size."""
    from volseg.io.limits import human_bytes

    for path, (stored, encapsulated) in files.items():
        if encapsulated:
            continue
        try:
            size = path.stat().st_size
        except OSError as exc:
            raise InputError(f"file {path.name}: cannot be read ({short_message(exc)})", path=folder) from exc
        if stored > size:
            raise InputError(f"file {path.name}: header claims {human_bytes(stored)} of pixel data "
                             f"(Rows×Columns×frames) but the file is {size} bytes: truncated file or "
                             "corrupt header", path=folder)


def _missing_decoder(ts) -> str | None:
    """Name of the transfer syntax when no installed decoder handles it, else None."""
    try:
        from pydicom.pixels import get_decoder  # pydicom ≥ 3
    except ImportError:  # pragma: no cover - pydicom 2.x decides inside pixel_array
        return None
    name = getattr(ts, "name", "") or str(ts)
    try:
        return None if get_decoder(ts).is_available else f"'{name}' ({ts})"
    except NotImplementedError:
        return f"'{name}' ({ts})"


def short_message(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:160]
