"""The check of ``--roi-subset`` names against a model's classes (below the registry, so that
backends that load only some parts can use it too)."""
from __future__ import annotations

from collections.abc import Sequence

from volseg.errors import UsageError, unknown_choice_hint
from volseg.labels import LabelTable


def check_roi_subset(names: Sequence[str], table: LabelTable, *, model: str) -> None:
    """UsageError naming the closest class when a ``--roi-subset`` name is not a class of ``model``."""
    known = set(table.names().values())
    for name in names:
        if name not in known:
            raise UsageError(f"--roi-subset: model {model!r} has no class {name!r}",
                             hint=unknown_choice_hint(name, known))
