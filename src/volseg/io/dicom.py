"""DICOM series → :class:`~volseg.volume.Volume` (RAS affine), with strict geometry checks.

Reading rules (decided once, here; slice geometry lives in :mod:`volseg.io.dicom_geometry`, pixel
decoding in :mod:`volseg.io.dicom_pixels`):

* A folder is searched recursively; a file means "the series in its folder that holds this file".
  Headers are read first without pixel data; files that are not DICOM are skipped (counted in a
  debug log). A DICOM file whose header cannot be parsed, or a CT/MR/PET file whose header lacks
  its image tags (truncated), is an :class:`InputError` naming the file when it may belong to the
  series being read.
* Files are grouped by SeriesInstanceUID (files without one, e.g. anonymised, by their folder, with
  a warning). Non-image objects (SEG, SR, KOS, RT, presentation states,
  ...; or anything without pixel rows/columns and a slice position/orientation) and localisers
  (ImageType or FrameType containing LOCALIZER) are dropped. In a series of ≥ 3 images, a single
  image whose orientation differs from all the others is dropped with a warning. Repeated copies
  of one SOP instance are read once.
* One image series is read; with several, ``series`` (SeriesInstanceUID, or SeriesNumber as text)
  must choose, else :class:`AmbiguousInputError` lists them.
* Enhanced multi-frame images are read frame by frame through their per-frame / shared functional
  groups (position, orientation, pixel spacing, rescale); other multi-frame files are skipped.
* Intensities: RescaleSlope/RescaleIntercept per slice (or frame). The result is int16 when every
  slope is 1, every intercept an integer and the values fit; float32 otherwise.
* Before any pixel array is made, each uncompressed file must be large enough for the
  Rows×Columns×frames its header claims, and the whole stack must fit in the memory available
  (:mod:`volseg.io.limits`); otherwise an :class:`InputError` with the numbers.
* Pixel data is decoded once per file. A missing decoder for a compressed transfer syntax, or
  pixel data that is truncated or corrupt, is an :class:`InputError` naming the file; never zeros.
"""
from __future__ import annotations

import logging
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from volseg.errors import AmbiguousInputError, GeometryError, InputError
from volseg.io import dicom_geometry as geom
from volseg.io.dicom_headers import header_summary
from volseg.io.dicom_pixels import (
    check_pixel_claims,
    decode_frames,
    lossy_compression,
    lossy_warning,
    pixel_claim,
)
from volseg.io.dicom_pixels import short_message as _short
from volseg.io.limits import check_memory
from volseg.io.types import ImageSource, LoadedImage
from volseg.volume import Volume

log = logging.getLogger("volseg.io.dicom")

_NON_IMAGE_SOP = (
    "1.2.840.10008.1.3.10",  # media storage directory (DICOMDIR)
    "1.2.840.10008.5.1.4.1.1.9",  # waveforms
    "1.2.840.10008.5.1.4.1.1.11",  # presentation states
    "1.2.840.10008.5.1.4.1.1.66",  # raw data, registration, fiducials, SEG (.66.4), surfaces
    "1.2.840.10008.5.1.4.1.1.67",  # real-world value mapping
    "1.2.840.10008.5.1.4.1.1.68",  # surface scans
    "1.2.840.10008.5.1.4.1.1.88",  # structured reports, key object selection
    "1.2.840.10008.5.1.4.1.1.104",  # encapsulated documents
    "1.2.840.10008.5.1.4.1.1.481",  # radiotherapy objects (RTSTRUCT, RTDOSE, RTPLAN, ...)
)
_NON_IMAGE_MODALITIES = {"SEG", "SR", "KO", "PR", "REG", "FID", "DOC", "RWV", "PLAN", "RTSTRUCT",
                         "RTDOSE", "RTPLAN", "RTRECORD", "RTIMAGE"}
_NO_UID = "no-series-uid:"  # key of slices without SeriesInstanceUID (anonymised): grouped by folder
_VOLUME_SOP = {f"1.2.840.10008.5.1.4.1.1.{s}" for s in ("2", "2.1", "2.2", "4", "4.1", "4.4",
                                                       "128", "128.1", "130")}


@dataclass(frozen=True)
class SeriesInfo:
    """One candidate image series in a folder (no patient identifiers)."""

    number: int | None
    uid: str
    modality: str | None
    description: str | None
    n_images: int
    rows: int
    columns: int

    def label(self) -> str:
        desc = f", '{self.description}'" if self.description else ""
        num = "#?" if self.number is None else f"#{self.number}"
        return f"{num} {self.modality or '?'}, {self.n_images} images{desc}, uid {self.uid}"


