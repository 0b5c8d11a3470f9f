"""What a cohort is made of, shared by the cohort tables (:mod:`volseg.reports.cohort`) and its page
(:mod:`volseg.reports.cohort_html`): file names, the loaded studies and the collected result."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from volseg.reports.failure_records import RecordedFailure
from volseg.reports.html import REPORT_HTML
from volseg.reports.model import Report

COHORT_VOLUMETRY = "cohort_volumetry.csv"
COHORT_LESIONS = "cohort_lesions.csv"
COHORT_FAILURES = "cohort_failures.csv"
INDEX_HTML = "index.html"
REPORT_JSON = "report.json"


@dataclass(frozen=True)
class CohortStudy:
    study_id: str  # unique within the cohort
    report: Report
    path: Path  # report.json


@dataclass(frozen=True)
class CohortResult:
    studies: list[CohortStudy]
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (relative path, reason)
    notes: list[str] = field(default_factory=list)
    outputs: dict[str, Path] = field(default_factory=dict)
    failures: list[RecordedFailure] = field(default_factory=list)  # by study id


def structure_names(studies: Sequence[CohortStudy]) -> list[str]:
    """Every structure name in the cohort, ordered by (smallest label index seen, name)."""
    first: dict[str, int] = {}
    for s in studies:
        for row in s.report.structures:
            first[row.name] = min(first.get(row.name, row.label), row.label)
    return sorted(first, key=lambda n: (first[n], n))


def study_page(study: CohortStudy, root: Path) -> str | None:
    """The study's report.html relative to the cohort folder, or None when it has none."""
    page = study.path.parent / REPORT_HTML
    return relative(page, root) if page.is_file() else None


def relative(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` (POSIX), or as it is when outside ``root``."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)
