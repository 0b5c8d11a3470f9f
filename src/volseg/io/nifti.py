"""NIfTI-1/2 reading and writing with one documented set of geometry and scaling rules.

Reading rules (decided once, here):

* **Affine**: the sform when ``sform_code > 0``; else the qform when ``qform_code > 0``; else the
  NIfTI "method 1" scaling ``diag(pixdim)`` with a warning that the orientation is unknown; with
  a zero or non-finite pixdim as well there is no spacing at all: a GeometryError (never 1 mm).
  When both sform and qform are set and disagree by more than 0.01 mm, the sform wins and a
  warning says so (nibabel does the same; ITK may not).
* **pixdim** that disagrees with the chosen affine's voxel sizes: the affine wins (it places every
  voxel); a warning gives both.
* **scl_slope / scl_inter**: applied when the slope is finite and non-zero and (slope, inter) is not
  (1, 0). The result keeps an integer type when slope and inter are integers and the range fits,
  else it is float32 (float64 for float64 data). A zero or NaN slope means "no scaling" (standard).
* The whole voxel block is read at load: a truncated or corrupt file is an
  :class:`~volseg.errors.InputError`, never zeros. Before anything is allocated, the header's
  claim is checked against the file's size (deflate cannot exceed 1032:1) and the memory available
  (:mod:`volseg.io.limits`). A ``.nii.gz`` is streamed to its end so that the gzip CRC-32 and length
  are verified on the one reading pass ("gzip CRC mismatch: file corrupt").
* 4-D data with one volume is squeezed to 3-D; more volumes, vector or complex data are refused.

Writing: label maps and images are written with the volume's affine as both sform and qform
(code 1, scanner), except that the qform is left unset (code 0) for sheared affines, which a qform
cannot represent; the voxel block goes to a temp file that is renamed into place.
"""
from __future__ import annotations

import logging
import zlib
from pathlib import Path

import numpy as np

from volseg.errors import GeometryError, InputError
from volseg.io.atomic import atomic_path
from volseg.io.limits import check_memory, check_stored_size
from volseg.io.types import ImageSource, LoadedImage
from volseg.volume import Volume

log = logging.getLogger(__name__)

_AFFINE_ATOL_MM = 0.01


def read_nifti(path: str | Path) -> LoadedImage:
    import nibabel as nib
    from nibabel.filebasedimages import ImageFileError

    path = Path(path)
    try:
        img = nib.load(str(path), mmap=False)
    except FileNotFoundError as exc:
        raise InputError("no such file", path=path) from exc
    except (ImageFileError, OSError, EOFError, ValueError, zlib.error) as exc:
        if path.name.lower().endswith(".gz"):  # small files are inflated whole while nibabel sniffs
            _raise_gzip_mismatch(path)
        raise InputError(f"not a readable NIfTI file ({_short(exc)})", path=path) from exc
    if not isinstance(img, (nib.Nifti1Image, nib.Nifti2Image)):
        raise InputError(f"not a NIfTI image (got {type(img).__name__})", path=path)
    return from_nibabel(img, path=path)


def from_nibabel(img, *, path: str | Path, kind: str = "nifti") -> LoadedImage:
    """A nibabel NIfTI image (read from ``path``, or built in memory) under the reading rules above;
    in-memory voxel data is taken as it is (nibabel applies scl_slope/scl_inter only on saving)."""
    import nibabel as nib

    warnings: list[str] = []
    # a proxy is streamed (and checked) from its own file; ``path`` may only be a name (API input)
    file_like = getattr(img.dataobj, "file_like", None) if nib.is_proxy(img.dataobj) else None
    stored = Path(file_like) if isinstance(file_like, (str, Path)) else None
    in_memory = stored is None
    raw = _to_3d(np.asanyarray(img.dataobj) if stored is None else _read_voxels(img, stored), path)
    data = raw if in_memory else _apply_scaling(raw, img.dataobj)
    affine = _choose_affine(img.header, warnings, Path(path))
    _check_pixdim(img.header, affine, warnings)
    for w in warnings:
        log.warning("%s: %s", Path(path).name, w)
    try:
        volume = Volume(data, affine)
    except GeometryError as exc:
        raise GeometryError(exc.message, path=path) from exc
    source = ImageSource(kind=kind, path=str(path), warnings=tuple(warnings))
    return LoadedImage(volume, source)