@dataclass(frozen=True)
class _Slice:  # one frame of one file, as its header describes it
    path: Path
    frame: int  # index into the file's frames (0 for single-frame files)
    sop_uid: str
    series_uid: str
    series_number: int | None
    modality: str | None
    description: str | None
    rows: int
    columns: int
    pixel_spacing: tuple[float, ...] | None
    iop: tuple[float, ...]
    ipp: tuple[float, ...]
    slope: float
    intercept: float
    tilt: float | None
    stored_bytes: int = 0  # the whole file's pixel data as the header describes it (all frames)
    encapsulated: bool = False  # compressed transfer syntax: the file size bounds nothing
    lossy: str | None = None  # how the pixel data were lossy-compressed (dicom_pixels.lossy_compression)
    header: Any = field(default=None, repr=False, compare=False)  # dicom_headers.header_summary of the file


@dataclass
class _Scan:
    series: dict[str, list[_Slice]] = field(default_factory=dict)
    warnings: dict[str, list[str]] = field(default_factory=dict)
    corrupt: list[tuple[Path, str, str | None]] = field(default_factory=list)  # path, problem, series
    skipped: Counter = field(default_factory=Counter)


class _Corrupt(Exception):
    pass


# ---- public API ------------------------------------------------------------------------------
def is_dicom_file(path: str | Path) -> bool:
    """True for a DICOM file: 'DICM' at byte 128, or (no preamble) a header that parses as DICOM."""
    kind, _ = _open_header(Path(path))
    return kind != "not-dicom"


