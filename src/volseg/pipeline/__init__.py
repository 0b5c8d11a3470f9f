"""The one study pipeline below :mod:`volseg.api` and :mod:`volseg.batch`: read → check → predict →
measure → write.

* :mod:`~volseg.pipeline.results`: :class:`StudyResult`, :class:`StudyFailure`
* :mod:`~volseg.pipeline.model`: the run's model, loaded once and checked against each input
* :mod:`~volseg.pipeline.study`: one study from an input (``volseg segment``), several with one model
* :mod:`~volseg.pipeline.outputs`: :class:`OutputOptions`, which optional files a study writes
* :mod:`~volseg.pipeline.write`: the outputs asked for, checked before predicting, written after
* :mod:`~volseg.pipeline.measure`: measurements, report and files for a label map (also ``volseg measure``)

Heavy imports (numpy readers, matplotlib, highdicom, torch) happen inside the functions.
"""
from __future__ import annotations

from volseg.pipeline.results import StudyFailure, StudyResult

__all__ = ["StudyFailure", "StudyResult"]
