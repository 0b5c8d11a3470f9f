"""What an image's values are: CT in HU, CT stored without its rescale (HU + 1024), or other.

Below both :mod:`volseg.segmenters.applicability` (checks before a model loads) and the classic
segmenter (checks inside ``predict``), which both ask.
"""
from __future__ import annotations

import numpy as np

HU_SHIFT = 1024  # stored value of a CT without rescale tags: HU + 1024


def classify_units(array: np.ndarray) -> tuple[str, float, float]:
    """("hu" | "hu+1024" | "other", 1st percentile, 99th percentile) of an image's values."""
    sample = np.asarray(array, dtype=np.float32).ravel()
    p1, p99 = (float(v) for v in np.percentile(sample, [1, 99]))
    if p1 <= -500 and p99 <= 5000 and np.mean(sample < -800) >= 0.01:
        return "hu", p1, p99
    shifted_air = np.mean((sample >= -100) & (sample < HU_SHIFT - 800))
    soft = np.mean((sample >= HU_SHIFT - 150) & (sample <= HU_SHIFT + 100))  # fat to soft tissue
    if p1 >= -100 and p1 <= HU_SHIFT - 500 and p99 <= 5000 + HU_SHIFT and shifted_air >= 0.01 and soft >= 0.1:
        return "hu+1024", p1, p99
    return "other", p1, p99