def list_series(folder: str | Path) -> list[SeriesInfo]:
    """The image series found under ``folder`` (recursively), sorted by (SeriesNumber, UID)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError("not a folder", path=folder)
    return _infos(_scan(folder))


def read_dicom_series(folder_or_file: str | Path, *, series: str | None = None) -> LoadedImage:
    """Read one DICOM image series as a 3-D volume with a RAS affine (see the module rules)."""
    given = Path(folder_or_file)
    if not given.exists():
        raise InputError("no such file or folder", path=given)
    folder = given if given.is_dir() else given.parent
    scan = _scan(folder)
    uid = _choose(scan, folder, given if given.is_file() else None, series)
    for path, problem, owner in scan.corrupt:
        if owner in (None, uid):
            raise _damaged(path, problem, folder)
    slices = scan.series[uid]
    warnings = list(scan.warnings.get(uid, []))
    try:
        geom.check_same_size([(s.rows, s.columns) for s in slices], [s.pixel_spacing for s in slices])
        geom.check_orientations([s.iop for s in slices])
        stack = geom.stack_geometry(slices[0].iop, slices[0].pixel_spacing,
                                    np.array([s.ipp for s in slices]))
    except geom.SliceGeometryError as exc:
        raise GeometryError(str(exc), path=folder) from exc
    ordered = [slices[i] for i in stack.order]
    if uid.startswith(_NO_UID):
        warnings.append(
            "no SeriesInstanceUID (anonymised?): the images in this folder were taken as one series"
        )
    if stack.tilt_deg:
        header = next((s.tilt for s in ordered if s.tilt), None)
        said = f" (GantryDetectorTilt {header:g}°)" if header is not None else ""
        warnings.append(
            f"gantry tilt: slices are stepped {stack.tilt_deg:.2f}° off the slice normal{said}; "
            "the affine is sheared so that every voxel is placed exactly"
        )
    warnings.extend(lossy_warning(m) for m in dict.fromkeys(s.lossy for s in ordered if s.lossy))
    array = _read_pixels(ordered, folder)
    for w in warnings:
        log.warning("%s: %s", folder.name, w)
    try:
        volume = Volume(array, stack.affine_ras)
    except GeometryError as exc:
        raise GeometryError(exc.message, path=folder) from exc
    first = ordered[0]
    headers = {str(s.path): s.header for s in ordered}  # one per file, in the order of its first slice
    source = ImageSource(
        kind="dicom", path=str(given), modality=first.modality,
        series_uid=None if uid.startswith(_NO_UID) else uid,
        series_number=first.series_number, files=tuple(headers), warnings=tuple(warnings),
        headers=tuple(headers.values()),
    )
    return LoadedImage(volume, source)


# ---- scanning headers --------------------------------------------------------------------------
def _open_header(path: Path):
    """('dicom', dataset) | ('corrupt', problem) | ('not-dicom', None), without pixel data."""
    import pydicom

    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
    except OSError:
        return "not-dicom", None
    if head[128:132] == b"DICM":
        try:
            return "dicom", pydicom.dcmread(path, stop_before_pixels=True, defer_size="1 MB")
        except Exception as exc:  # noqa: BLE001 - any parse failure means a damaged file
            return "corrupt", f"DICOM header cannot be parsed ({_short(exc)})"
    if head[:2] not in (b"\x08\x00", b"\x02\x00"):  # preamble-less files start with group 8 (or 2)
        return "not-dicom", None
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
    except Exception:  # noqa: BLE001
        return "not-dicom", None
    if "SOPClassUID" in ds or "SeriesInstanceUID" in ds:
        return "dicom", ds
    return "not-dicom", None


def _scan(folder: Path) -> _Scan:
    scan = _Scan()
    seen: set[tuple[str, int]] = set()
    for root, dirs, names in os.walk(folder):
        dirs.sort()
        for name in sorted(names):
            path = Path(root) / name
            kind, ds = _open_header(path)
            if kind == "not-dicom":
                scan.skipped["not DICOM"] += 1
                continue
            if kind == "corrupt":
                scan.corrupt.append((path, ds, None))
                continue
            try:
                slices, reason = _slices_from(ds, path)
            except _Corrupt as exc:
                scan.corrupt.append((path, str(exc), _text(ds.get("SeriesInstanceUID"))))
                continue
            if reason:
                scan.skipped[reason] += 1
            for s in slices:
                if (s.sop_uid, s.frame) in seen and s.sop_uid:
                    scan.skipped["repeated copy of an instance"] += 1
                    continue
                seen.add((s.sop_uid, s.frame))
                scan.series.setdefault(s.series_uid, []).append(s)
    if scan.skipped:
        log.debug("%s: skipped %s", folder.name, ", ".join(f"{n} {r}" for r, n in scan.skipped.items()))
    for uid, slices in scan.series.items():
        odd = geom.orientation_outlier([s.iop for s in slices])
        if odd is not None:
            scan.warnings.setdefault(uid, []).append(
                f"dropped 1 image ({slices[odd].path.name}) whose orientation differs from the other "
                f"{len(slices) - 1} (a localiser?)"
            )
            del slices[odd]
    return scan


def _slices_from(ds, path: Path) -> tuple[list[_Slice], str | None]:
    meta = getattr(ds, "file_meta", None)  # the meta group (file start) outlives a truncated dataset
    sop = str((meta.get("MediaStorageSOPClassUID") if meta else None) or ds.get("SOPClassUID") or "")
    if not sop and ds.preamble is not None:
        raise _Corrupt("incomplete header (truncated?): no SOP class")
    modality = _text(ds.get("Modality"))
    if any(sop == p or sop.startswith(p + ".") for p in _NON_IMAGE_SOP) or (
        modality or ""
    ).upper() in _NON_IMAGE_MODALITIES:
        return [], "non-image objects"
    try:
        n_frames = int(ds.get("NumberOfFrames") or 1)
        enhanced = "PerFrameFunctionalGroupsSequence" in ds or "SharedFunctionalGroupsSequence" in ds
        if n_frames > 1 and not enhanced:
            return [], "multi-frame files without per-frame geometry"
        if int(ds.get("SamplesPerPixel") or 1) != 1:
            return [], "colour images"
        frames = [geom.frame_geometry(ds, f, enhanced) for f in range(n_frames)]
    except (TypeError, ValueError, IndexError, AttributeError, KeyError) as exc:
        raise _Corrupt(f"unreadable header values ({_short(exc)})") from exc
    uid = _text(ds.get("SeriesInstanceUID")) or f"{_NO_UID}{path.parent}"
    rows, cols = ds.get("Rows"), ds.get("Columns")
    if rows is None or cols is None or any(f["ipp"] is None or f["iop"] is None for f in frames):
        if sop in _VOLUME_SOP:
            raise _Corrupt("incomplete header (truncated?): no rows/columns or slice position")
        return [], "images without slice geometry"
    stored, encapsulated = pixel_claim(ds, int(rows), int(cols), n_frames)
    header = header_summary(ds)
    out = []
    for f, attrs in enumerate(frames):
        if attrs.pop("localizer"):
            continue
        out.append(_Slice(
            path=path, frame=f, sop_uid=_text(ds.get("SOPInstanceUID")) or "", series_uid=uid,
            series_number=_int(ds.get("SeriesNumber")), modality=modality,
            description=_text(ds.get("SeriesDescription")), rows=int(rows), columns=int(cols),
            tilt=geom.to_float(ds.get("GantryDetectorTilt")), stored_bytes=stored,
            encapsulated=encapsulated, lossy=lossy_compression(ds), header=header, **attrs,
        ))
    return out, ("localisers" if len(out) < len(frames) else None)


# ---- choosing a series ---------------------------------------------------------------------------
def _infos(scan: _Scan) -> list[SeriesInfo]:
    infos = []
    for uid, slices in scan.series.items():
        s = slices[0]
        infos.append(
            SeriesInfo(s.series_number, uid, s.modality, s.description, len(slices), s.rows, s.columns)
        )
    return sorted(infos, key=lambda i: (i.number is None, i.number or 0, i.uid))


def _choose(scan: _Scan, folder: Path, file: Path | None, series: str | None) -> str:
    infos = _infos(scan)
    if file is not None:
        target = file.resolve()
        for path, problem, _ in scan.corrupt:
            if path.resolve() == target:
                raise _damaged(path, problem, folder)
        owners = {s.series_uid for sl in scan.series.values() for s in sl if s.path.resolve() == target}
        if not owners:
            raise InputError("not part of a DICOM image series (not DICOM, a non-image object such as "
                             "SEG/SR, or a localiser)", path=file)
        infos = [i for i in infos if i.uid in owners]
    if not infos:
        skipped = ", ".join(f"{n} {r}" for r, n in sorted(scan.skipped.items()))
        what = "no DICOM image series found" if scan.skipped or scan.corrupt else "no files found"
        if not scan.corrupt:
            raise InputError(f"{what}{f' (skipped: {skipped})' if skipped else ''}", path=folder)
        raise _damaged(scan.corrupt[0][0], scan.corrupt[0][1], folder)
    listing = "; ".join(i.label() for i in infos)
    if series is not None:
        wanted = str(series).strip()
        hits = [i for i in infos if i.uid == wanted] or [i for i in infos if str(i.number) == wanted]
        if not hits:
            raise AmbiguousInputError(f"no image series matches {wanted!r}; found: {listing}", path=folder,
                                      hint="use --series UID-or-number")
        if len(hits) > 1:
            raise AmbiguousInputError(
                f"series number {wanted} matches {len(hits)} series: " + "; ".join(i.label() for i in hits),
                path=folder, hint="use --series with the SeriesInstanceUID")
        return hits[0].uid
    if len(infos) > 1:
        raise AmbiguousInputError(f"{len(infos)} image series found: {listing}", path=folder,
                                  hint="use --series UID-or-number")
    return infos[0].uid


# ---- pixel data -------------------------------------------------------------------------------------
def _read_pixels(ordered: list[_Slice], folder: Path) -> np.ndarray:
    """(i, j, k) array of rescaled values; each file is read and decoded once."""
    n, rows, cols = len(ordered), ordered[0].rows, ordered[0].columns
    integral = all(s.slope == 1.0 and float(s.intercept).is_integer() for s in ordered)
    check_pixel_claims({s.path: (s.stored_bytes, s.encapsulated) for s in ordered}, folder)
    largest = max(s.stored_bytes for s in ordered)  # one file decoded at a time, as float64 at worst
    check_memory(n * rows * cols * (2 if integral else 4) + 5 * largest, path=folder)
    stack = np.empty((n, rows, cols), dtype=np.int16 if integral else np.float32)
    by_file: dict[Path, list[tuple[int, _Slice]]] = {}
    for k, s in enumerate(ordered):
        by_file.setdefault(s.path, []).append((k, s))
    for path, items in by_file.items():
        frames = decode_frames(path, folder, rows, cols)
        for k, s in items:
            if s.frame >= len(frames):
                raise InputError(f"file {path.name}: frame {s.frame + 1} missing from the pixel data",
                                 path=folder)
            raw = frames[s.frame]
            if stack.dtype == np.int16:
                if raw.dtype.kind in "iu":
                    lo, hi = int(raw.min()) + int(s.intercept), int(raw.max()) + int(s.intercept)
                    if -32768 <= lo and hi <= 32767:
                        stack[k] = raw.astype(np.int32) + int(s.intercept)
                        continue
                stack = stack.astype(np.float32)
            stack[k] = raw.astype(np.float64) * s.slope + s.intercept
    return stack.T  # [k, row, col] → [i = column, j = row, k]


# ---- small helpers -------------------------------------------------------------------------------------
def _int(value) -> int | None:
    number = geom.to_float(value)
    return None if number is None or not number.is_integer() else int(number)


def _damaged(path: Path, problem: str, folder: Path) -> InputError:
    return InputError(f"file {path.name}: {problem}", path=folder, hint="remove or replace the damaged file")


def _text(value) -> str | None:
    text = " ".join(str(value).split()) if value is not None else ""
    return text or None
