"""The comparison's renderings beyond the JSON and CSVs: comparison.html always, comparison.sr.dcm when the
follow-up (last) study was read from a DICOM series (left out, with a logged warning, when it cannot be
written: the comparison's other files never fail because of it).

:func:`write_comparison_extras` has the shape of :data:`volseg.compare.outputs.Extra` (``out_dir``,
``comparison`` → the files written), so ``write_comparison(..., extras=[write_comparison_extras])`` or
``functools.partial(write_comparison_extras, anonymize=True)`` plugs it in. Each study's voxels are read
once, from the paths the comparison carries, for both files.
"""
from __future__ import annotations

import logging
from pathlib import Path

from volseg.compare.html import write_comparison_html
from volseg.compare.results import Comparison
from volseg.compare.sr import write_comparison_sr
from volseg.compare.study_data import StudyLoader, cached, read_study_data
from volseg.errors import DependencyError, InputError
from volseg.io.types import ImageSource

log = logging.getLogger(__name__)


def write_comparison_extras(out_dir: str | Path, comparison: Comparison, *, loader: StudyLoader | None = None,
                            anonymize: bool = False, html: bool = True, sr: bool = True) -> dict[str, Path]:
    """Write comparison.html (``html``) and, when the follow-up is DICOM, comparison.sr.dcm (``sr``);
    returns {"comparison_html": path, "comparison_sr": path} for the files written."""
    load = cached(loader or read_study_data)
    written: dict[str, Path] = {}
    if html:
        written.update(write_comparison_html(out_dir, comparison, loader=load))
    if sr:
        path = _write_sr(out_dir, comparison, load, anonymize=anonymize)
        if path is not None:
            written["comparison_sr"] = path
    return written


def _write_sr(out_dir: str | Path, comparison: Comparison, load: StudyLoader, *, anonymize: bool) -> Path | None:
    """The SR is written where it can be: a follow-up that cannot be read again or referenced (e.g.
    multi-frame images), or highdicom missing, leaves it out with a warning, and the other files are written."""
    try:
        return write_comparison_sr(comparison, out_dir, source=followup_source(comparison, load),
                                   anonymize=anonymize)
    except (InputError, DependencyError) as exc:
        log.warning("no comparison DICOM SR: %s", exc)
        return None


def followup_source(comparison: Comparison, load: StudyLoader) -> ImageSource | None:
    """The last study's image source when it is a DICOM series (its headers), else None."""
    last = comparison.studies[-1]
    if last.image_kind != "dicom" or not last.image_path:
        log.info("T%d is not a DICOM series with a known image: no comparison DICOM SR", last.timepoint)
        return None
    return load(last).source
