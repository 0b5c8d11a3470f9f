"""The comparison's DICOM SR: a Comprehensive 3D SR, TID 1500 Measurement Report, in the follow-up's study,
holding the change measurements. Written only when the follow-up image was read from a DICOM series
(its header summary, :attr:`volseg.io.types.ImageSource.headers`); patient and study attributes come from
the same allowlisted header copies as the study's own SEG/SR (:mod:`volseg.reports.dicom_source`, with
``anonymize`` the same de-identified mapping). The evidence lists the follow-up (last) series.

Measurement groups (TID 1501), all with method "RECIST 1.1" (DCM 126081):

* **one per lesion and time point**: tracking identifier the lesion's track (``track_id``: the baseline
  lesion id, or ``T<n>:<id>`` for a new lesion) with **one tracking UID per track**, so a lesion's groups
  at different time points are linked; Time Point Context (TID 1502): ``T<n>``, type Baseline (UMLS
  C1442488) at T0 else Posttreatment (DCM 126074), order n + 1, and the days from the baseline when
  known; measurements Volume (SCT 118565006, ml), Long Axis (SCT 103339001, mm), Short Axis
  (SCT 103340004, mm); finding type Lesion / Lymph node; at the baseline its Baseline Category
  (DCM 112016: Target / Non-Target Lesion at Baseline, DCM 112074 / 112075).
* **one per lesion match** (consecutive time points), at the later time point: tracking identifier
  ``T<a>-T<b> <before ids> > <after ids>`` (``none`` for no lesion); its match status (matched / new / disappeared / split /
  merged) as a qualitative evaluation, and the volume change (ml and %), diameter change (%) and volume
  doubling time (days) where known. DICOM has no codes for these: private coding scheme ``99VOLSEG``.
* **one per time point for RECIST 1.1** (one tracking UID across time points): sum of target diameters,
  changes from baseline and nadir (``99VOLSEG``), nadir sum, and from T1 on the response as Current
  Response (DCM 112048) valued Target Lesion Complete / Partial Response, Stable / Progressive Disease
  (DCM 112041 / 112042 / 112044 / 112043), or ``99VOLSEG`` NE (not evaluable).
"""
from __future__ import annotations

import logging
from pathlib import Path

from volseg import __version__
from volseg.compare.results import Comparison, LesionMatch, LesionMeasurement, RecistTimepoint, StudyRef
from volseg.io.atomic import atomic_path, ensure_writable_dir
from volseg.io.types import ImageSource
from volseg.reports.dicom_seg import MANUFACTURER
from volseg.reports.dicom_source import SourceSeries, source_series
from volseg.reports.dicom_sr import _PROCEDURES, ucum_ml

log = logging.getLogger(__name__)

COMPARISON_SR = "comparison.sr.dcm"
SR_SERIES_NUMBER = 9705
SCHEME = "99VOLSEG"
#: private concepts (no DICOM code exists): keyword -> meaning
PRIVATE = {
    "MatchStatus": "Lesion match status", "VolumeChange": "Volume change", "VolumeChangePercent": "Volume change",
    "DiameterChangePercent": "Long axis diameter change", "DoublingTime": "Volume doubling time",
    "SumOfDiameters": "Sum of target lesion diameters", "ChangeFromBaseline": "Sum change from baseline",
    "NadirSum": "Nadir sum of target lesion diameters", "ChangeFromNadir": "Sum change from nadir",
    "NE": "Not evaluable", "NewLesion": "New lesion",
}
_RESPONSE = {"CR": "TargetLesionCompleteResponse", "PR": "TargetLesionPartialResponse",
             "SD": "TargetLesionStableDisease", "PD": "TargetLesionProgressiveDisease"}


def is_dicom(source: ImageSource | None) -> bool:
    return source is not None and source.kind == "dicom" and bool(source.headers)


