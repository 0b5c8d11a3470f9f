"""The :class:`Segmenter` protocol every model implements, and the progress callback type.

A segmenter is loaded once (its constructor loads weights and picks the device) and then predicts
many volumes. ``predict`` returns a label :class:`~volseg.volume.Volume` on **exactly** the input
grid: same shape, same affine. Classes are described by ``labels`` (index → name, colour, codes).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from volseg.labels import LabelTable
from volseg.volume import Volume

#: progress(stage, done, total): e.g. ("sliding window", 12, 40); the CLI renders it with Rich.
ProgressCallback = Callable[[str, int, int], None]


def no_progress(stage: str, done: int, total: int) -> None:
    """The default progress callback: does nothing."""


@runtime_checkable
class Segmenter(Protocol):
    name: str
    labels: LabelTable

    def predict(self, volume: Volume, *, modality: str | None = None,
                progress: ProgressCallback = no_progress) -> Volume:
        """Segment ``volume``; returns a label map on exactly its grid."""
        ...

    def provenance(self) -> dict[str, Any]:
        """What produced the labels: model name/version, weight hashes, device, settings."""
        ...


def check_on_grid(labels: Volume, volume: Volume, model: str) -> Volume:
    """Guard every backend's output: a label map must lie exactly on the input grid."""
    from volseg.errors import ModelError

    if labels.shape != volume.shape or not (labels.affine == volume.affine).all():
        raise ModelError(
            f"model {model!r} returned labels of shape {labels.shape} off the input grid {volume.shape}"
        )
    return labels
