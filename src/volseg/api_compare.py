"""The Python API of follow-up comparison (re-exported from :mod:`volseg.api`).

>>> from volseg import api
>>> result = api.compare(["runs/t0", "runs/t1"], "cmp/", options=api.CompareOptions(interval_days=(91,)))
>>> result.comparison.recist.category
'PR'
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from volseg.compare.cohort import CohortOutcome, PairOutcome
from volseg.compare.options import CompareOptions
from volseg.compare.outputs import Extra
from volseg.compare.run import CompareResult
from volseg.options import SegmentOptions
from volseg.segmenters.base import ProgressCallback, no_progress

log = logging.getLogger(__name__)

__all__ = ["CompareOptions", "CompareResult", "CohortOutcome", "PairOutcome", "compare", "compare_cohort"]


def compare(studies: Sequence[str | Path], out_dir: str | Path, *, options: CompareOptions = CompareOptions(),
            images: Sequence[str | Path | None] | None = None, model: str | None = None,
            segment_options: SegmentOptions | None = None, days_from_baseline: Sequence[float] | None = None,
            html: bool = True, progress: ProgressCallback = no_progress) -> CompareResult:
    """Compare two or more studies of one patient, baseline first, then follow-ups in time order.

    ``studies`` are study output folders (report.json + segmentation.nii.gz, made by one model), or
    images, all segmented first with one model (``model``, or ``segment_options``) into
    ``out_dir/studies/``. ``images`` (one per study, None where unknown) are the images the folders were
    segmented from, for registration and intensities (default: the path report.json recorded, else the
    label maps are registered). Intervals come from the DICOM dates, else ``days_from_baseline`` (one per
    study, 0 first), else ``options.interval_days``. Writes lesion_changes.csv, organ_changes.csv, the HTML
    page (``html``, when installed) and comparison.json; returns the :class:`Comparison` and the paths.
    """
    from volseg.compare.run import compare_studies

    segment = segment_options or (SegmentOptions(model=model) if model is not None else None)
    return compare_studies(studies, out_dir, options=options, images=images, segment=segment,
                           days_from_baseline=days_from_baseline, extras=_extras(html), progress=progress)


def compare_cohort(runs: str | Path, pairs: str | Path, out_dir: str | Path, *,
                   options: CompareOptions = CompareOptions(), html: bool = True,
                   on_done: Callable[[PairOutcome], None] | None = None) -> CohortOutcome:
    """One comparison per row of ``pairs`` (a CSV with baseline, followup[, days][, pair]; folders
    relative to ``runs``) into ``out_dir/<pair>/``; a failing pair is recorded and the next goes on.
    ``cohort_comparison.csv`` sums up; ``CohortOutcome.exit_code`` is the first failure's exit code."""
    from volseg.compare.cohort import compare_cohort as _cohort

    return _cohort(runs, pairs, out_dir, options=options, extras=_extras(html), on_done=on_done)


def _extras(html: bool) -> list[Extra]:
    """The comparison's other renderings: comparison.html (when ``html``) and the DICOM SR (when the
    follow-up was DICOM), by :func:`volseg.compare.extras.write_comparison_extras`."""
    import functools

    from volseg.compare.extras import write_comparison_extras

    return [functools.partial(write_comparison_extras, html=html)]