def write_nifti(volume: Volume, path: str | Path, *, dtype: np.dtype | type | None = None) -> Path:
    """Write ``volume`` to ``path`` (.nii or .nii.gz) atomically, on exactly its grid."""
    import nibabel as nib

    path = Path(path)
    array = np.asarray(volume.array)
    if dtype is not None:
        array = array.astype(dtype, copy=False)
    img = nib.Nifti1Image(array, volume.affine)
    header = img.header
    header.set_xyzt_units(xyz="mm")
    header.set_sform(volume.affine, code=1)
    if volume.shear_deg < 1e-3:
        header.set_qform(volume.affine, code=1)
    else:
        header.set_qform(None, code=0)
    with atomic_path(path) as tmp:
        nib.save(img, str(tmp))
    return path


def label_dtype(max_label: int) -> type:
    """Smallest unsigned integer type for a label map whose largest index is ``max_label``."""
    if max_label < 2**8:
        return np.uint8
    if max_label < 2**16:
        return np.uint16
    return np.uint32


# ---- reading helpers ---------------------------------------------------------------------
def _read_voxels(img, path: Path) -> np.ndarray:
    """The stored voxel block, read once after the header's claim is checked against the file's
    size and the memory available; a gzip file is streamed to its end so that its CRC-32 and
    length are verified on the same pass."""
    proxy = img.dataobj  # nibabel's proxy knows the real data offset (the header may say 0)
    dtype = np.dtype(proxy.dtype)
    if dtype.kind not in "biuf" or dtype.names:
        raise InputError(f"unsupported voxel type {dtype} (need scalar numbers)", path=path)
    shape = tuple(int(n) for n in proxy.shape)
    offset = int(proxy.offset)
    compressed = path.name.lower().endswith(".gz")
    nbytes = check_stored_size(shape=shape, itemsize=dtype.itemsize, file_bytes=path.stat().st_size,
                               path=path, compressed=compressed, header_bytes=offset, what="NIfTI header")
    scaled = _scaling(proxy) != (1.0, 0.0)
    check_memory(nbytes, path=path, copies=1.0 + (12.0 / dtype.itemsize if scaled else 0.0))
    block = np.empty(nbytes, dtype=np.uint8)
    try:
        if compressed:
            read_gzip_block(path, offset, block.data)
        else:
            with open(path, "rb") as fh:
                fh.seek(offset)
                _fill(fh, block.data, path)
    except OSError as exc:
        raise InputError(f"truncated or corrupt voxel data ({_short(exc)})", path=path) from exc
    return block.view(dtype).reshape(shape, order="F")


def read_gzip_block(path: Path, offset: int, out: memoryview) -> None:
    """Fill ``out`` with the bytes from ``offset`` of a gzip file, then read on to its end so that
    every member's CRC-32 and length are checked (nibabel and ITK never do); zlib inflates each
    piece once, straight into ``out`` (:mod:`volseg.io.gzip_stream`)."""
    from volseg.io.gzip_stream import NotGzipError, inflate_into

    try:
        with open(path, "rb") as fh:
            done = inflate_into(fh, offset, out)
    except zlib.error as exc:
        text = str(exc)
        if "incorrect data check" in text:
            raise InputError("gzip CRC mismatch: file corrupt", path=path) from exc
        if "incorrect length check" in text:
            raise InputError("gzip length mismatch: file corrupt", path=path) from exc
        raise InputError(f"truncated or corrupt voxel data ({_short(exc)})", path=path) from exc
    except (EOFError, NotGzipError) as exc:
        raise InputError(f"truncated or corrupt voxel data ({_short(exc)})", path=path) from exc
    if done < len(out):
        raise InputError(f"truncated or corrupt voxel data: {done} of {len(out)} bytes", path=path)


def _raise_gzip_mismatch(path: Path) -> None:
    """Raise the CRC/length error of a gzip file whose trailer does not match, if it has one."""
    try:
        read_gzip_block(path, 0, memoryview(bytearray(0)))
    except InputError as exc:
        if exc.message.startswith("gzip"):
            raise


def _fill(fh, out: memoryview, path: Path) -> None:
    done = 0
    while done < len(out):
        n = fh.readinto(out[done:done + (1 << 24)])
        if not n:
            raise InputError(f"truncated or corrupt voxel data: {done} of {len(out)} bytes", path=path)
        done += n


def _to_3d(raw: np.ndarray, path: str | Path) -> np.ndarray:
    while raw.ndim > 3 and raw.shape[-1] == 1:
        raw = raw[..., 0]
    if raw.ndim > 3:
        raise GeometryError(
            f"{raw.ndim}-D image of shape {raw.shape}: volseg reads one 3-D volume per file",
            path=path,
        )
    require_3d(raw.shape, path)
    return raw


