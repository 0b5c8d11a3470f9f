"""The DICOM outputs of a study segmented from a DICOM series (``--dicom``, ``--rtstruct``).

``segmentation.seg.dcm`` (DICOM SEG, :mod:`volseg.reports.dicom_seg`) and ``measurements.sr.dcm``
(Comprehensive 3D SR, TID 1500, :mod:`volseg.reports.dicom_sr`) with ``dicom``; ``structures.rtstruct.dcm``
(RT Structure Set, :mod:`volseg.reports.dicom_rtstruct`) with ``rtstruct``. All in the source study and
frame of reference with the source's patient and study identification, or, with ``anonymize``, one
coherent de-identified set with mapped UIDs (:mod:`volseg.reports.dicom_source`).

:func:`dicom_preflight` runs before segmentation: it fails early when highdicom is missing (SEG/SR)
and returns the warnings the report must carry (input not DICOM, derived UIDs, uncoded classes).
"""
from __future__ import annotations

import logging
from pathlib import Path

from volseg.errors import DependencyError
from volseg.io.atomic import atomic_path, ensure_writable_dir
from volseg.io.types import ImageSource
from volseg.labels import LabelTable
from volseg.reports.dicom_seg import build_seg, segment_numbers, uncoded_classes
from volseg.reports.dicom_source import source_series
from volseg.reports.dicom_sr import build_sr
from volseg.reports.model import Report
from volseg.volume import Volume

log = logging.getLogger(__name__)

SEG_FILE = "segmentation.seg.dcm"
SR_FILE = "measurements.sr.dcm"
RTSTRUCT_FILE = "structures.rtstruct.dcm"
NOT_DICOM = "--dicom ignored: the input is not a DICOM series (DICOM SEG/SR reference source images)"
NOT_DICOM_RT = "--rtstruct ignored: the input is not a DICOM series (an RTSTRUCT references source images)"


def require_highdicom() -> None:
    try:
        import highdicom  # noqa: F401
    except ImportError as exc:
        raise DependencyError("--dicom needs highdicom, which is not installed",
                              hint="pip install 'volseg[dicom]'") from exc


def dicom_preflight(source: ImageSource, table: LabelTable, *, anonymize: bool = False, seg_sr: bool = True,
                    rtstruct: bool = False) -> list[str]:
    """Warnings for the report; raises when the DICOM outputs cannot be written at all."""
    if source.kind != "dicom" or not source.headers:  # not read from a DICOM series by volseg.io
        return ([NOT_DICOM] if seg_sr else []) + ([NOT_DICOM_RT] if rtstruct else [])
    if seg_sr:
        require_highdicom()
    warnings = list(source_series(source, anonymize=anonymize).warnings)
    uncoded = uncoded_classes(table)
    if uncoded and seg_sr:
        shown = ", ".join(uncoded[:8]) + (f" and {len(uncoded) - 8} more" if len(uncoded) > 8 else "")
        warnings.append(f"DICOM SEG: {len(uncoded)} class(es) have no SNOMED CT codes in the catalogue and are "
                        f"coded as the generic 'Anatomical Structure' (SCT 91723000): {shown}")
    if anonymize:
        warnings.append("DICOM outputs anonymised: patient and study identifiers removed and every source UID "
                        "mapped; their references only resolve against images anonymised with the same mapping")
    return warnings


def write_dicom_outputs(out_dir: str | Path, report: Report, table: LabelTable, labels: Volume,
                        source: ImageSource, *, anonymize: bool = False, seg_sr: bool = True,
                        rtstruct: bool = False, instances=()) -> dict[str, Path]:
    """Write the SEG and the SR (``seg_sr``) and the RTSTRUCT (``rtstruct``) next to the other outputs
    (atomically), from the source headers the reader kept (``source.headers``); return their paths."""
    from pydicom.uid import generate_uid

    out = ensure_writable_dir(out_dir)
    sources = source_series(source, anonymize=anonymize)
    model = report.provenance.model
    name, version = (model.name, model.version) if model else ("volseg", "")
    datasets = []
    if seg_sr:
        require_highdicom()
        seg = build_seg(sources, labels, table, model_name=name, model_version=version,
                        algorithm_family=_algorithm_family(name), series_uid=generate_uid(), sop_uid=generate_uid())
        sr = build_sr(report, seg, sources, segment_numbers=segment_numbers(labels), instances=list(instances),
                      series_uid=generate_uid(), sop_uid=generate_uid())
        datasets += [("dicom_seg", seg, SEG_FILE), ("dicom_sr", sr, SR_FILE)]
        log.info("DICOM SEG: %d segments, %d frames", len(seg.SegmentSequence), int(seg.NumberOfFrames))
    if rtstruct:
        from volseg.reports.dicom_rtstruct import build_rtstruct

        rt = build_rtstruct(sources, labels, table, model_name=name, numbers=segment_numbers(labels),
                            series_uid=generate_uid(), sop_uid=generate_uid())
        datasets.append(("dicom_rtstruct", rt, RTSTRUCT_FILE))
        log.info("RTSTRUCT: %d structures", len(rt.StructureSetROISequence))
    return {key: _write(out / file_name, dataset) for key, dataset, file_name in datasets}


def _write(path: Path, dataset) -> Path:
    from pydicom import dcmwrite

    with atomic_path(path) as tmp:
        dcmwrite(tmp, dataset, enforce_file_format=True)
    return path


def _algorithm_family(model_name: str) -> str:
    """CID 7162 keyword: rule-based built-in models use morphological operations, the rest AI."""
    try:
        from volseg.segmenters.catalogue import get_entry

        backend: str = get_entry(model_name).backend
    except Exception:  # noqa: BLE001 - a model outside the catalogue (custom folder): treat as AI
        backend = ""
    return "MorphologicalOperations" if backend == "classic" else "ArtificialIntelligence"
