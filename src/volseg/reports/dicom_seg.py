"""DICOM Segmentation (SEG) of a label map on a DICOM source series, written with highdicom.

* One BINARY segment per label present in the label map, numbered 1..N in label order
  (:func:`segment_numbers`); empty frames are omitted, every frame references its source slice
  (DerivationImageSequence → SourceImageSequence) and carries that slice's ImagePositionPatient.
* Segments are coded with the catalogue's SNOMED CT codes (``snomed_category``/``snomed_type``,
  written ``SCT:<code>``; the meaning comes from pydicom's code dictionary, else the class name).
  A class without codes gets the generic SNOMED CT "Anatomical Structure" (91723000) as category and
  type; :func:`uncoded_classes` names them so that the report can say so.
* The segment colour is the label colour (RecommendedDisplayCIELabValue).
"""
from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import cast

import numpy as np

from volseg import __version__
from volseg.errors import InputError
from volseg.labels import LabelInfo, LabelTable
from volseg.reports.dicom_source import SourceSeries, check_on_source_grid
from volseg.volume import Volume

SEG_SERIES_NUMBER = 9701
SR_SERIES_NUMBER = 9702
MANUFACTURER = "volseg"
DEVICE_SERIAL_NUMBER = "none"


def segment_numbers(labels: Volume) -> dict[int, int]:
    """label index → SEG segment number (1..N) for the labels present in ``labels``."""
    present = [int(v) for v in np.unique(np.asarray(labels.array)) if v != 0]
    return {label: n for n, label in enumerate(present, start=1)}


def uncoded_classes(table: LabelTable, present: Mapping[int, int] | None = None) -> list[str]:
    """Names of (present) classes without SNOMED codes: coded as generic "Anatomical Structure"."""
    return [info.name for i, info in table.items()
            if (present is None or i in present) and not (info.snomed_category and info.snomed_type)]


def parse_code(text: str, fallback_meaning: str):
    """``"SCT:10200004"`` (optionally ``"SCT:10200004|Liver"``) → a pydicom ``Code``."""
    from pydicom.sr.coding import Code

    body, _, meaning = text.partition("|")
    scheme, sep, value = body.partition(":")
    if not sep or not scheme.strip() or not value.strip():
        raise InputError(f"invalid code {text!r}: expected SCHEME:VALUE such as SCT:10200004")
    scheme, value = scheme.strip(), value.strip()
    return Code(value, scheme, meaning.strip() or _known_meaning(scheme, value) or fallback_meaning)


def property_codes(info: LabelInfo):
    """(category, type) codes of a class; generic "Anatomical Structure" for both when it has none."""
    from pydicom.sr.codedict import codes

    if info.snomed_category and info.snomed_type:
        return (parse_code(info.snomed_category, info.display_name),
                parse_code(info.snomed_type, info.display_name))
    return codes.SCT.AnatomicalStructure, codes.SCT.AnatomicalStructure


def build_seg(sources: SourceSeries, labels: Volume, table: LabelTable, *, model_name: str,
              model_version: str, algorithm_family: str = "ArtificialIntelligence", series_uid: str,
              sop_uid: str):
    """The highdicom ``Segmentation`` of ``labels`` (on the source grid, slice k = source file k)."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    check_on_source_grid(sources, labels)
    numbers = segment_numbers(labels)
    array = np.asarray(labels.array)
    lookup = np.zeros(int(array.max()) + 1, dtype=np.uint16)  # label index → segment number
    for label, number in numbers.items():
        lookup[label] = number
    frames = lookup[np.transpose(array, (2, 1, 0))]  # (k, row, column): frame k is source slice k
    algorithm = hd.AlgorithmIdentificationSequence(
        name=model_name[:64], version=model_version[:64] or "unknown", family=getattr(codes.cid7162, algorithm_family))
    descriptions = []
    for label, number in numbers.items():
        info = table[label] if label in table else LabelInfo(label, f"label_{label}", f"Label {label}", (255, 255, 255))
        category, kind = property_codes(info)
        descriptions.append(hd.seg.SegmentDescription(
            segment_number=number, segment_label=info.display_name[:64], segmented_property_category=category,
            segmented_property_type=kind, algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=algorithm, tracking_id=info.name[:64], tracking_uid=hd.UID(),
            display_color=hd.color.CIELabColor.from_rgb(*info.color)))
    if not descriptions:
        raise InputError("the label map is empty: no DICOM SEG to write")
    return hd.seg.Segmentation(
        source_images=list(sources.datasets), pixel_array=frames, pixel_measures=pixel_measures(sources, labels),
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY, segment_descriptions=descriptions,
        series_instance_uid=series_uid, series_number=SEG_SERIES_NUMBER, sop_instance_uid=sop_uid,
        instance_number=1, manufacturer=MANUFACTURER, manufacturer_model_name=model_name[:64],
        software_versions=f"volseg {__version__}", device_serial_number=DEVICE_SERIAL_NUMBER,
        content_label="VOLSEG", content_description=f"{model_name} segmentation"[:64],
        series_description=f"volseg {model_name} SEG"[:64],
    )


def pixel_measures(sources: SourceSeries, labels: Volume):
    """Pixel spacing and slice spacing from our geometry (never a source's signed SpacingBetweenSlices)."""
    import highdicom as hd

    direction = labels.direction
    normal = np.cross(direction[:, 0], direction[:, 1])
    between = abs(float(labels.affine[:3, 2] @ normal))  # plane-to-plane distance (also when sheared)
    thickness = sources.first.get("SliceThickness")
    return hd.PixelMeasuresSequence(
        pixel_spacing=(float(labels.spacing[1]), float(labels.spacing[0])),  # (row, column) spacing
        slice_thickness=float(thickness) if thickness not in (None, "") else between,
        spacing_between_slices=between,
    )


@lru_cache(maxsize=1)
def _meanings() -> dict[tuple[str, str], str]:
    from pydicom.sr import _concepts_dict

    # the private table is typed loosely (values: object): scheme → keyword → code → (meaning, CIDs)
    concepts = cast("dict[str, dict[str, dict[str, tuple[str, list[int]]]]]", _concepts_dict.concepts)
    out = {}
    for scheme, by_keyword in concepts.items():
        for entries in by_keyword.values():
            for value, (meaning, _cids) in entries.items():
                out[(scheme, value)] = meaning
    return out


def _known_meaning(scheme: str, value: str) -> str | None:
    try:
        return _meanings().get((scheme, value))
    except (ImportError, AttributeError, ValueError):  # pragma: no cover - private pydicom table moved
        return None
