"""Which sliding windows lie wholly in air, so that ``skip_air`` need not run them.

A window of the (padded) model grid covers a box of the cropped input grid: its rows scaled by
input voxels per model voxel, grown by two input voxels on each side for the interpolation kernels
(linear, nnU-Net's B-splines and skimage's voxel-centre mapping all stay inside that box). The window
is air when every input voxel of that box is below :data:`~.settings.AIR_HU`; padding is air.
Skipped windows add the network's answer for one window of pure air (:data:`~.settings.AIR_WINDOW_HU`,
normalised as the model's input), so blending and export run exactly as for the other windows.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: input voxels added on each side of a window's box (interpolation support)
MARGIN = 2


@dataclass(frozen=True, eq=False)
class AirMask:
    """``air``: input voxels below the threshold on the cropped input grid (network axes);
    ``model_shape``: the model grid that grid was resampled to; ``air_value``: the normalised
    intensity of the stand-in air window."""

    air: np.ndarray
    model_shape: tuple[int, ...]
    air_value: float

    def __post_init__(self) -> None:
        if self.air.ndim != len(self.model_shape) or self.air.dtype != np.bool_:
            raise ValueError("AirMask: a boolean mask with one axis per model-grid axis is needed")

    def covers(self, window: Sequence[slice], offset: Sequence[int]) -> tuple[slice, ...]:
        """The input-grid box of ``window`` (padded model-grid slices; ``offset``: where the model
        grid starts in the padded grid)."""
        box = []
        for sl, o, n, m in zip(window, offset, self.air.shape, self.model_shape):
            scale = n / max(m, 1)
            a, b = max(int(sl.start) - o, 0), min(int(sl.stop) - o, m)
            lo = max(int(math.floor(a * scale)) - MARGIN, 0)
            hi = min(int(math.ceil(b * scale)) + MARGIN, n)
            box.append(slice(lo, max(hi, lo)))
        return tuple(box)

    def is_air(self, window: Sequence[slice], offset: Sequence[int]) -> bool:
        """True when every input voxel the window's outputs depend on is air (or padding)."""
        return bool(self.air[self.covers(window, offset)].all())
