"""Per-study commands: segment, measure, info, demo."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from volseg.cli import flags
from volseg.cli.console import note, progress_bar


def register(app: typer.Typer) -> None:
    app.command("segment")(segment)
    app.command("measure")(measure)
    app.command("info")(info)
    app.command("demo")(demo)


def segment(
    inputs: Optional[List[Path]] = typer.Argument(None, help="NIfTI/NRRD/MHA files or DICOM folders "
                                                  "(or -i)."),
    output: Path = typer.Option(..., "--output", "-o", help="Output folder (one sub-folder per study when several "
                                "inputs), or the label map's file name X.nii.gz (other outputs beside it)."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Catalogue model name (see `volseg models list`), "
                                        "or a path: nnU-Net trained-model folder, .onnx file with its "
                                        "sidecar, MONAI bundle folder."),
    device: Optional[str] = typer.Option(None, "--device", "-d", help="auto | cpu | cuda | cuda:N | mps"),
    series: Optional[str] = typer.Option(None, "--series", help="DICOM SeriesInstanceUID or SeriesNumber."),
    html: flags.Html = None,
    dicom: flags.Dicom = None,
    rtstruct: flags.Rtstruct = None,
    anonymize: flags.Anonymize = None,
    keep_phi: flags.KeepPhi = None,
    trust_bundle: flags.TrustBundle = False,
    json_log: flags.JsonLog = False,
    step: flags.Step = None,
    tta: flags.Tta = None,
    precision: flags.Precision = None,
    export: flags.Export = None,
    members: flags.Members = None,
    skip_air: flags.SkipAir = None,
    input_option: Optional[List[Path]] = typer.Option(
        None, "--input", "-i", help="An input, as TotalSegmentator takes it (repeatable; adds to the "
                                    "positional inputs)."),
    fast: bool = typer.Option(False, "--fast", help="Run the model's fast variant (total → total-fast)."),
    fastest: flags.Fastest = False,
    roi_subset: Optional[str] = typer.Option(None, "--roi-subset", "--roi_subset", help="Only these classes, "
                                             "NAME[,NAME...]: written, measured, and only the model parts "
                                             "that predict them are run."),
    masks: flags.Masks = False,
    force: flags.Force = False,
) -> None:
    """Segment studies: segmentation.nii.gz, colour tables, volumetry.csv, report.html, report.json."""
    from volseg import api
    from volseg.cli.render import print_failures, print_volumetry
    from volseg.errors import UsageError

    inputs = [*(inputs or []), *(input_option or [])]
    if not inputs:
        raise UsageError("no input given", hint="name the image as an argument or with -i/--input")
    options = flags.segment_options(model=model, device=device, series=series, html=html, dicom=dicom,
                                    rtstruct=rtstruct, anonymize=anonymize, keep_phi=keep_phi,
                                    trust_bundle=trust_bundle, step=step, tta=tta, precision=precision,
                                    export=export, members=members, skip_air=skip_air, fast=fast,
                                    fastest=fastest, roi_subset=roi_subset,
                                    masks=masks, force=force)
    if keep_phi:
        note("--keep-phi is deprecated: the DICOM outputs carry the source's identifiers by default "
             "(it still records the input path in report.json)")
    if json_log:
        results = _segment_json_log(inputs, output, options)
    else:
        with progress_bar() as progress:
            results = api.segment_many(inputs, output, options=options, progress=progress)
    done = [r for r in results if isinstance(r, api.StudyResult)]
    for result in done:
        print_volumetry(result.report)
        if not json_log:
            files = [p.name for k, p in result.outputs.items() if not k.startswith("mask:")]
            n_masks = len(result.outputs) - len(files)
            files += [f"segmentations/ ({n_masks} masks)"] if n_masks else []
            folder = next(iter(result.outputs.values())).parent
            note(f"wrote {', '.join(files)} to {folder}")
    failed = [r for r in results if not isinstance(r, api.StudyResult)]
    if failed:
        if not json_log:
            print_failures(failed, total=len(results))
        raise typer.Exit(code=max(f.error.exit_code for f in failed))


def _segment_json_log(inputs, output, options):
    """segment_many with batch's JSON events (and JSON log records) on stderr."""
    from volseg import api
    from volseg.cli.batch import _console_logs
    from volseg.cli.progress import JsonStudies
    from volseg.pipeline.model import unique_study_names

    events = JsonStudies(unique_study_names([Path(p) for p in inputs]))
    with _console_logs(json_lines=True):
        events.start_next()
        return api.segment_many(inputs, output, options=options, progress=events.progress,
                                on_done=events.on_done)


def measure(
    segmentation: Path = typer.Argument(..., help="Label map (NIfTI/NRRD/MHA), or a folder of per-class "
                                        "masks <name>.nii.gz (TotalSegmentator's output; names from the "
                                        "files), or a DICOM SEG. Stored with other axes than the image: "
                                        "reoriented onto it, never resampled."),
    output: Path = typer.Option(..., "--output", "-o", help="Output folder."),
    image: Optional[Path] = typer.Option(None, "--image", "-i", help="The image the labels belong to (for intensity statistics: HU for CT)."),
    labels: Optional[Path] = typer.Option(None, "--labels", "-l", help="labels.json, a plain {index: name} JSON object, a Slicer .ctbl or an ITK-SNAP label file."),
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
    note(f"wrote {', '.join(p.name for p in result.outputs.values())} to {output}")


def info(
    input: Path = typer.Argument(..., help="Image file or DICOM folder."),
    series: Optional[str] = typer.Option(None, "--series", help="DICOM SeriesInstanceUID or SeriesNumber."),
    fmt: str = typer.Option("table", "--format", "-f", help="table | tsv | json (whole values, for scripts)."),
    as_json: bool = typer.Option(False, "--json", help="Same as --format json."),
) -> None:
    """Geometry, intensity range, DICOM series found and warnings (no patient identifiers)."""
    from volseg import api
    from volseg.cli.render import check_format, print_info

    fmt = check_format("json" if as_json else fmt)
    print_info(api.info(input, series=series), fmt=fmt)


def demo(
    output: Path = typer.Option(Path("volseg-demo"), "--output", "-o", help="Where to write the demo study."),
) -> None:
    """Run the whole path offline on a built-in CT phantom and compare with its true volumes."""
    from volseg import api
    from volseg.cli.render import print_demo

    note("volseg demo: synthetic chest/abdomen CT phantom → classic-ct → measurements → report")
    with progress_bar() as progress:
        result = api.demo(output, progress=progress)
    print_demo(result)
    note(f"outputs in {result.result.outputs['report'].parent}")
