"""A catalogue entry's ``cascade`` at run time: find the region with the crop model, cut it, run the
model on the cut, put the labels back on the full grid.

TotalSegmentator 2.18 does this for its subtasks (python_api.py ``totalsegmentator``, nnunet.py
``nnUNet_predict_image``, cropping.py ``crop_to_mask``/``undo_crop``):

1. the crop model labels the whole input (the 3 mm total with ``robust_crop``, else the 6 mm one);
2. the crop classes form a mask on the input grid; an empty mask gives an empty label map;
3. the box is the mask's bounding box along each array axis, widened by the margin (mm become whole
   voxels per axis by truncation: ``int(margin_mm / spacing)``) and clipped to the image;
4. the input is cut to the box (into int32: truncation toward zero) and the model runs on the cut
   alone (its own reorientation and resampling start from the cut's grid);
5. its labels go into a zero label map of the input's shape (``undo_crop``).

The box is computed in array indices of the input as given; it is the same physical region for any
axis order or flip of the same grid, so it does not depend on how a reader orders the axes.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from volseg.errors import ModelError
from volseg.volume import Volume

if TYPE_CHECKING:
    from volseg.segmenters.base import ProgressCallback, Segmenter
    from volseg.segmenters.catalogue import Cascade, ModelEntry
    from volseg.segmenters.provenance import ModelProvenance

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CropBox:
    """Half-open index ranges ``[lower, upper)`` along the three array axes."""

    lower: tuple[int, int, int]
    upper: tuple[int, int, int]

    def __post_init__(self) -> None:
        if any(lo < 0 or hi <= lo for lo, hi in zip(self.lower, self.upper)):
            raise ValueError(f"invalid crop box {self.lower}..{self.upper}")

    @property
    def slices(self) -> tuple[slice, slice, slice]:
        return tuple(slice(lo, hi) for lo, hi in zip(self.lower, self.upper))  # type: ignore[return-value]

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(hi - lo for lo, hi in zip(self.lower, self.upper))  # type: ignore[return-value]

    def as_dict(self) -> dict[str, list[int]]:
        return {"lower": list(self.lower), "upper": list(self.upper)}


def margin_voxels(cascade: Cascade, spacing: Sequence[float]) -> tuple[int, int, int]:
    """The margin in whole voxels per array axis: mm divided by the spacing and truncated
    (TotalSegmentator's ``(np.array(addon) / zooms).astype(int)``)."""
    if cascade.margin is None:
        return (0, 0, 0)
    margin = np.asarray(cascade.margin, dtype=np.float64)
    if cascade.margin_unit == "mm":
        margin = margin / np.asarray(spacing, dtype=np.float64)
    return tuple(int(v) for v in margin.astype(int))  # type: ignore[return-value]


def crop_box(mask: np.ndarray, margin: Sequence[int]) -> CropBox | None:
    """The bounding box of ``mask`` widened by ``margin`` voxels on both sides and clipped to the
    array; None when the mask is empty."""
    if mask.ndim != 3:
        raise ValueError("crop_box needs a 3-D mask")
    lower, upper = [], []
    for axis, (n, m) in enumerate(zip(mask.shape, margin)):
        others = tuple(a for a in range(3) if a != axis)
        hits = np.flatnonzero(mask.any(axis=others))
        if hits.size == 0:
            return None
        lower.append(max(0, int(hits[0]) - int(m)))
        upper.append(min(int(n), int(hits[-1]) + 1 + int(m)))
    return CropBox(tuple(lower), tuple(upper))  # type: ignore[arg-type]


def crop_volume(volume: Volume, box: CropBox, *, cast: str | None = None) -> Volume:
    """The part of ``volume`` inside ``box``, its affine moved to the box's first voxel."""
    array = volume.array[box.slices]
    if cast is not None:
        array = np.asarray(array).astype(cast)  # float → int truncates toward zero, as numpy does
    affine = np.array(volume.affine, dtype=np.float64)
    affine[:3, 3] = (affine @ np.array([*box.lower, 1.0]))[:3]
    return Volume(np.ascontiguousarray(array), affine, meta=volume.meta)


def put_back(labels: Volume, box: CropBox, like: Volume) -> Volume:
    """``labels`` (on the cut) placed into a zero label map on ``like``'s grid."""
    if labels.shape != box.shape:
        raise ModelError(f"labels of shape {labels.shape} do not fit the crop box {box.shape}")
    full = np.zeros(like.shape, dtype=labels.array.dtype)
    full[box.slices] = labels.array
    return Volume(full, like.affine, meta=labels.meta)


def crop_class_indices(crop_model: Segmenter, classes: Sequence[str]) -> list[int]:
    """The crop model's label indices of ``classes`` (the catalogue checked they exist)."""
    by_name = {name: index for index, name in crop_model.labels.names().items()}
    missing = [c for c in classes if c not in by_name]
    if missing:
        raise ModelError(f"crop model {crop_model.name!r} has no classes {missing}")
    return [by_name[c] for c in classes]


class CascadeSegmenter:
    """``inner`` run on the region ``crop_model`` finds (see the module docstring)."""

    def __init__(self, inner: Segmenter, crop_model: Segmenter, cascade: Cascade) -> None:
        self.inner, self.crop_model, self.cascade = inner, crop_model, cascade
        self.name, self.labels, self.entry = inner.name, inner.labels, inner.entry
        self._indices = crop_class_indices(crop_model, cascade.classes)
        self._last: dict[str, Any] = {}

    def region(self, volume: Volume, *, modality: str | None,
               progress: ProgressCallback) -> CropBox | None:
        """The crop box on ``volume``'s grid (None: no crop class found)."""
        first = self.crop_model.predict(volume, modality=modality, progress=progress)
        mask = np.isin(np.asarray(first.array), self._indices)
        return crop_box(mask, margin_voxels(self.cascade, volume.spacing))

    def predict(self, volume: Volume, *, modality: str | None = None,
                progress: ProgressCallback | None = None) -> Volume:
        from volseg.segmenters.base import check_on_grid, no_progress

        progress = progress or no_progress
        box = self.region(volume, modality=modality, progress=progress)
        if box is None:
            log.warning("%s: the crop model %s found none of %s; no labels", self.name, self.crop_model.name,
                        ", ".join(self.cascade.classes))
            self._last = {"crop_model": self.crop_model.name, "crop_box": None}
            return Volume(np.zeros(volume.shape, dtype=np.uint8), volume.affine, meta=volume.meta)
        log.info("%s: cropping %s to %s (box %s..%s from %s)", self.name, volume.shape, box.shape, box.lower,
                 box.upper, self.crop_model.name)
        cut = crop_volume(volume, box, cast=self.cascade.cast)
        labels = check_on_grid(self.inner.predict(cut, modality=modality, progress=progress), cut, self.name)
        self._last = {"crop_model": self.crop_model.name, "crop_box": box.as_dict()}
        return put_back(labels, box, volume)

    def provenance(self) -> ModelProvenance:
        """The model's provenance, with the crop model and the last run's box in ``details``."""
        from dataclasses import replace

        own = self.inner.provenance()
        first = self.crop_model.provenance()
        cascade = {"crop_model": first.name, "crop_model_version": first.version,
                   "crop_model_weights": list(first.weights), "classes": list(self.cascade.classes),
                   "margin": list(self.cascade.margin) if self.cascade.margin is not None else None,
                   "margin_unit": self.cascade.margin_unit, **self._last}
        return replace(own, details={**own.details, "cascade": cascade})


def require_crop_model(entry: ModelEntry, *, installed: Callable[[str], bool]) -> None:
    """A ModelError naming the download command when the crop model's weights are not installed
    (``installed``: the registry's :func:`~volseg.segmenters.registry.is_installed`)."""
    cascade = entry.cascade
    if cascade is not None and not installed(cascade.model):
        raise ModelError(f"model {entry.name!r} first runs {cascade.model!r} to find its region, and the "
                         f"weights of {cascade.model!r} are not installed",
                         hint=f"volseg models download {cascade.model}")


def with_cascade(segmenter: Segmenter, entry: ModelEntry, load: Callable[[str], Segmenter]) -> Segmenter:
    """``segmenter`` wrapped in its entry's cascade (unchanged without one); ``load(name)`` loads the
    crop model with the same device and engine settings."""
    if entry.cascade is None:
        return segmenter
    return CascadeSegmenter(segmenter, load(entry.cascade.model), entry.cascade)
