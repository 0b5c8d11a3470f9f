"""Cohort tables from many studies' report.json files (``volseg collect OUTDIR``).

* ``cohort_volumetry.csv``: one row per study; ``<structure>_volume_ml`` per structure, then QC
  columns ``<structure>_touches_fov`` and ``<structure>_qc_flags`` (``;``-separated), plus
  ``n_warnings``, model, schema version. Cells are the per-study volumetry.csv cells, rendered by the
  same function (:func:`volseg.reports.tables.volumetry_rows`), so the numbers are equal as text.
* ``cohort_lesions.csv``: every lesion / lymph-node instance of every study, with its study_id.
* ``cohort_failures.csv``: every study whose latest ``volseg batch`` run failed (its failure record):
  study_id, folder, model, stage, error class, exit code, one-line error, time. Always written
  (a header only when nothing failed).
* ``index.html``: failed studies with their errors first, then links to every study page, distribution plots per structure with outliers
  (beyond 1.5 IQR) and QC-flagged studies marked (:mod:`volseg.reports.cohort_html`).

Reports are found recursively, so the outputs of several shards or run folders merge. The same study
found twice (same study_id and same input) keeps its newest report; different studies that share a
study_id are both kept, the later ones renamed ``<study_id>@<folder>``. An unreadable report is
skipped and listed, the rest go on.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from volseg.errors import VolsegError
from volseg.io.atomic import ensure_writable_dir, write_text
from volseg.reports import tables
from volseg.reports.cohort_types import (  # noqa: F401 - file names and types re-exported for callers
    COHORT_FAILURES,
    COHORT_LESIONS,
    COHORT_VOLUMETRY,
    INDEX_HTML,
    REPORT_JSON,
    CohortResult,
    CohortStudy,
    structure_names,
    study_page,
)
from volseg.reports.cohort_types import relative as _rel
from volseg.reports.failure_records import find_failures
from volseg.reports.html import qc_flags
from volseg.reports.model import Report
from volseg.reports.schema import load_report

log = logging.getLogger(__name__)

FAILURE_COLUMNS = ("study_id", "folder", "model", "model_version", "stage", "error_class", "exit_code", "error",
                   "time")
STUDY_COLUMNS = ("study_id", "report", "schema_version", "model", "model_version", "device", "created_utc",
                 "n_structures", "n_qc_flagged", "n_instances", "n_warnings")


def find_reports(out_dir: str | Path) -> list[Path]:
    """Every report.json under ``out_dir`` (recursively; hidden and temp folders skipped), sorted."""
    root = Path(out_dir)
    found = [p for p in root.rglob(REPORT_JSON)
             if not any(part.startswith(".") for part in p.relative_to(root).parts)]
    return sorted(found)


def load_studies(paths: Sequence[Path], root: Path) -> tuple[list[CohortStudy], list[tuple[str, str]], list[str]]:
    loaded: list[CohortStudy] = []
    skipped: list[tuple[str, str]] = []
    notes: list[str] = []
    for path in paths:
        try:
            report = load_report(path)
        except VolsegError as exc:
            skipped.append((_rel(path, root), exc.message))
            log.warning("skipped %s: %s", _rel(path, root), exc.message)
            continue
        loaded.append(CohortStudy(report.study_id, report, path))
    kept: dict[str, CohortStudy] = {}
    for study in sorted(loaded, key=lambda s: (s.report.provenance.created_utc, str(s.path))):
        same = kept.get(study.study_id)
        if same is not None and _same_input(same.report, study.report):
            notes.append(f"{study.study_id}: {_rel(same.path, root)} replaced by the newer {_rel(study.path, root)}")
            kept[study.study_id] = study
        elif same is not None:
            unique = f"{study.study_id}@{_rel(study.path.parent, root)}"
            notes.append(f"two different studies are named {study.study_id}; the one in "
                         f"{_rel(study.path, root)} is listed as {unique}")
            kept[unique] = CohortStudy(unique, study.report, study.path)
        else:
            kept[study.study_id] = study
    return sorted(kept.values(), key=lambda s: s.study_id), skipped, notes


def volumetry_table(studies: Sequence[CohortStudy], root: Path) -> tuple[list[str], list[dict[str, object]]]:
    names = structure_names(studies)
    columns = list(STUDY_COLUMNS)
    columns += [f"{n}_volume_ml" for n in names]
    columns += [f"{n}_touches_fov" for n in names] + [f"{n}_qc_flags" for n in names]
    rows = []
    for s in studies:
        r, model = s.report, s.report.provenance.model
        row: dict[str, object] = {
            "study_id": s.study_id, "report": _rel(s.path, root), "schema_version": r.schema_version,
            "model": model.name if model else "", "model_version": model.version if model else "",
            "device": r.provenance.device or "", "created_utc": r.provenance.created_utc,
            "n_structures": len(r.structures), "n_qc_flagged": sum(1 for x in r.structures if qc_flags(x)),
            "n_instances": len(r.instances), "n_warnings": len(r.warnings),
        }
        cells = {c["name"]: c for c in tables.volumetry_rows(r)}
        for structure in r.structures:
            cell = cells[structure.name]
            row[f"{structure.name}_volume_ml"] = cell["volume_ml"]
            row[f"{structure.name}_touches_fov"] = cell["touches_fov"]
            row[f"{structure.name}_qc_flags"] = ";".join(qc_flags(structure))
        rows.append(row)
    return columns, rows


def lesion_table(studies: Sequence[CohortStudy]) -> tuple[list[str], list[dict[str, object]]]:
    """Rows of every instance, rendered exactly like each study's lesions.csv."""
    rows: list[dict[str, object]] = []
    for s in studies:
        rows += [{**row, "study_id": s.study_id} for row in tables.lesion_rows(s.report)]
    return list(tables.LESIONS_COLUMNS), rows


def collect(out_dir: str | Path, *, html: bool = True) -> CohortResult:
    """Write cohort_volumetry.csv, cohort_lesions.csv and index.html into ``out_dir``."""
    root = ensure_writable_dir(out_dir)
    studies, skipped, notes = load_studies(find_reports(root), root)
    columns, rows = volumetry_table(studies, root)
    outputs = {"cohort_volumetry": write_text(root / COHORT_VOLUMETRY, tables.to_csv(rows, columns))}
    lcolumns, lrows = lesion_table(studies)
    outputs["cohort_lesions"] = write_text(root / COHORT_LESIONS, tables.to_csv(lrows, lcolumns))
    failures = find_failures(root)
    outputs["cohort_failures"] = write_text(root / COHORT_FAILURES, tables.to_csv(failure_rows(failures),
                                                                                 list(FAILURE_COLUMNS)))
    result = CohortResult(studies, skipped, notes, outputs, failures)
    if html:
        from volseg.reports.cohort_html import render_index

        outputs["index"] = write_text(root / INDEX_HTML, render_index(result, root))
    log.info("collected %d studies (%d skipped, %d failed)", len(studies), len(skipped), len(failures))
    return result


def failure_rows(failures: Sequence) -> list[dict[str, object]]:
    """cohort_failures.csv rows: one per study whose latest batch run failed."""
    return [{c: getattr(f, c) for c in FAILURE_COLUMNS} for f in failures]


def _same_input(a: Report, b: Report) -> bool:
    return (a.input.file_name, a.input.shape, a.input.spacing_mm) == (b.input.file_name, b.input.shape,
                                                                      b.input.spacing_mm)

