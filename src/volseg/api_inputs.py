"""The API's input side (re-exported by :mod:`volseg.api`): ``info``/``list_series``, and for
:func:`volseg.api.segment` names for in-memory images, the model loaded when first needed, the
check that it fits the input (``segmenters/applicability.py``) and errors that name the input."""
from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from volseg.errors import VolsegError
from volseg.io import LoadedImage, read_image

if TYPE_CHECKING:
    from volseg.options import SegmentOptions
    from volseg.segmenters.base import Segmenter


def input_names(input: Any, study_id: str | None) -> tuple[str, str]:
    """(study id, the name errors give): from the path, else ``study_id`` or "study"."""
    from volseg.io import study_name
    from volseg.io.convert import DEFAULT_STUDY_ID, is_path

    if is_path(input):
        return study_id or study_name(input), str(Path(input))
    study_id = study_id or DEFAULT_STUDY_ID
    return study_id, study_id


class ModelLoader:
    """The model of a run, loaded once, when first needed (after the first input was checked)."""

    def __init__(self, options: SegmentOptions, segmenter: Segmenter | None = None) -> None:
        self.options, self.segmenter, self.failed = options, segmenter, False

    def get(self, timings: dict[str, float]) -> Segmenter:
        if self.segmenter is None:
            from volseg.segmenters.subset import load_for

            t = time.perf_counter()
            try:
                self.segmenter = load_for(self.options)  # --fast, --roi-subset
            except VolsegError:
                self.failed = True  # no study of the run can be done
                raise
            timings["load_model"] = time.perf_counter() - t
        return self.segmenter


def fitting_segmenter(image: LoadedImage, loader: ModelLoader, *, about: str,
                      timings: dict[str, float]) -> Segmenter:
    """The run's model, once the input is known to fit it: checked before the weights are loaded
    (catalogue models) or before predicting (a loaded model, a model given by path); not with ``force``."""
    from volseg.segmenters import applicability as fit

    from volseg.segmenters.subset import resolve_model

    force = loader.options.force
    scope = None if loader.segmenter is not None or force else fit.scope_of_name(resolve_model(loader.options))
    if scope is not None:
        fit.check_applicable(image.volume, scope, modality=image.source.modality, path=about)
    segmenter = loader.get(timings)
    if scope is None and not force:
        fit.check_applicable(image.volume, fit.scope_of_segmenter(segmenter), modality=image.source.modality,
                             path=about)
    return segmenter


@contextlib.contextmanager
def naming(about: str) -> Iterator[None]:
    """Errors raised without a file name get ``about`` (the input) as theirs."""
    try:
        yield
    except VolsegError as exc:
        if exc.path is not None:
            raise
        raise type(exc)(exc.message, path=about, hint=exc.hint) from exc


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
