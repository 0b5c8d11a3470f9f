"""Where the windows go: nnU-Net's tile grid and centred zero padding, reproduced exactly."""
from __future__ import annotations

import itertools
import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def window_starts(image_size: int, patch: int, step: float) -> list[int]:
    """Start indices along one axis (nnU-Net ``compute_steps_for_sliding_window``).

    The number of windows is the fewest whose step is at most ``patch * step``; starts are then
    spread evenly from 0 to ``image_size - patch`` and rounded half-to-even like ``np.round``.
    """
    if image_size < patch:
        raise ValueError(f"image size {image_size} is smaller than the patch {patch}; pad first")
    target = patch * step
    count = math.ceil((image_size - patch) / target) + 1
    if count == 1:
        return [0]
    actual = (image_size - patch) / (count - 1)
    return [round(actual * i) for i in range(count)]


def window_grid(image_shape: tuple[int, ...], patch: tuple[int, ...], step: float) -> list[tuple[slice, ...]]:
    """Spatial slices of every window, in nnU-Net's order (last axis fastest)."""
    starts = [window_starts(s, p, step) for s, p in zip(image_shape, patch)]
    return [tuple(slice(a, a + p) for a, p in zip(corner, patch)) for corner in itertools.product(*starts)]


def padding_for(shape: tuple[int, ...], patch: tuple[int, ...]) -> list[tuple[int, int]]:
    """(below, above) zero padding per axis to reach at least ``patch``, centred like nnU-Net."""
    pads = []
    for size, p in zip(shape, patch):
        diff = max(0, p - size)
        pads.append((diff // 2, diff // 2 + diff % 2))
    return pads


def pad_to_patch(x: torch.Tensor, patch: tuple[int, ...]) -> tuple[torch.Tensor, tuple[slice, ...]]:
    """Zero-pad the spatial axes of ``x`` (C, *spatial) to at least ``patch``.

    Returns the padded tensor and the spatial slices that cut the padding off again.
    """
    import torch.nn.functional as F

    spatial = tuple(x.shape[1:])
    pads = padding_for(spatial, patch)
    keep = tuple(slice(lo, lo + s) for (lo, _), s in zip(pads, spatial))
    if not any(lo or hi for lo, hi in pads):
        return x, keep
    flat = [v for lo_hi in reversed(pads) for v in lo_hi]  # F.pad wants the last axis first
    return F.pad(x, flat, mode="constant", value=0.0), keep
