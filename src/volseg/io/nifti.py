"""NIfTI-1/2 reading and writing with one documented set of geometry and scaling rules.

Reading rules (decided once, here):

* **Affine**: the sform when ``sform_code > 0``; else the qform when ``qform_code > 0``; else the
  NIfTI "method 1" scaling ``diag(pixdim)`` with a warning that the orientation is unknown.
  When both sform and qform are set and disagree by more than 0.01 mm, the sform wins and a
  warning says so (nibabel does the same; ITK may not).
* **pixdim** that disagrees with the chosen affine's voxel sizes: the affine wins (it places every
  voxel); a warning gives both.
* **scl_slope / scl_inter**: applied when the slope is finite and non-zero and (slope, inter) is not
  (1, 0). The result keeps an integer type when slope and inter are integers and the range fits,
  else it is float32 (float64 for float64 data). A zero or NaN slope means "no scaling" (standard).
* The whole voxel block is read at load: a truncated or corrupt file is an
  :class:`~volseg.errors.InputError`, never zeros.
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
        raise InputError(f"not a readable NIfTI file ({_short(exc)})", path=path) from exc
    if not isinstance(img, (nib.Nifti1Image, nib.Nifti2Image)):
        raise InputError(f"not a NIfTI image (got {type(img).__name__})", path=path)
    return from_nibabel(img, path=path)


def from_nibabel(img, *, path: str | Path, kind: str = "nifti") -> LoadedImage:
    """A nibabel NIfTI image (read from ``path``, or built in memory) under the reading rules above;
    in-memory voxel data is taken as it is (nibabel applies scl_slope/scl_inter only on saving)."""
    import nibabel as nib

    warnings: list[str] = []
    in_memory = not nib.is_proxy(img.dataobj)
    raw = _to_3d(np.asanyarray(img.dataobj) if in_memory else _read_voxels(img, path), path)
    data = raw if in_memory else _apply_scaling(raw, img.dataobj)
    affine = _choose_affine(img.header, warnings)
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
    try:
        raw = np.asanyarray(img.dataobj.get_unscaled())
    except (EOFError, OSError, ValueError, zlib.error) as exc:
        raise InputError(f"truncated or corrupt voxel data ({_short(exc)})", path=path) from exc
    expected = int(np.prod(img.shape))
    if raw.size != expected:  # pragma: no cover - nibabel raises first in practice
        raise InputError(f"truncated voxel data: {raw.size} of {expected} voxels", path=path)
    if raw.dtype.kind not in "biuf" or raw.dtype.names:
        raise InputError(f"unsupported voxel type {raw.dtype} (need scalar numbers)", path=path)
    return raw


def _to_3d(raw: np.ndarray, path: Path) -> np.ndarray:
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


def _apply_scaling(raw: np.ndarray, proxy) -> np.ndarray:
    # nibabel moves scl_slope/scl_inter from the header to the array proxy on load; it already
    # maps a zero or NaN slope to "no scaling" (1, 0) as the NIfTI standard says
    slope, inter = float(proxy.slope), float(proxy.inter)
    if not np.isfinite(slope) or slope == 0.0:
        slope, inter = 1.0, 0.0
    inter = inter if np.isfinite(inter) else 0.0
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


def _choose_affine(header, warnings: list[str]) -> np.ndarray:
    sform, sform_code = header.get_sform(coded=True)
    qform, qform_code = header.get_qform(coded=True)
    if sform_code and sform_code > 0:
        if qform_code and qform_code > 0 and not np.allclose(sform, qform, atol=_AFFINE_ATOL_MM):
            warnings.append("sform and qform disagree; using the sform (NIfTI rule: sform first)")
        return np.asarray(sform, dtype=np.float64)
    if qform_code and qform_code > 0:
        return np.asarray(qform, dtype=np.float64)
    zooms = [float(z) if z else 1.0 for z in header["pixdim"][1:4]]
    warnings.append("no sform or qform: orientation unknown, using pixdim spacing with RAS axes")
    return np.diag([*np.abs(zooms), 1.0])


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
