"""One call from a preprocessed tensor on the model grid to blended window sums, with fallbacks."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from volseg.segmenters.base import ProgressCallback, no_progress
from volseg.segmenters.engine.gaussian import blending_weights
from volseg.segmenters.engine.oom import Attempt, with_oom_fallback
from volseg.segmenters.engine.precision import autocast_dtype, precision_name
from volseg.segmenters.engine.settings import EngineSettings
from volseg.segmenters.engine.sliding_window import Blend, Predictor, blend_windows
from volseg.segmenters.engine.tiling import pad_to_patch

if TYPE_CHECKING:
    import torch


@dataclass
class WindowRun:
    blend: Blend
    keep: tuple[slice, ...]  # the unpadded model grid inside the blend
    precision: str
    window_batch: int
    accumulator: str
    fallbacks: list[str] = field(default_factory=list)


def run_windows(image: torch.Tensor, predictor: Predictor, *, channels: int, patch: Sequence[int],
                settings: EngineSettings, mirror_axes: Sequence[int] = (),
                progress: ProgressCallback = no_progress) -> WindowRun:
    """Pad ``image`` (C_in, *spatial) to the patch and blend ``predictor`` over it.

    ``mirror_axes`` are the axes the model allows mirroring over; they are used only when
    ``settings.mirror`` is on. Out-of-memory fallbacks are applied and listed in the result.
    """
    import torch

    patch = tuple(int(p) for p in patch)
    device = image.device
    padded, keep = pad_to_patch(image, patch)
    weights = blending_weights(patch, device=device)
    dtype = autocast_dtype(settings.precision, device)
    axes = tuple(mirror_axes) if settings.mirror else ()
    acc_device = torch.device("cpu") if settings.accumulator == "cpu" else device

    used: dict[str, int] = {}

    def attempt(a: Attempt) -> Blend:
        used["window_batch"] = a.window_batch
        return blend_windows(padded, predictor, channels=channels, patch=patch, weights=weights,
                             step=settings.step, window_batch=a.window_batch, mirror_axes=axes, dtype=dtype,
                             accumulator_device=a.accumulator_device, channels_last=settings.channels_last,
                             progress=progress)

    first = Attempt(settings.window_batch, acc_device)
    blend, fallbacks = with_oom_fallback(attempt, first, compute_device=device,
                                         allow_cpu_accumulator=settings.accumulator == "auto")
    return WindowRun(blend, keep, precision_name(dtype), used["window_batch"], str(blend.sums.device),
                     fallbacks)