def require_3d(shape: tuple[int, ...], path: str | Path) -> None:
    """Refuse images that are 2-D in fact: fewer than 3 axes or fewer than 2 voxels on one."""
    if len(shape) < 3 or min(shape) < 2:
        shown = "×".join(str(n) for n in shape)
        raise GeometryError(f"2-D image (shape {shown}); volseg needs a 3-D volume", path=path)


def _scaling(proxy) -> tuple[float, float]:
    # nibabel moves scl_slope/scl_inter from the header to the array proxy on load; it already
    # maps a zero or NaN slope to "no scaling" (1, 0) as the NIfTI standard says
    slope, inter = float(proxy.slope), float(proxy.inter)
    if not np.isfinite(slope) or slope == 0.0:
        slope, inter = 1.0, 0.0
    return slope, (inter if np.isfinite(inter) else 0.0)


def _apply_scaling(raw: np.ndarray, proxy) -> np.ndarray:
    slope, inter = _scaling(proxy)
    if (slope, inter) == (1.0, 0.0):
        return raw
    out_float = np.float64 if raw.dtype == np.float64 else np.float32
    scaled = raw.astype(np.float64) * slope + inter
    if slope.is_integer() and inter.is_integer() and raw.dtype.kind in "iu":
        for cand in (np.int16, np.int32):
            info = np.iinfo(cand)
            if scaled.min() >= info.min and scaled.max() <= info.max:
                return scaled.astype(cand)
    return scaled.astype(out_float)


GEOMETRY_MISSING = ("geometry probably missing: identity affine (1 mm voxels, no orientation); "
                    "volumes and left/right may be wrong")


def _choose_affine(header, warnings: list[str], path: Path) -> np.ndarray:
    affine = _stored_affine(header, warnings, path)
    unit_voxels = np.allclose(np.abs(affine[:3, :3]), np.eye(3), atol=1e-6)
    if np.allclose(affine, np.eye(4), atol=1e-6) or (unit_voxels and _no_orientation(header)):
        warnings.append(GEOMETRY_MISSING)  # a writer that stored no geometry (e.g. the LiTS crop)
    return affine


def _stored_affine(header, warnings: list[str], path: Path) -> np.ndarray:
    sform, sform_code = header.get_sform(coded=True)
    qform, qform_code = header.get_qform(coded=True)
    if sform_code and sform_code > 0:
        if qform_code and qform_code > 0 and not np.allclose(sform, qform, atol=_AFFINE_ATOL_MM):
            warnings.append("sform and qform disagree; using the sform (NIfTI rule: sform first)")
        return np.asarray(sform, dtype=np.float64)
    if qform_code and qform_code > 0:
        return np.asarray(qform, dtype=np.float64)
    zooms = _stored_pixdim(header, path)
    if not all(np.isfinite(z) and z != 0.0 for z in zooms):
        raise GeometryError(
            f"no usable voxel spacing: sform and qform codes are 0 and pixdim is {_fmt(zooms)}",
            path=path, hint="volseg never assumes 1 mm voxels; fix the header (e.g. set pixdim or an sform)")
    warnings.append("no sform or qform: orientation unknown, using pixdim spacing with RAS axes")
    return np.diag([*np.abs(zooms), 1.0])


def _no_orientation(header) -> bool:
    return not header.get_sform(coded=True)[1] and not header.get_qform(coded=True)[1]


def _stored_pixdim(header, path: Path) -> list[float]:
    """pixdim[1:4] as the file stores it (nibabel's load-time checks turn a 0 into 1 mm)."""
    import gzip

    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as fh:
            raw = type(header).from_fileobj(fh, check=False)
    except (OSError, EOFError, ValueError, zlib.error):  # pragma: no cover - nibabel read it already
        raw = header
    return [float(z) for z in raw["pixdim"][1:4]]


def _check_pixdim(header, affine: np.ndarray, warnings: list[str]) -> None:
    pixdim = np.abs(np.asarray(header["pixdim"][1:4], dtype=np.float64))
    sizes = np.linalg.norm(affine[:3, :3], axis=0)
    if np.any(pixdim > 0) and not np.allclose(pixdim, sizes, rtol=1e-3, atol=1e-4):
        warnings.append(
            "pixdim voxel sizes {} disagree with the affine's {}; using the affine".format(
                _fmt(pixdim), _fmt(sizes)
            )
        )


def _fmt(values) -> str:
    return "×".join(f"{v:.4g}" for v in values)


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:160]
