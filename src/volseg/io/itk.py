"""Other ITK formats (NRRD, MetaImage, ...) through SimpleITK.

SimpleITK arrays are z, y, x and its geometry is LPS; both are converted here to volseg's
i, j, k array order and RAS affine.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from volseg.errors import GeometryError, InputError
from volseg.io.limits import check_memory, check_stored_size
from volseg.io.nifti import require_3d
from volseg.io.types import ImageSource, LoadedImage
from volseg.volume import Volume

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def read_itk(path: str | Path) -> LoadedImage:
    import SimpleITK as sitk

    path = Path(path)
    if not path.exists():
        raise InputError("no such file", path=path)
    try:
        _check_claim(sitk, path)
        image = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        first = next((ln for ln in str(exc).splitlines() if ln.strip()), "unreadable")
        raise InputError(f"cannot read image ({first.strip()[:160]})", path=path) from exc
    return from_sitk(image, path=path)


def from_sitk(image, *, path: str | Path, kind: str = "itk") -> LoadedImage:
    """A SimpleITK image (read from ``path`` or built in memory): z, y, x and LPS to i, j, k and RAS."""
    import SimpleITK as sitk

    if image.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(
            f"{image.GetNumberOfComponentsPerPixel()}-component pixels; volseg needs scalar images",
            path=path,
        )
    if image.GetDimension() != 3:
        raise GeometryError(f"{image.GetDimension()}-D image; volseg needs a 3-D volume", path=path)
    array = np.ascontiguousarray(sitk.GetArrayFromImage(image).transpose(2, 1, 0))
    require_3d(array.shape, path)
    affine = affine_from_itk(image.GetDirection(), image.GetSpacing(), image.GetOrigin())
    try:
        volume = Volume(array, affine)
    except GeometryError as exc:
        raise GeometryError(exc.message, path=path) from exc
    modality = image.GetMetaData("0008|0060").strip() if image.HasMetaDataKey("0008|0060") else None
    return LoadedImage(volume, ImageSource(kind=kind, path=str(path), modality=modality or None))


def _check_claim(sitk, path: Path) -> None:
    """Refuse, from the header alone, an image the file cannot hold or memory cannot take."""
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    reader.ReadImageInformation()
    size = tuple(int(n) for n in reader.GetSize())
    itemsize = sitk.Image([1] * reader.GetDimension(), reader.GetPixelID()).GetSizeOfPixelComponent()
    itemsize *= max(int(reader.GetNumberOfComponents()), 1)
    encoding = _encoding(path)
    data_bytes = sum(p.stat().st_size for p in _data_files(path))
    if encoding != "bzip2":  # bzip2's ratio is unbounded in practice: the memory check must do
        check_stored_size(shape=size, itemsize=itemsize, file_bytes=data_bytes, path=path,
                          compressed=encoding == "deflate", what="image header")
    # SimpleITK's array plus volseg's transposed copy
    check_memory(_nbytes(size, itemsize), path=path, copies=2.0)


def _nbytes(shape, itemsize: int) -> int:
    out = int(itemsize)
    for n in shape:
        out *= int(n)
    return out


def _encoding(path: Path) -> str:
    """'deflate', 'bzip2' or 'raw' from the first lines of an NRRD or MetaImage header."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(8192).decode("latin-1").lower()
    except OSError:
        return "deflate"
    if "bzip2" in head or "encoding: bz2" in head:
        return "bzip2"
    if ("compresseddata = true" in head or "encoding: gzip" in head or "encoding: gz" in head
            or "compresseddatasize" in head):
        return "deflate"
    return "raw" if ("encoding: raw" in head or "elementdatafile" in head) else "deflate"


def _data_files(path: Path) -> list[Path]:
    """The header file and, for detached headers (.mhd, .nhdr), the data files beside it."""
    if not path.name.lower().endswith((".mhd", ".nhdr")):
        return [path]
    stem = path.name.rsplit(".", 1)[0]
    return [p for p in sorted(path.parent.iterdir()) if p.is_file() and p.name.rsplit(".", 1)[0] == stem]


def affine_from_itk(direction, spacing, origin) -> np.ndarray:
    """RAS affine from ITK's LPS direction (row-major 3×3), spacing and origin."""
    lps = np.eye(4)
    lps[:3, :3] = np.asarray(direction, dtype=np.float64).reshape(3, 3) * np.asarray(spacing)
    lps[:3, 3] = origin
    return LPS_TO_RAS @ lps


def itk_geometry(affine: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...]]:
    """(direction, spacing, origin) in ITK's LPS convention for a RAS affine."""
    lps = LPS_TO_RAS @ np.asarray(affine, dtype=np.float64)
    spacing = np.linalg.norm(lps[:3, :3], axis=0)
    direction = lps[:3, :3] / spacing
    return tuple(direction.ravel()), tuple(spacing), tuple(lps[:3, 3])
