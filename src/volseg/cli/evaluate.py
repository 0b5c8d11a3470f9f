"""``volseg evaluate PRED REF -o OUT``: agreement of segmentations with reference segmentations."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from volseg.cli.console import err, out


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate)


def evaluate(
    pred: Path = typer.Argument(..., help="Predicted label map, or a folder of studies."),
    ref: Path = typer.Argument(..., help="Reference label map, or a folder of studies (matched by name)."),
    output: Path = typer.Option(..., "--output", "-o", help="Folder for evaluation.csv and evaluation.html."),
    labels: Optional[Path] = typer.Option(
        None, "--labels", "-l",
        help="labels.json for both maps (default: the one beside each map; without names, labels match by index)."),
    instances: Optional[str] = typer.Option(
        None, "--instances",
        help="Comma-separated lesion classes scored lesion by lesion (default: names saying tumour, lesion, "
             "nodule, metastasis, cyst or lymph node)."),
    min_overlap: float = typer.Option(
        0.1, "--min-overlap", help="Dice between a reference and a predicted lesion that counts as detected."),
) -> None:
    """Dice, HD95 and mean surface distance (mm) per structure; lesion and airway detection."""
    from rich.table import Table

    from volseg import api

    classes = [c.strip() for c in instances.split(",") if c.strip()] if instances is not None else None
    result = api.evaluate(pred, ref, output, labels=labels, instances=classes, min_overlap=min_overlap)
    table = Table("study", "structure", "Dice", "HD95 mm", "ASSD mm", "lesion recall", "FP lesions")
    for study in result.studies:
        for s in study.scores:
            table.add_row(study.study_id, s.structure, _n(s.dice), _n(s.hd95_mm), _n(s.assd_mm),
                          _n(s.lesions.recall) if s.lesions else "",
                          str(s.lesions.false_positives) if s.lesions else "")
    out.print(table)
    for note in result.notes:
        err.print(note, markup=False, highlight=False)
    err.print(f"wrote {', '.join(str(p) for p in result.outputs.values())}", highlight=False, soft_wrap=True)


def _n(value: float) -> str:
    return "" if value != value else f"{value:.3f}"  # NaN (undefined) stays empty
