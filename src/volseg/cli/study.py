"""Per-study commands: segment, measure, info, demo."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from volseg.cli.console import err, out, progress_bar


def register(app: typer.Typer) -> None:
    app.command("segment")(segment)
    app.command("measure")(measure)
    app.command("info")(info)
    app.command("demo")(demo)


def segment(
    inputs: List[Path] = typer.Argument(..., help="NIfTI/NRRD/MHA files or DICOM folders."),
    output: Path = typer.Option(..., "--output", "-o", help="Output folder (one sub-folder per study when several inputs)."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Catalogue model name (see `volseg models list`), "
                                        "or a path: .onnx file with its sidecar, MONAI bundle folder."),
    device: Optional[str] = typer.Option(None, "--device", "-d", help="auto | cpu | cuda | cuda:N | mps"),
    series: Optional[str] = typer.Option(None, "--series", help="DICOM SeriesInstanceUID or SeriesNumber."),
    trust_bundle: bool = typer.Option(False, "--trust-bundle", help="Run a custom MONAI bundle's config "
                                      "(it can execute code): only for bundles you trust."),
) -> None:
    """Segment studies and write segmentation.nii.gz, labels.json, report.json, volumetry.csv."""
    from volseg import api
    from volseg.cli.render import print_failures, print_volumetry
    from volseg.options import SegmentOptions, with_overrides

    options = with_overrides(SegmentOptions(), model=model, device=device, series=series,
                             trust_bundle=trust_bundle or None)
    with progress_bar() as progress:
        results = api.segment_many(inputs, output, options=options, progress=progress)
    done = [r for r in results if isinstance(r, api.StudyResult)]
    for result in done:
        print_volumetry(result.report)
        err.print(f"wrote {', '.join(p.name for p in result.outputs.values())} to "
                  f"{next(iter(result.outputs.values())).parent}", highlight=False)
    failed = [r for r in results if not isinstance(r, api.StudyResult)]
    if failed:
        print_failures(failed, total=len(results))
        raise typer.Exit(code=max(f.error.exit_code for f in failed))


def measure(
    segmentation: Path = typer.Argument(..., help="Label map (NIfTI/NRRD/MHA)."),
    output: Path = typer.Option(..., "--output", "-o", help="Output folder."),
    image: Optional[Path] = typer.Option(None, "--image", "-i", help="The image the labels belong to (for HU statistics)."),
    labels: Optional[Path] = typer.Option(None, "--labels", "-l", help="labels.json or a plain {index: name} JSON object."),
    connectivity: Optional[int] = typer.Option(None, "--connectivity", help="6, 18 or 26 (default 26)."),
) -> None:
    """Measure an existing label map: report.json and volumetry.csv without re-segmenting."""
    from volseg import api
    from volseg.cli.render import print_volumetry
    from volseg.options import MeasureOptions, with_overrides

    options = with_overrides(MeasureOptions(), connectivity=connectivity)
    result = api.measure(segmentation, output, image=image, labels=labels, options=options)
    print_volumetry(result.report)
    err.print(f"wrote {', '.join(p.name for p in result.outputs.values())} to {output}", highlight=False)


def info(
    input: Path = typer.Argument(..., help="Image file or DICOM folder."),
    series: Optional[str] = typer.Option(None, "--series", help="DICOM SeriesInstanceUID or SeriesNumber."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Geometry, intensity range, DICOM series found and warnings (no patient identifiers)."""
    from volseg import api
    from volseg.cli.render import print_info

    print_info(api.info(input, series=series), as_json=as_json)


def demo(
    output: Path = typer.Option(Path("volseg-demo"), "--output", "-o", help="Where to write the demo study."),
) -> None:
    """Run the whole path offline on a built-in CT phantom and compare with its true volumes."""
    from volseg import api
    from volseg.cli.render import print_demo

    err.print("volseg demo: synthetic chest/abdomen CT phantom → classic-ct → measurements → report",
              highlight=False)
    with progress_bar() as progress:
        result = api.demo(output, progress=progress)
    print_demo(result)
    err.print(f"outputs in {result.result.outputs['report'].parent}", highlight=False)
