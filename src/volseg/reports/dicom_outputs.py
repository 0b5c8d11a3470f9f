"""The DICOM outputs of a study segmented from a DICOM series (``volseg segment --dicom``).

``segmentation.seg.dcm`` (DICOM SEG, :mod:`volseg.reports.dicom_seg`) and ``measurements.sr.dcm``
(Comprehensive 3D SR, TID 1500, :mod:`volseg.reports.dicom_sr`), both in the source study and frame
of reference, without patient identifiers unless ``keep_phi`` (:mod:`volseg.reports.dicom_source`).

:func:`dicom_preflight` runs before segmentation: it fails early when highdicom is missing and
returns the warnings the report must carry (input not DICOM, derived UIDs, uncoded classes).
"""
from __future__ import annotations

import logging
from pathlib import Path

from volseg.errors import DependencyError
from volseg.io.atomic import atomic_path, ensure_writable_dir
from volseg.io.types import ImageSource
from volseg.labels import LabelTable
from volseg.reports.dicom_seg import build_seg, segment_numbers, uncoded_classes
from volseg.reports.dicom_source import read_source_series
from volseg.reports.dicom_sr import build_sr
from volseg.reports.model import Report
from volseg.volume import Volume

log = logging.getLogger(__name__)

SEG_FILE = "segmentation.seg.dcm"
SR_FILE = "measurements.sr.dcm"
NOT_DICOM = "--dicom ignored: the input is not a DICOM series (DICOM SEG/SR reference source images)"


def require_highdicom() -> None:
    try:
        import highdicom  # noqa: F401
    except ImportError as exc:
        raise DependencyError("--dicom needs highdicom, which is not installed",
                              hint="pip install 'volseg[dicom]'") from exc


def dicom_preflight(source: ImageSource, table: LabelTable, *, keep_phi: bool) -> list[str]:
    """Warnings for the report; raises when the DICOM outputs cannot be written at all."""
    if source.kind != "dicom" or not source.files:
        return [NOT_DICOM]
    require_highdicom()
    warnings = list(read_source_series(source.files, keep_phi=keep_phi).warnings)
    uncoded = uncoded_classes(table)
    if uncoded:
        shown = ", ".join(uncoded[:8]) + (f" and {len(uncoded) - 8} more" if len(uncoded) > 8 else "")
        warnings.append(f"DICOM SEG: {len(uncoded)} class(es) have no SNOMED CT codes in the catalogue and are "
                        f"coded as the generic 'Anatomical Structure' (SCT 91723000): {shown}")
    if not keep_phi:
        warnings.append("DICOM SEG/SR: patient and study identifiers replaced by placeholders "
                        "(PatientName ANONYMOUS; use --keep-phi to copy them from the source)")
    return warnings


def write_dicom_outputs(out_dir: str | Path, report: Report, table: LabelTable, labels: Volume,
                        source: ImageSource, *, keep_phi: bool, instances=()) -> dict[str, Path]:
    """Write the SEG and the SR next to the other outputs (atomically); return their paths."""
    import highdicom as hd
    from pydicom import dcmwrite

    require_highdicom()
    out = ensure_writable_dir(out_dir)
    sources = read_source_series(source.files, keep_phi=keep_phi)
    model = report.provenance.model
    name, version = (model.name, model.version) if model else ("volseg", "")
    seg = build_seg(sources, labels, table, model_name=name, model_version=version,
                    algorithm_family=_algorithm_family(name), series_uid=hd.UID(), sop_uid=hd.UID())
    sr = build_sr(report, seg, sources, segment_numbers=segment_numbers(labels), instances=list(instances),
                  series_uid=hd.UID(), sop_uid=hd.UID())
    written = {}
    for key, dataset, file_name in (("dicom_seg", seg, SEG_FILE), ("dicom_sr", sr, SR_FILE)):
        with atomic_path(out / file_name) as tmp:
            dcmwrite(tmp, dataset, enforce_file_format=True)
        written[key] = out / file_name
    log.info("wrote DICOM SEG (%d segments, %d frames) and SR", len(seg.SegmentSequence), int(seg.NumberOfFrames))
    return written


def _algorithm_family(model_name: str) -> str:
    """CID 7162 keyword: rule-based built-in models use morphological operations, the rest AI."""
    try:
        from volseg.segmenters.catalogue import get_entry

        backend = get_entry(model_name).backend
    except Exception:  # noqa: BLE001 - a model outside the catalogue (custom folder): treat as AI
        backend = ""
    return "MorphologicalOperations" if backend == "classic" else "ArtificialIntelligence"
