"""``volseg compare --cohort runs/ --pairs pairs.csv``: one comparison per row of a pairs table.

pairs.csv has a header with ``baseline`` and ``followup`` (study output folders, relative to ``runs/``
or absolute) and optionally ``days`` (days between them) and ``pair`` (the output sub-folder's name;
default ``<baseline>__<followup>``). Each pair writes into ``OUT/<pair>/``; a failing pair is recorded
with its one-line error and exit code, and the next pair goes on. ``cohort_comparison.csv`` sums up.
"""
from __future__ import annotations

import csv
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from volseg.compare.options import CompareOptions
from volseg.compare.outputs import Extra
from volseg.compare.run import CompareResult, compare_studies
from volseg.errors import InputError, UsageError, VolsegError
from volseg.io.atomic import ensure_writable_dir, write_text

log = logging.getLogger(__name__)
SUMMARY = "cohort_comparison.csv"
SUMMARY_COLUMNS = ("pair", "baseline", "followup", "status", "category", "rule", "registration_quality",
                   "exit_code", "error")


@dataclass(frozen=True)
class Pair:
    name: str
    baseline: Path
    followup: Path
    days: float | None


@dataclass(frozen=True)
class PairOutcome:
    pair: Pair
    result: CompareResult | None
    error: str | None = None
    exit_code: int = 0


@dataclass(frozen=True)
class CohortOutcome:
    outcomes: list[PairOutcome]
    summary: Path

    @property
    def exit_code(self) -> int:
        """0 when every pair was compared, else the first failure's exit code."""
        return next((o.exit_code for o in self.outcomes if o.exit_code), 0)


def read_pairs(pairs_csv: str | Path, runs: str | Path) -> list[Pair]:
    """The pairs of ``pairs_csv``, their folders resolved against ``runs``."""
    path, runs = Path(pairs_csv), Path(runs)
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.DictReader(fh))
    except OSError as exc:
        raise InputError(f"cannot read the pairs table ({exc.strerror or exc})", path=path) from exc
    if not rows or not {"baseline", "followup"} <= set(rows[0]):
        raise UsageError("the pairs table needs a header with 'baseline' and 'followup' columns and one row per pair",
                         path=path)
    pairs, seen = [], set()
    for n, row in enumerate(rows, start=2):
        base, follow = (row.get("baseline") or "").strip(), (row.get("followup") or "").strip()
        if not base or not follow:
            raise UsageError(f"line {n}: baseline and followup must both be given", path=path)
        name = _safe((row.get("pair") or "").strip() or f"{Path(base).name}__{Path(follow).name}")
        if name in seen:
            raise UsageError(f"line {n}: pair {name!r} appears twice", path=path)
        seen.add(name)
        pairs.append(Pair(name, runs / base, runs / follow, _days(row.get("days"), path, n)))
    return pairs


def compare_cohort(runs: str | Path, pairs_csv: str | Path, out_dir: str | Path, *,
                   options: CompareOptions = CompareOptions(), extras: Sequence[Extra] = (),
                   on_done: Callable[[PairOutcome], None] | None = None) -> CohortOutcome:
    """Compare every pair of ``pairs_csv``; a failing pair is recorded and the next goes on."""
    pairs = read_pairs(pairs_csv, runs)
    out = ensure_writable_dir(out_dir)
    outcomes = []
    for pair in pairs:
        try:
            days = [0.0, pair.days] if pair.days is not None else None
            result = compare_studies([pair.baseline, pair.followup], out / pair.name, options=options,
                                     days_from_baseline=days, days_source="pairs_csv", extras=extras)
            outcome = PairOutcome(pair, result)
        except VolsegError as exc:
            log.info("pair %s failed: %s", pair.name, exc.one_line())
            outcome = PairOutcome(pair, None, exc.one_line(), exc.exit_code)
        outcomes.append(outcome)
        if on_done is not None:
            on_done(outcome)
    return CohortOutcome(outcomes, write_text(out / SUMMARY, _summary(outcomes)))


def _summary(outcomes: Sequence[PairOutcome]) -> str:
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(SUMMARY_COLUMNS)
    for o in outcomes:
        c = o.result.comparison if o.result else None
        recist = c.recist if c else None
        quality = ";".join(r.quality for r in c.registrations) if c else ""
        writer.writerow([o.pair.name, str(o.pair.baseline), str(o.pair.followup), "failed" if o.error else "done",
                         recist.category if recist else "", recist.rule if recist else "", quality,
                         o.exit_code, o.error or ""])
    return buffer.getvalue()


def _days(text: str | None, path: Path, line: int) -> float | None:
    if text is None or not text.strip():
        return None
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0:
        raise UsageError(f"line {line}: days must be a positive number, got {text!r}", path=path)
    return value


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "pair"
