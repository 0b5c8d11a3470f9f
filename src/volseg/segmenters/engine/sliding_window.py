"""Sliding-window inference: run a predictor on overlapping windows and blend them with weights.

The engine does not care which model runs: ``predictor(x)`` maps a batch of windows
``(B, C_in, *patch)`` to ``(B, K, *patch)`` — logits, or the features that a pointwise affine head
turns into logits (see :mod:`volseg.segmenters.engine.export`). Outputs are weighted by the blending
map and summed in float32 on the accumulator device; the weight sum is kept beside them, so
``sums / weight_sum`` is nnU-Net's blended prediction. Nothing is divided here: argmax does not need
it, and whoever resamples scores divides where it samples.
"""
from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from volseg.segmenters.base import ProgressCallback, no_progress
from volseg.segmenters.engine.precision import autocast
from volseg.segmenters.engine.tiling import window_grid

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

Predictor = Callable[["torch.Tensor"], "torch.Tensor"]


@dataclass
class Blend:
    """Weighted sums of window outputs on one grid (the padded model grid)."""

    sums: torch.Tensor  # (K, *spatial) float32
    weight_sum: torch.Tensor  # (*spatial) float32, > 0 everywhere a window went (everywhere)
    windows: int
    passes_per_window: int  # 1, or the number of mirror combinations + 1
    forward_s: float = 0.0  # time spent inside the predictor (network forward passes)


def mirror_combinations(axes: Sequence[int]) -> list[tuple[int, ...]]:
    """Every non-empty subset of the spatial mirror axes, as tensor dims (spatial axis + 2)."""
    dims = [int(a) + 2 for a in axes]
    return [c for r in range(1, len(dims) + 1) for c in itertools.combinations(dims, r)]


def predict_windows(predictor: Predictor, x: torch.Tensor, *, mirror_axes: Sequence[int] = (),
                    dtype: torch.dtype | None = None) -> torch.Tensor:
    """The predictor on a batch, averaged over mirrored copies when ``mirror_axes`` is set."""
    import torch

    with autocast(x.device, dtype):
        out = predictor(x)
    combos = mirror_combinations(mirror_axes)
    if not combos:
        return out
    total = out.float()
    for dims in combos:
        with autocast(x.device, dtype):
            flipped = predictor(torch.flip(x, dims))
        total += torch.flip(flipped, dims).float()
    total /= len(combos) + 1
    return total


def blend_windows(image: torch.Tensor, predictor: Predictor, *, channels: int, patch: tuple[int, ...],
                  weights: torch.Tensor, step: float = 0.5, window_batch: int = 1,
                  mirror_axes: Sequence[int] = (), dtype: torch.dtype | None = None,
                  accumulator_device: torch.device | None = None, channels_last: bool = False,
                  progress: ProgressCallback = no_progress, stage: str = "sliding window") -> Blend:
    """Blend ``predictor`` over every window of ``image`` (C_in, *spatial), spatial ≥ patch."""
    import torch

    spatial = tuple(image.shape[1:])
    acc_device = accumulator_device or image.device
    slices = window_grid(spatial, patch, step)
    sums = torch.zeros((channels, *spatial), dtype=torch.float32, device=acc_device)
    weight_sum = torch.zeros(spatial, dtype=torch.float32, device=acc_device)
    w = weights.to(device=acc_device, dtype=torch.float32)
    fmt = torch.channels_last_3d if channels_last and image.ndim == 4 else torch.contiguous_format
    progress(stage, 0, len(slices))
    forward_s = 0.0
    with torch.inference_mode():
        for start in range(0, len(slices), window_batch):
            chunk = slices[start:start + window_batch]
            batch = torch.stack([image[(slice(None), *sl)] for sl in chunk]).contiguous(memory_format=fmt)
            t0 = time.perf_counter()
            out = predict_windows(predictor, batch, mirror_axes=mirror_axes, dtype=dtype)
            if out.device.type == "cuda":
                torch.cuda.synchronize(out.device)
            forward_s += time.perf_counter() - t0
            if out.shape[1] != channels:
                raise ValueError(f"predictor returned {out.shape[1]} channels, expected {channels}")
            out = out.to(acc_device)
            for b, sl in enumerate(chunk):
                target = sums[(slice(None), *sl)]
                target.addcmul_(out[b], w)  # w broadcast over the channels, in place: no temporary
                weight_sum[sl].add_(w)
            del out, batch
            progress(stage, start + len(chunk), len(slices))
    return Blend(sums, weight_sum, len(slices), len(mirror_combinations(mirror_axes)) + 1, forward_s)
