"""One study from its input (read → check → predict → measure → write), and several with one model."""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from volseg.errors import InputError, ModelError
from volseg.options import SegmentOptions
from volseg.pipeline.model import ModelLoader, fitting_segmenter, input_names, naming, unique_study_names
from volseg.pipeline.results import StudyFailure, StudyResult
from volseg.pipeline.write import check_outputs, write_outputs
from volseg.segmenters.base import ProgressCallback, no_progress

log = logging.getLogger(__name__)


def segment_study(input: Any, out_dir: str | Path, options: SegmentOptions, loader: ModelLoader, *,
                  progress: ProgressCallback = no_progress, study_id: str | None = None) -> StudyResult:
    """Read ``input``, check the model fits it and the outputs can be written, predict, then write."""
    from volseg.io.atomic import ensure_writable_dir
    from volseg.io.convert import as_loaded_image, is_path
    from volseg.reports.outputs import output_folder

    ensure_writable_dir(output_folder(out_dir))
    timings: dict[str, float] = {}
    study_id, about = input_names(input, study_id)
    t = time.perf_counter()
    progress("read", 0, 1)
    image = as_loaded_image(input, series=options.series, name=study_id)
    progress("read", 1, 1)
    timings["read"] = time.perf_counter() - t
    with naming(about):
        segmenter = fitting_segmenter(image, loader, about=about, timings=timings)
        warnings = check_outputs(image, segmenter, options=options)
        t = time.perf_counter()
        labels = segmenter.predict(image.volume, modality=image.source.modality, progress=progress)
        timings["segment"] = time.perf_counter() - t
        warnings = [*warnings, *labels.meta.get("segmenter_warnings", ())]
    return write_outputs(image, labels, out_dir, study_id=study_id, segmenter=segmenter, options=options,
                         timings=timings, warnings=warnings, input=input if is_path(input) else None,
                         progress=progress)


def segment_studies(inputs: Iterable[str | Path], out_dir: str | Path, options: SegmentOptions, *,
                    progress: ProgressCallback = no_progress,
                    on_done: Callable[[StudyResult | StudyFailure], None] | None = None,
                    ) -> list[StudyResult | StudyFailure]:
    """Several studies with one model, loaded once; a failing study is recorded, the rest go on.
    One input writes into ``out_dir``; several into ``out_dir/<study name>/``."""
    from volseg.io.atomic import ensure_writable_dir
    from volseg.reports.outputs import output_folder

    paths = [Path(p) for p in inputs]
    ensure_writable_dir(output_folder(out_dir, studies=len(paths)))
    loader = ModelLoader(options)  # loaded once, after the first input is checked against the model
    results: list[StudyResult | StudyFailure] = []
    for path, name in zip(paths, unique_study_names(paths)):
        target = Path(out_dir) if len(paths) == 1 else Path(out_dir) / name
        try:
            outcome: StudyResult | StudyFailure = segment_study(path, target, options, loader, progress=progress)
        except (InputError, ModelError) as exc:  # this study cannot be done: record it, go on
            if loader.failed:  # the model itself cannot be loaded: no study can be done
                raise
            log.debug("study %s failed: %s", name, exc.one_line())  # the caller reports it
            outcome = StudyFailure(name, str(path), exc)
        results.append(outcome)
        if on_done:
            on_done(outcome)
    return results
