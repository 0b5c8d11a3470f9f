"""`volseg models ...`: the model catalogue."""
from __future__ import annotations

import typer

app = typer.Typer(help="List and inspect the model catalogue.", no_args_is_help=True)


@app.command("list")
def list_models() -> None:
    """Every catalogued model, grouped by task."""
    from volseg import api
    from volseg.cli.render import print_models

    print_models(api.list_models())
