"""Intensity checks over numpy arrays: does an image look like CT in Hounsfield units?"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class HUSummary:
    p1: float
    p99: float
    air_fraction: float  # share of voxels below -800 HU (air outside and inside the patient)


def hu_summary(image: np.ndarray, *, stride: int = 4) -> HUSummary:
    sample = np.asarray(image)[::stride, ::stride, ::stride].astype(np.float32, copy=False)
    sample = sample[np.isfinite(sample)]  # NaN/Inf voxels are damage, not intensities
    if sample.size == 0:
        return HUSummary(float("nan"), float("nan"), 0.0)
    p1, p99 = np.percentile(sample, [1, 99])
    return HUSummary(float(p1), float(p99), float(np.mean(sample < -800)))


def looks_like_ct(image: np.ndarray) -> bool:
    """True when the values are plausibly CT in HU: air near -1000 present, range not absurd."""
    s = hu_summary(image)
    return s.p1 <= -500 and s.p99 <= 5000 and s.air_fraction >= 0.01
