"""The API's input side (re-exported by :mod:`volseg.api`): ``info``/``list_series``. The model loaded
when first needed, its check against the input and input names live in :mod:`volseg.pipeline.model`
(re-exported here)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from volseg.io import LoadedImage, read_image
from volseg.pipeline.model import ModelLoader, fitting_segmenter, input_names, naming  # noqa: F401


@dataclass(frozen=True)
class ImageInfo:
    """What ``volseg info`` shows: the DICOM series found (if any) and the image read (if one)."""

    series: list = field(default_factory=list)
    image: LoadedImage | None = None


def info(input: str | Path, *, series: str | None = None) -> ImageInfo:
    """Describe an input: every DICOM series in a folder, and the image when one is chosen."""
    from volseg.io import image_kind

    found = list_series(input) if Path(input).is_dir() and image_kind(input) == "dicom" else []
    if len(found) > 1 and series is None:
        return ImageInfo(series=found)
    return ImageInfo(series=found, image=read_image(input, series=series))


def list_series(folder: str | Path):
    """The DICOM series found in ``folder`` (searched recursively), without patient identifiers."""
    from volseg.io.dicom import list_series as _list

    return _list(folder)
