"""Blending weights for overlapping windows, identical to nnU-Net's ``compute_gaussian``.

Where windows overlap, the weights decide which window's opinion counts most, so they decide labels
at window seams. nnU-Net's map is a Gaussian of a unit impulse at ``patch // 2`` with
sigma = patch / 8 per axis, truncated at 4 sigma (``scipy.ndimage.gaussian_filter`` defaults),
divided by its maximum (times a scale), zeros replaced by the smallest non-zero weight. The filter
is separable and the impulse has one non-zero voxel, so the n-D result is exactly the outer product
of three 1-D kernels computed in the same order; ``tests/backends`` checks bit-equality.

The engine blends with :func:`blending_weights`: the map exactly as ``nnUNetPredictor`` makes it
(value scale 10, float16), used in float32. In float16 the Gaussian's far tails (a window's corners,
below about 6e-8) underflow and become the smallest weight, so where only corners of several windows
overlap, nnU-Net weighs them alike instead of by their true Gaussian ratio. With the float32 map the
labels there differ from nnU-Net's by more than rounding (a top-2 logit gap up to 13 % on
TotalSegmentator's example CT; ``benchmarks/parity``).
"""
from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

SIGMA_SCALE = 1.0 / 8.0
NNUNET_VALUE_SCALE = 10.0  # nnUNetPredictor's value_scaling_factor


@lru_cache(maxsize=8)
def gaussian_map_numpy(patch: tuple[int, ...], sigma_scale: float = SIGMA_SCALE,
                       value_scale: float = 1.0) -> np.ndarray:
    """The float64 map (before dtype conversion and zero clamping), read-only."""
    from scipy.ndimage import gaussian_filter1d

    weights = None
    for size in patch:
        impulse = np.zeros(int(size))
        impulse[int(size) // 2] = 1.0
        kernel = gaussian_filter1d(impulse, int(size) * sigma_scale, mode="constant", cval=0.0)
        weights = kernel if weights is None else weights[..., None] * kernel
    if weights is None:
        raise ValueError("gaussian_map_numpy: the patch has no axes")
    weights = weights / (np.max(weights) / value_scale)
    weights.flags.writeable = False
    return weights


def gaussian_weights(patch: tuple[int, ...], *, sigma_scale: float = SIGMA_SCALE, value_scale: float = 1.0,
                     dtype: torch.dtype | None = None, device: torch.device | str = "cpu") -> torch.Tensor:
    """Blending weights of shape ``patch`` as a tensor; never zero (zeros get the smallest weight)."""
    import torch

    g = torch.from_numpy(gaussian_map_numpy(tuple(int(p) for p in patch), sigma_scale, value_scale).copy())
    g = g.to(device=device, dtype=dtype or torch.float32)
    zero = g == 0
    if bool(zero.any()):
        g[zero] = torch.min(g[~zero])
    return g


def blending_weights(patch: tuple[int, ...], *, device: torch.device | str = "cpu") -> torch.Tensor:
    """The engine's window weights (float32): nnUNetPredictor's own map, made in float16 with its value
    scale (tails below float16's range take the smallest weight), so seams blend as nnU-Net's do."""
    import torch

    return gaussian_weights(patch, value_scale=NNUNET_VALUE_SCALE, dtype=torch.float16, device=device).float()
