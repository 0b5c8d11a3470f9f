"""``volseg compare``: time points from study output folders (or images, segmented first with one model),
their comparison, and its files; and the cohort form over a pairs table."""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from volseg.compare.inputs import REPORT, Timepoint, load_timepoint
from volseg.compare.options import CompareOptions
from volseg.compare.outputs import Extra, write_comparison
from volseg.compare.results import Comparison
from volseg.errors import InputError, UsageError
from volseg.options import SegmentOptions
from volseg.segmenters.base import ProgressCallback, no_progress

log = logging.getLogger(__name__)
STUDIES = "studies"  # where images given as inputs are segmented: OUT/studies/T<n>-<name>/


@dataclass(frozen=True)
class CompareResult:
    """A comparison and the files written for it."""

    comparison: Comparison
    outputs: dict[str, Path] = field(default_factory=dict)


def compare_studies(inputs: Sequence[str | Path], out_dir: str | Path, *, options: CompareOptions = CompareOptions(),
                    images: Sequence[str | Path | None] | None = None,
                    segment: SegmentOptions | None = None, days_from_baseline: Sequence[float] | None = None,
                    days_source: str = "option", extras: Sequence[Extra] = (),
                    progress: ProgressCallback = no_progress) -> CompareResult:
    """Compare two or more studies of one patient, in time order (see :func:`volseg.api.compare`)."""
    if len(inputs) < 2:
        raise UsageError(f"compare needs at least two studies (baseline and follow-up), got {len(inputs)}")
    if images is not None and len(images) != len(inputs):
        raise UsageError(f"{len(images)} image(s) given for {len(inputs)} studies", hint="give one --image per study")
    points = _timepoints(inputs, out_dir, images or [None] * len(inputs), segment, progress)
    days = _days(len(inputs), options, days_from_baseline)
    from volseg.compare.build import build_comparison

    progress("comparing", 0, 1)
    comparison = build_comparison(points, options, days=days, days_source=days_source if days else None)
    for warning in comparison.warnings:  # the CLI shows them from the result
        log.info("%s", warning)
    written = write_comparison(out_dir, comparison, extras=extras)
    progress("comparing", 1, 1)
    return CompareResult(comparison, written)


def is_study_output(path: str | Path) -> bool:
    return Path(path).is_dir() and (Path(path) / REPORT).is_file()


def _timepoints(inputs, out_dir, images, segment: SegmentOptions | None, progress) -> list[Timepoint]:
    folders = [Path(p) for p in inputs]
    for folder in folders:
        if not folder.exists():
            raise InputError("no such study output folder or image", path=folder)
    to_segment = [i for i, p in enumerate(folders) if not is_study_output(p)]
    if to_segment and segment is None:
        raise UsageError("not a study output folder (no report.json)", path=folders[to_segment[0]],
                         hint="compare study outputs of volseg segment, or images with --model")
    if to_segment and 0 < len(to_segment) < len(folders):
        raise UsageError("give either study output folders or images, not both",
                         path=folders[to_segment[0]], hint="segment every time point with the same model")
    if to_segment:
        return _segmented(folders, Path(out_dir), segment, progress)  # type: ignore[arg-type]
    return [load_timepoint(p, t, image=images[t]) for t, p in enumerate(folders)]


def _segmented(paths: list[Path], out_dir: Path, segment: SegmentOptions, progress) -> list[Timepoint]:
    """Segment every image with the one model (loaded once) into OUT/studies/T<n>-<name>/."""
    from volseg.io import study_name
    from volseg.pipeline.model import ModelLoader
    from volseg.pipeline.study import segment_study

    loader = ModelLoader(segment)
    points = []
    for t, path in enumerate(paths):
        folder = out_dir / STUDIES / f"T{t}-{study_name(path)}"
        segment_study(path, folder, segment, loader, progress=progress)
        points.append(load_timepoint(folder, t, image=path))
    return points


def _days(n: int, options: CompareOptions, days_from_baseline: Sequence[float] | None) -> list[float] | None:
    if days_from_baseline is not None:
        if len(days_from_baseline) != n:
            raise UsageError(f"{len(days_from_baseline)} day offsets for {n} studies")
        return [float(d) for d in days_from_baseline]
    if options.interval_days is None:
        return None
    if len(options.interval_days) != n - 1:
        raise UsageError(f"--interval-days gives {len(options.interval_days)} interval(s) for {n} studies",
                         hint=f"give {n - 1}: the days between consecutive studies, comma-separated")
    days = [0.0]
    for step in options.interval_days:
        days.append(days[-1] + step)
    return days


