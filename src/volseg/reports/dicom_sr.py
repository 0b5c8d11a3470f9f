"""DICOM Comprehensive 3D SR, TID 1500 Measurement Report, holding the report's numbers.

* One Volumetric ROI group (TID 1411) per structure present in the SEG: its ReferencedSegment
  points at the SEG instance and segment number (with the source images of that segment's frames);
  measurement "Volume" (SNOMED CT 118565006) in millilitres (UCUM ``ml``).
* One Measurement group (TID 1501) per lesion / lymph-node instance (when the report has them),
  tracked by its ``instance_id``: its volume (ml) and long/short axis diameters (SNOMED CT 103339001 /
  103340004, UCUM ``mm``), each axis with its two endpoints as a 3-D polyline in the source frame of
  reference (LPS mm).
* Observer: the volseg device; procedure reported: "<modality> unspecified body region" (LOINC).
* The evidence lists the source images and the SEG; patient and study attributes come from the same
  allowlisted source headers as the SEG (see :mod:`volseg.reports.dicom_source`).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from volseg import __version__
from volseg.reports.dicom_seg import MANUFACTURER, SR_SERIES_NUMBER
from volseg.reports.dicom_source import SourceSeries
from volseg.reports.model import Report

_PROCEDURES = {"CT": "CTUnspecifiedBodyRegion", "MR": "MRIUnspecifiedBodyRegion",
               "PT": "PETUnspecifiedBodyRegion", "NM": "NMUnspecifiedBodyRegion"}


def ucum_ml():
    from pydicom.sr.coding import Code

    return Code("ml", "UCUM", "milliliter")


def build_sr(report: Report, seg, sources: SourceSeries, *, segment_numbers: Mapping[int, int],
             instances: Sequence[Mapping[str, Any]], series_uid: str, sop_uid: str):
    """The highdicom ``Comprehensive3DSR`` for ``report`` referencing ``seg`` and the source images."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    device = hd.sr.DeviceObserverIdentifyingAttributes(uid=hd.UID(), name="volseg",
                                                       manufacturer_name=MANUFACTURER,
                                                       model_name=_model_name(report))
    context = hd.sr.ObservationContext(
        observer_device_context=hd.sr.ObserverContext(observer_type=codes.DCM.Device,
                                                      observer_identifying_attributes=device))
    groups: list = [_structure_group(report, seg, label, number) for label, number in segment_numbers.items()]
    frame_of_reference = str(sources.first.FrameOfReferenceUID)
    groups += [g for g in (_instance_group(i, frame_of_reference) for i in instances) if g is not None]
    modality = str(sources.first.get("Modality") or "CT")
    procedure = getattr(codes.LN, _PROCEDURES.get(modality, "CTUnspecifiedBodyRegion"))
    content = hd.sr.MeasurementReport(observation_context=context, procedure_reported=procedure,
                                      imaging_measurements=groups)
    return hd.sr.Comprehensive3DSR(
        evidence=[*sources.datasets, seg], content=content, series_instance_uid=series_uid,
        series_number=SR_SERIES_NUMBER, sop_instance_uid=sop_uid, instance_number=1,
        manufacturer=MANUFACTURER, is_complete=True, is_final=False, is_verified=False,
        series_description=f"volseg {_model_name(report)} measurements"[:64],
        software_versions=f"volseg {__version__}", manufacturer_model_name=_model_name(report)[:64],
    )


def _structure_group(report: Report, seg, label: int, number: int):
    import highdicom as hd
    from pydicom.sr.codedict import codes

    row = next((s for s in report.structures if s.label == label), None)
    name = row.name if row is not None else f"label_{label}"
    tracking = hd.sr.TrackingIdentifier(uid=hd.UID(), identifier=name[:64])
    measurements = []
    if row is not None:
        measurements.append(hd.sr.Measurement(name=codes.SCT.Volume, value=float(row.volume_ml), unit=ucum_ml()))
    description = seg.SegmentSequence[number - 1]
    finding = hd.sr.CodedConcept.from_dataset(description.SegmentedPropertyTypeCodeSequence[0])
    return hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=tracking, referenced_segment=referenced_segment(seg, number),
        finding_type=finding, measurements=measurements)


