"""`volseg models ...`: the model catalogue and the weights manager."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from volseg.cli.console import note, out, progress_bar

app = typer.Typer(help="List, inspect, download, install, export and verify pretrained models.",
                  no_args_is_help=True)

_REQUIRE_LOCK = typer.Option(False, "--require-lock",
                             help="Refuse any file whose name and sha256 are not in the lock file.")
_LOCK = typer.Option(None, "--lock",
                     help="Lock file for --require-lock (default: $VOLSEG_HOME/volseg.lock.json).")


@app.command("list")
def list_models(fmt: str = typer.Option("table", "--format", "-f",
                                        help="table | tsv | json (whole names, for scripts)."),
                as_json: bool = typer.Option(False, "--json", help="Same as --format json.")) -> None:
    """Every catalogued model, grouped by task, with licence, size and installed state."""
    from volseg import api
    from volseg.cli.render import check_format, print_models

    print_models(api.model_statuses(), fmt=check_format("json" if as_json else fmt))


@app.command("show")
def show(name: str = typer.Argument(..., help="Catalogue model name."),
         as_json: bool = typer.Option(False, "--json", help="Print the catalogue entry as JSON.")) -> None:
    """Classes, input expectations, weights, citation and sources of one model."""
    from volseg import api
    from volseg.cli.render import print_model_detail

    status = api.show_model(name)
    print_model_detail(status, as_json=as_json)
    if not as_json:
        out.print(f"reference: -m {status.name} follows the {status.reference}", markup=False, soft_wrap=True)
        if status.path_reference:
            out.print(f"           --model PATH on its nnU-Net folder follows {status.path_reference}",
                      markup=False, soft_wrap=True)


@app.command("download")
def download(names: List[str] = typer.Argument(..., help="Catalogue model names."),
             require_lock: bool = _REQUIRE_LOCK, lock: Optional[Path] = _LOCK,
             force: bool = typer.Option(False, "--force", help="Download again even if installed.")) -> None:
    """Download, verify (sha256 before install) and install weights; resumes interrupted files."""
    from volseg import api
    from volseg.cli.render import print_install_results

    with progress_bar() as progress:
        results = api.download_models(names, require_lock=require_lock, lock_path=lock, force=force,
                                      progress=progress)
    print_install_results(results)


@app.command("install")
def install(source: Path = typer.Argument(..., help="A bundle zip from `volseg models export`, a folder of "
                                                    "weight files, one weight file, or a publisher's "
                                                    "own folder (TotalSegmentator, Raidionics, MONAI)."),
            model: Optional[str] = typer.Option(None, "--model", "-m",
                                                help="Install the files as this model."),
            require_lock: bool = _REQUIRE_LOCK, lock: Optional[Path] = _LOCK) -> None:
    """Install weights offline (never touches the network), verifying every file.

    Also takes the folders the publishers' own programs fill: a TotalSegmentator home or
    ``nnunet/results`` folder, a Raidionics models folder, a MONAI bundle folder.
    """
    from volseg import api
    from volseg.cli.render import print_install_results

    print_install_results(api.install_models(source, model=model, require_lock=require_lock, lock_path=lock))


@app.command("export")
def export(names: List[str] = typer.Argument(..., help="Installed models to export."),
           output: Path = typer.Option(..., "--output", "-o", help="Bundle zip to write.")) -> None:
    """Write installed models into one bundle zip to carry to an offline machine."""
    from volseg import api

    path = api.export_models(names, output)
    note(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB); on the offline machine run "
         f"`volseg models install {path.name}`")


@app.command("verify")
def verify(names: Optional[List[str]] = typer.Argument(
        None, help="Models to check (default: all installed).")) -> None:
    """Re-hash installed weights; exits with status 7 if any file is missing or changed."""
    from volseg import api
    from volseg.cli.render import print_verify_reports

    reports = api.verify_models(names or None)
    print_verify_reports(reports)
    if any(not r.ok for r in reports):
        raise typer.Exit(code=7)


@app.command("lock")
def lock(output: Optional[Path] = typer.Option(
        None, "--output", "-o", help="Write here instead of stdout.")) -> None:
    """Export the sha256 of every installed file as a lock file (for `--require-lock` elsewhere)."""
    from volseg import api

    result = api.export_lock(output)
    if output is None:
        out.print(result.to_json(), end="", markup=False, highlight=False, soft_wrap=True)
    else:
        note(f"wrote {output} ({len(result.models)} models)")
