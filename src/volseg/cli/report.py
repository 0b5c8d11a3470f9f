"""``volseg report``: re-render or validate a study's report.json without re-segmenting."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from volseg.cli.console import err

app = typer.Typer(help="Re-render or validate report.json files.", no_args_is_help=True)


@app.command("render")
def render(
    report: Path = typer.Argument(..., help="A study's report.json."),
    fmt: str = typer.Option("html", "--format", "-f", help="html | csv"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Folder, or a file name ending in .html/.csv (default: next to report.json)."),
    image: Optional[Path] = typer.Option(None, "--image", "-i", help="The input image, for pictures drawn on it."),
    segmentation: Optional[Path] = typer.Option(None, "--segmentation", "-s", help="Label map (default: segmentation.nii.gz next to report.json)."),
    labels: Optional[Path] = typer.Option(None, "--labels", "-l", help="labels.json (default: next to report.json)."),
) -> None:
    """Write report.html or volumetry.csv (+ lesions.csv) from report.json."""
    from volseg import api

    written = api.render_report(report, fmt=fmt, out=output, image=image, segmentation=segmentation, labels=labels)
    err.print(f"wrote {', '.join(str(p) for p in written)}", highlight=False)


@app.command("validate")
def validate(reports: list[Path] = typer.Argument(..., help="report.json files.")) -> None:
    """Check report.json files against the committed JSON Schema (exit 3 when one is invalid)."""
    from volseg.reports.schema import load_report

    for path in reports:
        load_report(path)
        err.print(f"{path}: valid", highlight=False)
