"""Intensity normalisation and cropping, on tensors on the compute device (in place where possible).

The formulas are the ones models were trained with: nnU-Net's CT normalisation (clip to the
training foreground's 0.5/99.5 percentiles, then subtract its mean and divide by its std), z-score
(optionally inside a mask), rescaling to [0, 1], and HU windowing to a fixed output range.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

_EPS = 1e-8


def ct_normalize(x: torch.Tensor, *, lower: float, upper: float, mean: float, std: float) -> torch.Tensor:
    """nnU-Net ``CTNormalization``: clip to [lower, upper], then (x − mean) / std. In place."""
    x.clamp_(float(lower), float(upper))
    x.sub_(float(mean))
    x.div_(max(float(std), _EPS))
    return x


def zscore_normalize(x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """nnU-Net ``ZScoreNormalization``: (x − mean) / std over all voxels, or only inside ``mask``.

    Statistics are taken in float64 (population std); voxels outside the mask are left as they are.
    """
    if mask is None:
        mean, std = float(x.double().mean()), float(x.double().std(unbiased=False))
        x.sub_(mean).div_(max(std, _EPS))
        return x
    values = x[mask].double()
    mean, std = float(values.mean()), float(values.std(unbiased=False))
    x[mask] = ((x[mask] - mean) / max(std, _EPS)).to(x.dtype)
    return x


def rescale_01(x: torch.Tensor) -> torch.Tensor:
    """nnU-Net ``RescaleTo01Normalization``: (x − min) / max after shifting. In place."""
    x.sub_(x.min())
    x.div_(max(float(x.max()), _EPS))
    return x


def window_normalize(x: torch.Tensor, *, lower: float, upper: float, out_lower: float = 0.0,
                     out_upper: float = 1.0) -> torch.Tensor:
    """Clip to the window [lower, upper] (e.g. HU) and map it linearly onto [out_lower, out_upper]."""
    if upper <= lower:
        raise ValueError(f"window upper bound {upper} must exceed the lower bound {lower}")
    x.clamp_(float(lower), float(upper))
    x.sub_(float(lower)).mul_((out_upper - out_lower) / (upper - lower)).add_(out_lower)
    return x


def nonzero_bbox(x: torch.Tensor) -> tuple[slice, ...]:
    """Bounding box of voxels non-zero in any channel of ``x`` (C, *spatial); everything if none.

    This is nnU-Net's ``crop_to_nonzero`` box (filling holes in the mask never changes its box).
    """
    nonzero = (x != 0).any(dim=0)
    return mask_bbox(nonzero)


def mask_bbox(mask: torch.Tensor, margin: tuple[int, ...] | None = None) -> tuple[slice, ...]:
    """Half-open bounding box of ``mask`` (*spatial), grown by ``margin`` voxels; all if empty."""
    boxes = []
    for dim in range(mask.ndim):
        others = tuple(d for d in range(mask.ndim) if d != dim)
        line = mask.any(dim=others) if others else mask
        idx = line.nonzero()
        if idx.numel() == 0:
            return tuple(slice(0, n) for n in mask.shape)
        lo, hi = int(idx[0]), int(idx[-1]) + 1
        if margin is not None:
            lo, hi = max(0, lo - margin[dim]), min(mask.shape[dim], hi + margin[dim])
        boxes.append(slice(lo, hi))
    return tuple(boxes)


def body_bbox(x: torch.Tensor, *, threshold: float, margin_mm: float,
              spacing: tuple[float, ...]) -> tuple[slice, ...]:
    """Box around voxels above ``threshold`` (e.g. −500 HU for the body), grown by ``margin_mm``."""
    margin = tuple(int(np.ceil(margin_mm / s)) for s in spacing)
    return mask_bbox(x[0] > threshold, margin)


def filled_nonzero_mask(x: torch.Tensor) -> torch.Tensor:
    """nnU-Net's mask for masked z-score: non-zero in any channel, holes filled (on x's device)."""
    import torch
    from scipy.ndimage import binary_fill_holes

    nonzero = (x != 0).any(dim=0).cpu().numpy()
    return torch.from_numpy(binary_fill_holes(nonzero)).to(x.device)
