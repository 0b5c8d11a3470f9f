"""Typed front door to cc3d's connected-component labelling.

cc3d's stubs take ``connectivity`` as ``Literal[4, 6, 8, 18, 26]``, so a plain ``int`` from our
options does not type-check; this module narrows it once (cc3d itself rejects other values with a
``ValueError`` too) and splits the ``return_N`` flag into two functions with one return type each.
"""
from __future__ import annotations

from typing import Literal

import numpy as np

_Connectivity = Literal[4, 6, 8, 18, 26]
_CONNECTIVITIES: dict[int, _Connectivity] = {4: 4, 6: 6, 8: 8, 18: 18, 26: 26}


def _connectivity(connectivity: int) -> _Connectivity:
    checked = _CONNECTIVITIES.get(connectivity)
    if checked is None:
        raise ValueError(f"connectivity must be one of 4, 6, 8, 18, 26, got {connectivity}")
    return checked


def label_components(data: np.ndarray, *, connectivity: int) -> np.ndarray:
    """cc3d labelling of ``data`` (binary or multilabel): one label per component, 0 = background."""
    import cc3d

    return cc3d.connected_components(data, connectivity=_connectivity(connectivity))


def label_components_n(data: np.ndarray, *, connectivity: int) -> tuple[np.ndarray, int]:
    """:func:`label_components` and the number of components."""
    import cc3d

    labels, n = cc3d.connected_components(data, connectivity=_connectivity(connectivity), return_N=True)
    return labels, int(n)
