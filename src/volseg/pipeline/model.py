"""The run's model: loaded once, when first needed, after the input was checked against it; and
names for inputs, so that errors name the file they are about."""
from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from volseg.errors import VolsegError

if TYPE_CHECKING:
    from volseg.io import LoadedImage
    from volseg.options import SegmentOptions
    from volseg.segmenters.base import Segmenter
    from volseg.segmenters.engine.settings import EngineOverrides


def input_names(input: Any, study_id: str | None) -> tuple[str, str]:
    """(study id, the name errors give): from the path, else ``study_id`` or "study"."""
    from volseg.io import study_name
    from volseg.io.convert import DEFAULT_STUDY_ID, is_path

    if is_path(input):
        return study_id or study_name(input), str(Path(input))
    study_id = study_id or DEFAULT_STUDY_ID
    return study_id, study_id


def unique_study_names(paths: list[Path]) -> list[str]:
    """Study names from the paths, made unique with -2, -3… in input order."""
    from volseg.io import study_name

    names: list[str] = []
    for p in paths:
        base = study_name(p)
        name, n = base, 2
        while name in names:
            name, n = f"{base}-{n}", n + 1
        names.append(name)
    return names


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


def check_fits(image: LoadedImage, segmenter: Segmenter, *, force: bool) -> None:
    """A loaded model must fit the input (modality, HU, body region) unless ``force``."""
    if force:
        return
    from volseg.segmenters.applicability import check_applicable, scope_of_segmenter

    check_applicable(image.volume, scope_of_segmenter(segmenter), modality=image.source.modality,
                     path=image.source.path)


def load_model(model: str | None = None, *, device: str = "auto", trust: bool = False,
               engine: EngineOverrides | Mapping[str, Any] | None = None) -> Segmenter:
    """Load a model once (see :func:`volseg.api.load_model`)."""
    from volseg.segmenters.registry import load_segmenter

    return load_segmenter(model, device=device, trust=trust, engine=engine)


@contextlib.contextmanager
def naming(about: str) -> Iterator[None]:
    """Errors raised without a file name get ``about`` (the input) as theirs."""
    try:
        yield
    except VolsegError as exc:
        if exc.path is not None:
            raise
        raise type(exc)(exc.message, path=about, hint=exc.hint) from exc
