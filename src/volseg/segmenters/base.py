"""The :class:`Segmenter` protocol every model implements, and the progress callback type.

A segmenter is loaded once (its constructor loads weights and picks the device) and then predicts
many volumes. ``predict`` returns a label :class:`~volseg.volume.Volume` on **exactly** the input
grid: same shape, same affine. Classes are described by ``labels`` (index → name, colour, codes).

Backends implement ``predict`` for a :class:`~volseg.volume.Volume`; the registry passes every
segmenter it loads through :func:`accepting_images`, so that ``predict`` also takes a path, a
nibabel or a SimpleITK image (converted once, by :func:`volseg.io.convert.as_volume`).
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from volseg.labels import LabelTable
from volseg.volume import Volume

if TYPE_CHECKING:
    from volseg.segmenters.catalogue import ModelEntry
    from volseg.segmenters.provenance import ModelProvenance

#: progress(stage, done, total): e.g. ("sliding window", 12, 40); the CLI renders it with Rich.
ProgressCallback = Callable[[str, int, int], None]


def no_progress(stage: str, done: int, total: int) -> None:
    """The default progress callback: does nothing."""


@runtime_checkable
class Segmenter(Protocol):
    name: str
    labels: LabelTable
    #: the catalogue entry it was loaded from; None for a user's own model given by path
    entry: ModelEntry | None

    def predict(self, volume: Volume, *, modality: str | None = None,
                progress: ProgressCallback = no_progress) -> Volume:
        """Segment ``volume`` (once loaded by the registry: or a path, nibabel or SimpleITK image);
        returns a label map on exactly its grid."""
        ...

    def provenance(self) -> ModelProvenance:
        """What produced the labels: model name/version, backend, weight hashes, device, settings
        (``.as_dict()``: the report's ``provenance.model``)."""
        ...


def check_on_grid(labels: Volume, volume: Volume, model: str) -> Volume:
    """Guard every backend's output: a label map must lie exactly on the input grid."""
    from volseg.errors import ModelError

    if labels.shape != volume.shape or not (labels.affine == volume.affine).all():
        raise ModelError(
            f"model {model!r} returned labels of shape {labels.shape} off the input grid {volume.shape}"
        )
    return labels


def accepting_images(segmenter):
    """``segmenter`` with a ``predict`` that also takes what :func:`volseg.io.convert.as_volume` takes.

    The conversion (and a TypeError naming what is accepted) happens here, once, for every backend.
    """
    predict = segmenter.predict
    if getattr(predict, "accepts_images", False):
        return segmenter

    @functools.wraps(predict)
    def predict_image(image, *, modality: str | None = None,
                      progress: ProgressCallback = no_progress) -> Volume:
        from volseg.io.convert import as_volume

        volume = as_volume(image)
        return predict(volume, modality=modality or volume.meta.get("modality"), progress=progress)

    predict_image.accepts_images = True  # type: ignore[attr-defined]
    segmenter.predict = predict_image
    return segmenter
