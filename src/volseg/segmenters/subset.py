"""TotalSegmentator's ``--fast`` and ``--roi_subset``: which model runs and which classes are kept.

``--fast`` runs the catalogued ``fast_variant`` of the chosen model (the default model's when none
is named). ``--roi-subset`` names the classes to keep: unknown names are a usage error before any
weights load; a multi-part nnU-Net model loads and runs only the parts that predict them (as
TotalSegmentator does); every other model runs whole and its other classes are dropped afterwards.
The kept classes keep their original label indices.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from volseg.errors import UsageError
from volseg.labels import LabelTable
from volseg.segmenters.roi_subset import check_roi_subset

__all__ = ["check_roi_subset", "keep_classes", "load_for", "resolve_model"]

if TYPE_CHECKING:
    from volseg.options import SegmentOptions
    from volseg.segmenters.base import Segmenter
    from volseg.volume import Volume

log = logging.getLogger(__name__)


def resolve_model(options: SegmentOptions) -> str | None:
    """``options.model``, or with ``options.fast`` (``fastest``) the fast (fastest) variant of it (or of
    the default model)."""
    if not (options.fast or options.fastest):
        return options.model
    from volseg.segmenters.catalogue import fast_variant
    from volseg.segmenters.registry import default_model, is_model_path

    flag = "--fastest" if options.fastest else "--fast"
    model = options.model or default_model()
    if is_model_path(model):
        raise UsageError(f"{flag} applies to catalogue models only", path=model)
    variant = fast_variant(model, fastest=options.fastest)
    log.info("%s: running %s instead of %s", flag, variant, model)
    return variant


def load_for(options: SegmentOptions) -> Segmenter:
    """Load the model ``options`` ask for (``--fast``), only the parts ``--roi-subset`` needs."""
    from volseg.segmenters.registry import backend_factory, load_segmenter

    model = resolve_model(options)
    names = options.roi_subset
    entry = _catalogue_entry(model) if names else None
    if entry is not None and names:
        check_roi_subset(names, entry.label_table(), model=entry.name)
        if entry.backend == "nnunet" and len(entry.parts) > 1:
            log.info("loading model %s %s (backend nnunet, parts for %s)", entry.name, entry.version,
                     ", ".join(names))
            return backend_factory("nnunet")(entry, device=options.device, engine=options.engine, classes=names)
    segmenter = load_segmenter(model, device=options.device, trust=options.trust_bundle, engine=options.engine)
    if names:
        check_roi_subset(names, segmenter.labels, model=segmenter.name)
    return segmenter


def keep_classes(labels: Volume, table: LabelTable, names: Sequence[str] | None, *,
                 model: str = "the model") -> tuple[Volume, LabelTable]:
    """``labels`` and ``table`` with only the classes ``names`` (original indices; others set to 0)."""
    if not names:
        return labels, table
    import numpy as np

    check_roi_subset(names, table, model=model)
    keep = sorted(table.index_of(name) for name in names)
    array = np.where(np.isin(labels.array, keep), labels.array, 0).astype(labels.array.dtype, copy=False)
    return labels.with_array(array), LabelTable(table[i] for i in keep)


def _catalogue_entry(model: str | None):
    from volseg.segmenters.catalogue import load_catalogue
    from volseg.segmenters.registry import default_model

    return load_catalogue().get(model if model is not None else default_model())
