"""Windows for valid-convolution networks: the output tile is smaller than the input window.

A network without padding (DeepMedic) maps an input window of ``tile + 2·margin`` voxels per axis to
``tile`` voxels at its centre. The volume is cut into output tiles laid edge to edge from index 0
(the last one may reach past the end), each predicted from its window of the volume padded by
``margin`` voxels with its edge values (BLAST-CT's ``np.pad(mode='edge')``), so neighbouring tiles
never overlap and no blending is needed. Networks that subsample (DeepMedic's coarse pathways)
depend on where a window sits modulo their factors; tiles at fixed multiples from 0 keep that the
same for every tile and match the publisher's own tiling.

Windows whose input is one constant value everywhere (air after an HU window, for instance) all
have the same output; with ``constant`` set, the network runs on such a window once and its output
is reused. This changes nothing but the time.

The result is a :class:`~volseg.segmenters.engine.sliding_window.Blend` (weights all one), so the
engine's exporters turn it into labels. Precision, progress and the CUDA out-of-memory fallbacks are
the engine's own (:mod:`.precision`, :mod:`.oom`).
"""
from __future__ import annotations

import itertools
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from volseg.segmenters.base import ProgressCallback, no_progress
from volseg.segmenters.engine.oom import Attempt, with_oom_fallback
from volseg.segmenters.engine.precision import autocast_dtype, precision_name
from volseg.segmenters.engine.settings import EngineSettings
from volseg.segmenters.engine.sliding_window import Blend, Predictor, predict_windows

if TYPE_CHECKING:
    import torch


@dataclass
class ValidWindowRun:
    blend: Blend
    keep: tuple[slice, ...]  # the volume inside the tiled grid
    precision: str
    window_batch: int
    accumulator: str
    skipped: int = 0  # windows whose output was reused from the constant window
    fallbacks: list[str] = field(default_factory=list)


def tile_starts(size: int, tile: int) -> list[int]:
    """Output tile starts along one axis: 0, tile, 2·tile, … until the axis is covered."""
    if size < 1 or tile < 1:
        raise ValueError(f"size {size} and tile {tile} must be positive")
    return list(range(0, tile * math.ceil(size / tile), tile))


def tile_grid(shape: Sequence[int], tile: Sequence[int]) -> list[tuple[int, ...]]:
    """Corners of every output tile, last axis fastest."""
    return list(itertools.product(*(tile_starts(int(s), int(t)) for s, t in zip(shape, tile))))


def pad_edges(image: torch.Tensor, before: Sequence[int], after: Sequence[int]) -> torch.Tensor:
    """``image`` (C, *spatial) extended by repeating its edge voxels ``before``/``after`` per axis."""
    import torch.nn.functional as F

    if not any(before) and not any(after):
        return image
    flat = [v for lo, hi in reversed(list(zip(before, after))) for v in (int(lo), int(hi))]
    return F.pad(image[None], flat, mode="replicate")[0]


def run_valid_windows(image: torch.Tensor, predictor: Predictor, *, channels: int, tile: Sequence[int],
                      margin: Sequence[int], settings: EngineSettings, constant: float | None = None,
                      progress: ProgressCallback = no_progress) -> ValidWindowRun:
    """Predict every output tile of ``image`` (C_in, *spatial) from its ``tile + 2·margin`` window.

    ``predictor`` maps (B, C_in, *window) to (B, channels, *tile). Returns unnormalised sums (one
    window per voxel, weights one) on the tiled grid; ``keep`` cuts the volume out of it.
    """
    import torch

    tile = tuple(int(t) for t in tile)
    margin = tuple(int(m) for m in margin)
    spatial = tuple(int(s) for s in image.shape[1:])
    grid = tuple(t * math.ceil(s / t) for s, t in zip(spatial, tile))
    padded = pad_edges(image, margin, [m + g - s for m, g, s in zip(margin, grid, spatial)])
    dtype = autocast_dtype(settings.precision, image.device)
    acc_device = torch.device("cpu") if settings.accumulator == "cpu" else image.device
    used: dict[str, int] = {}

    def attempt(a: Attempt) -> tuple[Blend, int]:
        used["window_batch"] = a.window_batch
        return _tile_all(padded, predictor, channels=channels, tile=tile, margin=margin, grid=grid,
                         window_batch=a.window_batch, dtype=dtype, accumulator=a.accumulator_device,
                         channels_last=settings.channels_last, constant=constant, progress=progress)

    (blend, skipped), fallbacks = with_oom_fallback(
        attempt, Attempt(settings.window_batch, acc_device), compute_device=image.device,
        allow_cpu_accumulator=settings.accumulator == "auto")
    keep = tuple(slice(0, s) for s in spatial)
    return ValidWindowRun(blend, keep, precision_name(dtype), used["window_batch"], str(blend.sums.device),
                          skipped, fallbacks)


def _tile_all(padded: torch.Tensor, predictor: Predictor, *, channels: int, tile: tuple[int, ...],
              margin: tuple[int, ...], grid: tuple[int, ...], window_batch: int, dtype,
              accumulator: torch.device, channels_last: bool, constant: float | None,
              progress: ProgressCallback) -> tuple[Blend, int]:
    import torch

    corners = tile_grid(grid, tile)
    window = tuple(t + 2 * m for t, m in zip(tile, margin))
    sums = torch.zeros((channels, *grid), dtype=torch.float32, device=accumulator)
    fmt = torch.channels_last_3d if channels_last and padded.ndim == 4 else torch.contiguous_format
    cached: dict[str, torch.Tensor] = {}
    forward_s, skipped = 0.0, 0
    progress("sliding window", 0, len(corners))
    with torch.inference_mode():
        for start in range(0, len(corners), window_batch):
            chunk = corners[start:start + window_batch]
            crops = [padded[(slice(None), *(slice(c, c + w) for c, w in zip(corner, window)))] for corner in chunk]
            flat = [constant is not None and bool((crop == constant).all()) for crop in crops]
            todo = [crop for crop, same in zip(crops, flat) if not same]
            t0 = time.perf_counter()
            outs = iter(_predict(predictor, todo, fmt, dtype, channels) if todo else ())
            if any(flat) and "constant" not in cached:
                cached["constant"] = _predict(predictor, [crops[flat.index(True)]], fmt, dtype, channels)[0]
            forward_s += time.perf_counter() - t0
            for corner, same in zip(chunk, flat):
                out = cached["constant"] if same else next(outs)
                region = tuple(slice(c, c + t) for c, t in zip(corner, tile))
                sums[(slice(None), *region)] = out.to(accumulator, torch.float32)
            skipped += sum(flat)
            progress("sliding window", start + len(chunk), len(corners))
    ones = torch.ones((), dtype=torch.float32, device=accumulator).expand(grid)
    return Blend(sums, ones, len(corners), 1, forward_s), skipped


def _predict(predictor: Predictor, crops: list, fmt, dtype, channels: int) -> torch.Tensor:
    import torch

    batch = torch.stack(crops).contiguous(memory_format=fmt)
    out = predict_windows(predictor, batch, dtype=dtype)
    if out.shape[1] != channels:
        raise ValueError(f"predictor returned {out.shape[1]} channels, expected {channels}")
    return out
