"""Options shared by ``segment``, ``batch`` and ``slurm-script``, declared once as Typer ``Annotated``
parameter types (a command writes ``html: flags.Html = None``); :func:`segment_options` turns their
values into the one :class:`~volseg.options.SegmentOptions` every command runs with.

Unset flags are None (or False), so the defaults stay in :mod:`volseg.options`.
"""
from __future__ import annotations

from typing import Annotated, Optional

import typer

# ---- outputs ------------------------------------------------------------------------------------
Html = Annotated[Optional[bool], typer.Option(
    "--html/--no-html", help="Write each study's report.html with QC pictures (default: on).")]
Dicom = Annotated[Optional[bool], typer.Option(
    "--dicom", help="Also write DICOM SEG + SR (DICOM series inputs).")]
Rtstruct = Annotated[Optional[bool], typer.Option(
    "--rtstruct", help="Also write a DICOM RTSTRUCT (DICOM series inputs).")]
Anonymize = Annotated[Optional[bool], typer.Option(
    "--anonymize", help="DICOM outputs de-identified, with mapped UIDs (default: the source's patient and study).")]
KeepPhi = Annotated[Optional[bool], typer.Option(
    "--keep-phi", help="Deprecated: identifiers are copied by default; still records the input path in "
                       "report.json.")]
Masks = Annotated[bool, typer.Option(
    "--masks", help="Also write segmentations/<class>.nii.gz, one 0/1 mask per class (TotalSegmentator's layout).")]

# ---- running the model ----------------------------------------------------------------------------
TrustBundle = Annotated[bool, typer.Option(
    "--trust-bundle", help="Run a custom MONAI bundle's config (it can execute code): only for bundles you trust.")]
Force = Annotated[bool, typer.Option(
    "--force", help="Run the model(s) even on inputs they were not made for (other modality, not CT in HU, "
                    "other body region).")]
Fastest = Annotated[bool, typer.Option(
    "--fastest", help="Run each model's fastest variant (TotalSegmentator's --fastest: total_v3 → total_v3-fastest, "
                      "6 mm); not together with --fast.")]
JsonLog = Annotated[bool, typer.Option(
    "--json-log", help="Progress and outcomes as one JSON object per line on stderr (the events of "
                       "`volseg batch`).")]

# ---- sliding-window engine overrides (None: the model's catalogued, tested value) -----------------
Step = Annotated[Optional[float], typer.Option(
    "--step", min=0.05, max=1.0, help="Sliding-window step as a fraction of the patch, e.g. 0.5 = 50 % overlap "
                                      "(default: the model's; nnU-Net's tile_step_size).")]
Tta = Annotated[Optional[bool], typer.Option(
    "--tta/--no-tta", help="Mirroring test-time augmentation (up to 8× slower; default: the model's, off for most).")]
Precision = Annotated[Optional[str], typer.Option(
    "--precision", help="auto (fp16 on CUDA, bf16 on CPUs with native bf16) | fp32 | bf16 | fp16.")]
Export = Annotated[Optional[str], typer.Option(
    "--export", help="How labels return to the input grid: exact (nnU-Net's probability resampling, default) "
                     "| nearest (faster).")]
Members = Annotated[Optional[int], typer.Option(
    "--members", help="Run only the first N members of an ensemble model (nnU-Net folds, BLAST-CT's 12 "
                      "networks): faster, a little less accurate (default: all).")]

SkipAir = Annotated[Optional[bool], typer.Option(
    "--skip-air/--no-skip-air", help="CT: do not run sliding windows whose input lies wholly below -900 HU (air); they "
                       "count as the network's answer for pure air. Faster on scans with much air around "
                       "the body; off by default.", show_default=False)]


def segment_options(*, step: float | None = None, tta: bool | None = None, precision: str | None = None,
                    export: str | None = None, members: int | None = None, skip_air: bool | None = None,
                    **given):
    """A :class:`~volseg.options.SegmentOptions` from the shared flags' values (unset ones: None or
    False keep the defaults); the engine flags become its ``engine`` overrides."""
    from volseg.options import SegmentOptions, engine_overrides, with_overrides

    given = {k: (None if v is False and k in _OFF_MEANS_UNSET else v) for k, v in given.items()}
    return with_overrides(SegmentOptions(), engine=engine_overrides(step=step, tta=tta, precision=precision,
                                                                    export=export, members=members,
                                                                    skip_air=skip_air or None), **given)


#: flags without a --no- form: False means "not given" (SegmentOptions' default)
_OFF_MEANS_UNSET = ("masks", "trust_bundle", "force", "fast", "fastest")