def write_comparison_sr(comparison: Comparison, out_dir: str | Path, *, source: ImageSource | None,
                        anonymize: bool = False) -> Path | None:
    """Write ``out_dir/comparison.sr.dcm`` (atomically) referencing the follow-up series ``source``;
    None (nothing written) when the follow-up was not read from a DICOM series."""
    if not is_dicom(source):
        log.info("no comparison DICOM SR: the follow-up image is not a DICOM series")
        return None
    from pydicom import dcmwrite
    from pydicom.uid import generate_uid

    from volseg.reports.dicom_outputs import require_highdicom

    require_highdicom()
    sources = source_series(source, anonymize=anonymize)  # type: ignore[arg-type]
    sr = build_comparison_sr(comparison, sources, series_uid=generate_uid(), sop_uid=generate_uid())
    path = ensure_writable_dir(out_dir) / COMPARISON_SR
    with atomic_path(path) as tmp:
        dcmwrite(tmp, sr, enforce_file_format=True)
    log.info("comparison DICOM SR: %d lesion measurements, %d changes", len(comparison.lesions),
             len(comparison.matches))
    return path


def build_comparison_sr(comparison: Comparison, sources: SourceSeries, *, series_uid: str, sop_uid: str):
    """The highdicom ``Comprehensive3DSR`` of ``comparison`` with ``sources`` (the follow-up) as evidence."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    device = hd.sr.DeviceObserverIdentifyingAttributes(uid=hd.UID(), name="volseg", manufacturer_name=MANUFACTURER,
                                                       model_name=_model_name(comparison))
    context = hd.sr.ObservationContext(observer_device_context=hd.sr.ObserverContext(
        observer_type=codes.DCM.Device, observer_identifying_attributes=device))
    tracks: dict[str, str] = {}  # track id -> tracking UID, shared by the track's groups
    groups = [_lesion_group(comparison, row, tracks) for row in comparison.lesions]
    groups += [_match_group(comparison, m) for m in comparison.matches]
    if comparison.recist is not None:
        recist_uid = hd.UID()
        groups += [_recist_group(comparison, t, recist_uid) for t in comparison.recist.timepoints]
    modality = str(sources.first.get("Modality") or "CT")
    procedure = getattr(codes.LN, _PROCEDURES.get(modality, "CTUnspecifiedBodyRegion"))
    content = hd.sr.MeasurementReport(observation_context=context, procedure_reported=procedure,
                                      imaging_measurements=groups)
    last = len(comparison.studies) - 1
    return hd.sr.Comprehensive3DSR(
        evidence=list(sources.datasets), content=content, series_instance_uid=series_uid,
        series_number=SR_SERIES_NUMBER, sop_instance_uid=sop_uid, instance_number=1, manufacturer=MANUFACTURER,
        is_complete=True, is_final=False, is_verified=False,
        series_description=f"volseg comparison T0-T{last} {_model_name(comparison)}"[:64],
        software_versions=f"volseg {__version__}", manufacturer_model_name=_model_name(comparison)[:64])


def private(keyword: str):
    import highdicom as hd

    return hd.sr.CodedConcept(keyword, SCHEME, PRIVATE[keyword])


def _lesion_group(comparison: Comparison, row: LesionMeasurement, tracks: dict[str, str]):
    import highdicom as hd
    from pydicom.sr.codedict import codes

    track = row.track_id or f"T{row.timepoint}:{row.lesion_id}"
    uid = tracks.setdefault(track, str(hd.UID()))
    measurements = [hd.sr.Measurement(name=codes.SCT.Volume, value=float(row.volume_ml), unit=ucum_ml()),
                    hd.sr.Measurement(name=codes.SCT.LongAxis, value=float(row.longest_diameter_mm),
                                      unit=codes.UCUM.Millimeter),
                    hd.sr.Measurement(name=codes.SCT.ShortAxis, value=float(row.short_axis_mm),
                                      unit=codes.UCUM.Millimeter)]
    evaluations = []
    if row.timepoint == 0 and row.recist_role in ("target", "non_target"):
        value = codes.DCM.TargetLesionAtBaseline if row.recist_role == "target" else codes.DCM.NonTargetLesionAtBaseline
        evaluations.append(hd.sr.QualitativeEvaluation(name=codes.DCM.BaselineCategory, value=value))
    return hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=uid, identifier=track[:64]),
        time_point_context=_time_point(comparison.studies[row.timepoint]), finding_type=_finding(row.kind),
        method=codes.DCM.RECIST1Point1, measurements=measurements, qualitative_evaluations=evaluations or None)


def _match_group(comparison: Comparison, m: LesionMatch):
    import highdicom as hd
    from pydicom.sr.codedict import codes

    before, after = ";".join(m.before_ids) or "none", ";".join(m.after_ids) or "none"
    identifier = f"T{m.from_timepoint}-T{m.to_timepoint} {before} > {after}"
    values = (("VolumeChange", m.volume_change_ml, ucum_ml()),
              ("VolumeChangePercent", m.volume_change_percent, codes.UCUM.Percent),
              ("DiameterChangePercent", m.diameter_change_percent, codes.UCUM.Percent),
              ("DoublingTime", m.doubling_time_days, codes.UCUM.Day))
    measurements = [hd.sr.Measurement(name=private(k), value=float(v), unit=unit) for k, v, unit in values
                    if v is not None]
    status = hd.sr.CodedConcept(m.status, SCHEME, f"Lesion {m.status}")
    return hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(), identifier=identifier[:64]),
        time_point_context=_time_point(comparison.studies[m.to_timepoint]), finding_type=_finding(m.kind),
        method=codes.DCM.RECIST1Point1, measurements=measurements or None,
        qualitative_evaluations=[hd.sr.QualitativeEvaluation(name=private("MatchStatus"), value=status)])


def _recist_group(comparison: Comparison, t: RecistTimepoint, uid: str):
    import highdicom as hd
    from pydicom.sr.codedict import codes

    mm, percent = codes.UCUM.Millimeter, codes.UCUM.Percent
    values = (("SumOfDiameters", t.sum_mm, mm), ("ChangeFromBaseline", t.change_from_baseline_percent, percent),
              ("NadirSum", t.nadir_sum_mm, mm), ("ChangeFromNadir", t.change_from_nadir_percent, percent))
    measurements = [hd.sr.Measurement(name=private(k), value=float(v), unit=unit) for k, v, unit in values
                    if v is not None]
    evaluations = []
    if t.category is not None:
        value = getattr(codes.DCM, _RESPONSE[t.category]) if t.category in _RESPONSE else private("NE")
        evaluations.append(hd.sr.QualitativeEvaluation(name=codes.DCM.CurrentResponse, value=value))
    return hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=uid, identifier="RECIST 1.1 target lesions"),
        time_point_context=_time_point(comparison.studies[t.timepoint]), method=codes.DCM.RECIST1Point1,
        measurements=measurements or None, qualitative_evaluations=evaluations or None)


def _time_point(study: StudyRef):
    import highdicom as hd
    from pydicom.sr.codedict import codes

    kind = codes.UMLS.Baseline if study.timepoint == 0 else codes.DCM.Posttreatment
    offset = None
    if study.days_from_baseline is not None:
        offset = hd.sr.LongitudinalTemporalOffsetFromEvent(value=float(study.days_from_baseline),
                                                          unit=codes.UCUM.Day, event_type=codes.DCM.Baseline)
    return hd.sr.TimePointContext(time_point=f"T{study.timepoint}", time_point_type=kind,
                                  time_point_order=study.timepoint + 1, temporal_offset_from_event=offset)


def _finding(kind: str):
    from pydicom.sr.codedict import codes

    return codes.SCT.Lesion if kind == "lesion" else codes.SCT.LymphNode


def _model_name(comparison: Comparison) -> str:
    return comparison.studies[-1].model_name or "volseg"