def referenced_segment(seg, number: int):
    """ReferencedSegment of segment ``number`` with the source images of its frames.

    (highdicom's ``ReferencedSegment.from_segmentation`` needs the segment number per frame, which a
    one-segment SEG keeps in the shared functional groups.)
    """
    import highdicom as hd

    shared = seg.SharedFunctionalGroupsSequence[0]
    sources: dict[str, Any] = {}  # SOP instance UID → hd.sr.SourceImageForSegmentation
    for item in seg.PerFrameFunctionalGroupsSequence:
        ident = item.get("SegmentIdentificationSequence") or shared.get("SegmentIdentificationSequence")
        if int(ident[0].ReferencedSegmentNumber) != number:
            continue
        for derivation in item.DerivationImageSequence:
            for src in derivation.SourceImageSequence:
                sources.setdefault(src.ReferencedSOPInstanceUID, hd.sr.SourceImageForSegmentation(
                    referenced_sop_class_uid=src.ReferencedSOPClassUID,
                    referenced_sop_instance_uid=src.ReferencedSOPInstanceUID))
    return hd.sr.ReferencedSegment(sop_class_uid=seg.SOPClassUID, sop_instance_uid=seg.SOPInstanceUID,
                                   segment_number=number, source_images=list(sources.values()))


def _instance_group(instance: Mapping[str, Any], frame_of_reference: str):
    import highdicom as hd
    from pydicom.sr.codedict import codes

    instance_id = str(instance.get("instance_id") or "")
    if not instance_id:
        return None
    measurements = []
    if instance.get("volume_ml") is not None:
        measurements.append(hd.sr.Measurement(name=codes.SCT.Volume, value=float(instance["volume_ml"]),
                                              unit=ucum_ml()))
    for key, code in (("long_axis", codes.SCT.LongAxis), ("short_axis", codes.SCT.ShortAxis)):
        value = instance.get(f"{key}_mm")
        if value is None:
            continue
        coordinates = None
        ends = instance.get(f"{key}_endpoints_ras_mm")
        if ends and len(ends) == 2:
            lps = np.asarray(ends, dtype=np.float64) * np.array([-1.0, -1.0, 1.0])
            coordinates = [hd.sr.CoordinatesForMeasurement3D(graphic_type=hd.sr.GraphicTypeValues3D.POLYLINE,
                                                             graphic_data=lps,
                                                             frame_of_reference_uid=frame_of_reference)]
        measurements.append(hd.sr.Measurement(name=code, value=float(value), unit=codes.UCUM.Millimeter,
                                              referenced_coordinates=coordinates))
    if not measurements:
        return None
    kind = codes.SCT.Lesion if instance.get("kind", "lesion") == "lesion" else codes.SCT.LymphNode
    return hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(), identifier=instance_id[:64]),
        finding_type=kind, measurements=measurements, qualitative_evaluations=_station(instance) or None)


def _station(instance: Mapping[str, Any]) -> list:
    """A lymph node's IASLC station as a qualitative evaluation (private codes: DICOM has none)."""
    import highdicom as hd

    station = instance.get("station")
    if instance.get("kind", "lesion") == "lesion" or not station or station == "unknown":
        return []
    return [hd.sr.QualitativeEvaluation(name=hd.sr.CodedConcept("IASLCStation", "99VOLSEG", "IASLC lymph node station"),
                                        value=hd.sr.CodedConcept(str(station), "99VOLSEG", f"IASLC station {station}"))]


def _model_name(report: Report) -> str:
    model = report.provenance.model
    return model.name if model else "volseg"
