"""Per-study commands: segment, measure, info, demo."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from volseg.cli import flags
from volseg.cli.console import err, progress_bar


def register(app: typer.Typer) -> None:
    app.command("segment")(segment)
    app.command("measure")(measure)
    app.command("info")(info)
    app.command("demo")(demo)


def segment(
    inputs: List[Path] = typer.Argument(..., help="NIfTI/NRRD/MHA files or DICOM folders."),
    output: Path = typer.Option(..., "--output", "-o", help="Output folder (one sub-folder per study when several inputs)."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Catalogue model name (see `volseg models list`), "
                                        "or a path: nnU-Net trained-model folder, .onnx file with its "
                                        "sidecar, MONAI bundle folder."),
    device: Optional[str] = typer.Option(None, "--device", "-d", help="auto | cpu | cuda | cuda:N | mps"),
    series: Optional[str] = typer.Option(None, "--series", help="DICOM SeriesInstanceUID or SeriesNumber."),
    html: Optional[bool] = typer.Option(None, "--html/--no-html", help="Write report.html with QC pictures (default: on)."),
    dicom: Optional[bool] = typer.Option(None, "--dicom", help="Also write DICOM SEG + SR (DICOM series inputs)."),
    keep_phi: Optional[bool] = typer.Option(None, "--keep-phi", help="Copy patient/study identifiers into the DICOM outputs and record the input path (default: placeholders, no path)."),
    trust_bundle: bool = typer.Option(False, "--trust-bundle", help="Run a custom MONAI bundle's config "
                                      "(it can execute code): only for bundles you trust."),
    step: Optional[float] = flags.STEP,
    tta: Optional[bool] = flags.TTA,
    precision: Optional[str] = flags.PRECISION,
    export: Optional[str] = flags.EXPORT,
    force: bool = typer.Option(False, "--force", help="Run the model even on an input it was not made for "
                               "(other modality, not CT in HU, other body region)."),
) -> None:
    """Segment studies: segmentation.nii.gz, colour tables, volumetry.csv, report.html, report.json."""
    from volseg import api
    from volseg.cli.render import print_failures, print_volumetry
    from volseg.options import SegmentOptions, with_overrides

    options = with_overrides(SegmentOptions(), model=model, device=device, series=series, html=html,
                             dicom=dicom, keep_phi=keep_phi, trust_bundle=trust_bundle or None,
                             step=step, tta=tta, precision=precision, export=export, force=force or None)
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
    instances: Optional[str] = typer.Option(
        None, "--instances",
        help="Lesion-type classes to split into lesions/nodes, CLASS[,CLASS...] (default: classes named "
             "like tumour, lesion, nodule, metastasis, cyst or lymph node). Written to lesions.csv."),
    organs: Optional[Path] = typer.Option(
        None, "--organs", help="Organ label map of the same study (host organs, lymph-node station landmarks)."),
    organ_labels: Optional[Path] = typer.Option(None, "--organ-labels", help="Names of the --organs labels (JSON)."),
    min_instance_mm3: Optional[float] = typer.Option(
        None, "--min-instance-mm3", help="Drop lesion/node components smaller than this (mm³, default 0)."),
) -> None:
    """Measure an existing label map: report.json, volumetry.csv (and lesions.csv) without re-segmenting."""
    from volseg import api
    from volseg.cli.render import print_volumetry
    from volseg.options import MeasureOptions, with_overrides

    options = with_overrides(MeasureOptions(), connectivity=connectivity, min_instance_volume_mm3=min_instance_mm3)
    classes = [c.strip() for c in instances.split(",") if c.strip()] if instances is not None else None
    result = api.measure(segmentation, output, image=image, labels=labels, options=options,
                         instances=classes, organs=organs, organ_labels=organ_labels)
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
