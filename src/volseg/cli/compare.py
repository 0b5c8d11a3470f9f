"""``volseg compare BASELINE FOLLOWUP [...] -o OUT`` and ``volseg compare --cohort runs/ --pairs pairs.csv -o OUT``."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from volseg.cli.console import err, note, out, progress_bar, verbosity


def register(app: typer.Typer) -> None:
    app.command("compare")(compare)


def compare(
    studies: Optional[List[Path]] = typer.Argument(
        None, help="Study output folders (report.json + label map) or images, baseline first, then follow-ups "
                   "in time order."),
    output: Path = typer.Option(..., "--output", "-o", help="Folder for comparison.json, lesion_changes.csv, "
                                "organ_changes.csv and comparison.html."),
    cohort: Optional[Path] = typer.Option(None, "--cohort", help="Folder of study outputs named by --pairs."),
    pairs: Optional[Path] = typer.Option(None, "--pairs", help="CSV: baseline, followup[, days][, pair] per row "
                                         "(folders relative to --cohort)."),
    image: Optional[List[Path]] = typer.Option(None, "--image", help="The image each study was segmented from, "
                                               "in the studies' order (repeatable; default: the path report.json "
                                               "recorded, else the label maps are registered)."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Segment images given as studies with this "
                                        "model first (the same model for every time point)."),
    match_tolerance_mm: float = typer.Option(10.0, "--match-tolerance-mm", help="Largest centroid distance (mm, "
                                             "after alignment) at which lesions without overlap still match."),
    interval_days: Optional[str] = typer.Option(None, "--interval-days", help="Days between consecutive studies, "
                                                "comma-separated (when the studies record no dates)."),
    registration: str = typer.Option("auto", "--registration", help="auto | image | label_map | none"),
    html: bool = typer.Option(True, "--html/--no-html", help="Write comparison.html."),
) -> None:
    """Follow-up studies: align them, match lesions and organs, report change and RECIST 1.1 response."""
    from volseg import api
    from volseg.errors import UsageError

    options = api.CompareOptions(match_tolerance_mm=match_tolerance_mm, registration=registration,
                                 interval_days=_days(interval_days))
    if cohort is not None or pairs is not None:
        if cohort is None or pairs is None or studies:
            raise UsageError("--cohort and --pairs go together, without study arguments")
        outcome = api.compare_cohort(cohort, pairs, output, options=options, html=html, on_done=_pair_done)
        note(f"wrote {outcome.summary}")
        if outcome.exit_code:
            raise typer.Exit(outcome.exit_code)
        return
    if not studies or len(studies) < 2:
        raise UsageError("compare needs a baseline and at least one follow-up",
                         hint="volseg compare BASELINE FOLLOWUP -o OUT, or --cohort runs/ --pairs pairs.csv")
    with progress_bar() as progress:
        result = api.compare(studies, output, options=options, images=image or None, model=model, html=html,
                             progress=progress)
    _print(result.comparison)
    note(f"wrote {', '.join(p.name for p in result.outputs.values())} in {output}")


def _days(text: str | None) -> tuple[float, ...] | None:
    from volseg.errors import UsageError

    if text is None:
        return None
    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError as exc:
        raise UsageError(f"--interval-days {text!r}: expected numbers of days, comma-separated") from exc


def _pair_done(outcome) -> None:
    if outcome.error:
        err.print(f"volseg: pair {outcome.pair.name} failed: {outcome.error}", markup=False, highlight=False,
                  soft_wrap=True)
        return
    c = outcome.result.comparison
    category = c.recist.category if c.recist else "-"
    out.print(f"{outcome.pair.name}\t{category}", markup=False, highlight=False)
    _warn(c)


def _print(c) -> None:
    """The lesion changes and the response on stdout (not with -q: the files hold them); warnings always."""
    from rich.table import Table

    if verbosity.quiet:
        _warn(c)
        return
    table = Table("from", "to", "status", "before", "after", "volume ml", "change %", "doubling days")
    for m in c.matches:
        table.add_row(f"T{m.from_timepoint}", f"T{m.to_timepoint}", m.status, ", ".join(m.before_ids),
                      ", ".join(m.after_ids), f"{_n(m.volume_ml_before)} → {_n(m.volume_ml_after)}",
                      _n(m.volume_change_percent), _n(m.doubling_time_days))
    out.print(table)
    if c.recist is not None:
        sums = ", ".join(f"T{p.timepoint} {_n(p.sum_mm)} mm" for p in c.recist.timepoints)
        out.print(f"RECIST 1.1: {c.recist.category} ({c.recist.rule}); target sums: {sums}", markup=False,
                  highlight=False, soft_wrap=True)
    _warn(c)


def _warn(c) -> None:
    """Warnings on stderr, even with -q: a poor registration is never silent."""
    for warning in c.warnings:
        err.print(f"warning: {warning}", markup=False, highlight=False, soft_wrap=True)


def _n(value) -> str:
    return "" if value is None else f"{value:.2f}"
