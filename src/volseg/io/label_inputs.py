"""The inputs of ``volseg measure``: a segmentation (label map, masks folder or DICOM SEG), its
image and an organ map, each brought losslessly onto one grid (:func:`volseg.io.regrid.onto_grid`).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from volseg.errors import UsageError
from volseg.io import LoadedImage, read_image
from volseg.io.masks import as_label_volume, present_labels, read_segmentation
from volseg.io.regrid import onto_grid
from volseg.labels import LabelTable, read_labels
from volseg.volume import Volume


@dataclass(frozen=True)
class MeasureInputs:
    """The label map (on the image's grid when an image is given), its names, the image and warnings."""

    segmentation: LoadedImage
    labels: Volume
    table: LabelTable
    image: LoadedImage | None
    warnings: tuple[str, ...]


def read_measure_inputs(segmentation: str | Path, *, image: str | Path | None = None,
                        labels: str | Path | None = None) -> MeasureInputs:
    seg, named, warnings = read_segmentation(segmentation)
    source = read_image(image) if image else None
    volume = as_label_volume(seg.volume, segmentation)
    if source is not None:
        volume = onto_grid(volume, source.volume, path=segmentation,
                           allow_subgrid=seg.source.modality == "SEG")  # a SEG holds only some frames
    table = read_labels(labels) if labels else named or present_labels(volume)
    return MeasureInputs(seg, volume, table, source, tuple(warnings))


def read_organs(organs, organ_labels, labels: Volume) -> tuple[Volume | None, LabelTable | None]:
    """The organ map of the same study (onto the segmentation's grid, losslessly) and its names."""
    if organs is None:
        if organ_labels is not None:
            raise UsageError("organ labels given without an organ segmentation", hint="add --organs SEG")
        return None, None
    seg, named, _ = read_segmentation(organs)
    volume = onto_grid(as_label_volume(seg.volume, organs), labels, path=organs, what="organ segmentation",
                        against="segmentation")
    return volume, (read_labels(organ_labels) if organ_labels else named or present_labels(volume))
