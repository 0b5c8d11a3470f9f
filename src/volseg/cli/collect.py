"""``volseg collect OUTDIR``: cohort tables and index.html from every study's report.json."""
from __future__ import annotations

from pathlib import Path

import typer

from volseg.cli.console import err


def register(app: typer.Typer) -> None:
    app.command("collect")(collect)


def collect(
    out_dir: Path = typer.Argument(..., help="Folder searched recursively for report.json files (shards merge)."),
    html: bool = typer.Option(True, "--html/--no-html", help="Write index.html with distribution plots."),
) -> None:
    """Write cohort_volumetry.csv, cohort_lesions.csv and index.html into OUT_DIR."""
    from volseg import api

    result = api.collect(out_dir, html=html)
    for path, reason in result.skipped:
        err.print(f"skipped {path}: {reason}", markup=False, highlight=False)
    for note in result.notes:
        err.print(note, markup=False, highlight=False)
    err.print(f"{len(result.studies)} studies → {', '.join(p.name for p in result.outputs.values())} in {out_dir}",
              highlight=False)
    if not result.studies:
        raise typer.Exit(code=3)
