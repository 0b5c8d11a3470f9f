"""Agreement between label maps on the same grid (for demos, tests and model cross-checks)."""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice coefficient of two boolean masks; 1.0 when both are empty."""
    a = np.asarray(a, dtype=bool)
    b = np.asarray(b, dtype=bool)
    total = int(a.sum()) + int(b.sum())
    if total == 0:
        return 1.0
    return 2.0 * int(np.logical_and(a, b).sum()) / total


def dice_per_label(pred: np.ndarray, ref: np.ndarray, names: Mapping[int, str]) -> dict[str, float]:
    if pred.shape != ref.shape:
        raise ValueError(f"label maps differ in shape: {pred.shape} vs {ref.shape}")
    return {name: dice(pred == index, ref == index) for index, name in names.items()}
