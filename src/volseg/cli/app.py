"""The Typer application. Commands live in one module per group and are thin over ``volseg.api``.

Heavy imports (numpy, torch, the API) happen inside commands so that ``volseg --help`` is instant.
"""
from __future__ import annotations

from typing import Optional

import typer

from volseg import __version__

app = typer.Typer(
    name="volseg",
    help="Volumetric medical image segmentation: segment CT/MR volumes, measure, report.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"volseg {__version__}")
        raise typer.Exit()


@app.callback()
def _global(
    verbose: int = typer.Option(0, "--verbose", "-v", count=True,
                                help="More log output (debug); anywhere on the line."),
    quiet: bool = typer.Option(False, "--quiet", "-q",
                               help="Only errors: no progress, messages or volume tables; anywhere on the line."),
    version: Optional[bool] = typer.Option(None, "--version", callback=_version, is_eager=True,
                                           help="Print the version and exit."),
) -> None:
    from volseg.cli.console import setup_logging

    setup_logging(-1 if quiet else verbose)


def _register() -> None:
    from volseg.cli import batch, collect, compare, evaluate, models, report, study

    study.register(app)
    batch.register(app)
    app.add_typer(models.app, name="models")
    app.add_typer(report.app, name="report")
    collect.register(app)
    evaluate.register(app)
    compare.register(app)


_register()
