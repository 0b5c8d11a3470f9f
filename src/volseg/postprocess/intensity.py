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


HU_UNIT = "HU"


def is_ct_in_hu(image: np.ndarray, modality: str | None) -> bool:
    """True when the values are CT in HU, judged by the modality tag and the value range rather
    than by air being present (a CT crop of the liver holds none):

    * tagged CT: values within the range CT scanners store (1st percentile ≥ -3100, 99th ≤ 5000);
    * untagged: that range and either air (``looks_like_ct``) or clearly negative values (fat at
      about -100 HU; MR and PET magnitudes are never negative);
    * any other modality: never.
    """
    if modality not in (None, "CT"):
        return False
    s = hu_summary(image)
    plausible = bool(np.isfinite(s.p1)) and s.p1 >= -3100 and s.p99 <= 5000
    if modality == "CT":
        return plausible
    return plausible and (looks_like_ct(image) or s.p1 <= -20)


def intensity_unit(image: np.ndarray, modality: str | None) -> str:
    """'HU' for CT in Hounsfield units, else 'image units (<modality>)' (the image's own values)."""
    if is_ct_in_hu(image, modality):
        return HU_UNIT
    return f"image units ({modality or 'modality unknown'})"
