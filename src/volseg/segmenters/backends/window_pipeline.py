"""One network behind a predictor callable, from a volume to labels on exactly its grid.

Shared by the ONNX and MONAI-bundle backends. What the network expects is data
(:class:`NetworkInput`): orientation, which volume axes become the network's axes, target spacing,
intensity preset, patch, window step, mirror axes. The steps, all on the compute device:

reorient → permute axes → (crop to the non-zero box) → normalise → resample to the model spacing
(linear or cubic B-spline, voxel areas aligned, the model grid ``round(n·spacing/target)`` like nnU-Net) → the
engine's sliding window (Gaussian blending) → argmax on the model grid → labels back to the input
grid (``exact``: argmax of the linearly resampled blended scores; ``nearest``) → un-permute →
undo the reorientation.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from volseg.errors import ModelError
from volseg.segmenters.base import ProgressCallback, no_progress
from volseg.volume import Volume, reorient, undo_reorient

if TYPE_CHECKING:
    import torch

    from volseg.segmenters.engine.settings import EngineSettings


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NoNormalisation(_Strict):
    kind: Literal["none"]


class WindowPreset(_Strict):
    """Clip to ``window`` (e.g. HU) and map it linearly onto ``output_range``."""

    kind: Literal["window"]
    window: tuple[float, float]
    output_range: tuple[float, float] = (0.0, 1.0)

    @model_validator(mode="after")
    def _ordered(self) -> WindowPreset:
        if self.window[0] >= self.window[1]:
            raise ValueError("window needs lower < upper")
        return self


class ClipZScore(_Strict):
    """Clip to ``clip``, then (x − mean) / std with fixed statistics (nnU-Net's CTNormalization)."""

    kind: Literal["clip_zscore"]
    clip: tuple[float, float]
    mean: float
    std: float = Field(gt=0)


class ZScore(_Strict):
    """(x − mean) / std of this image; ``nonzero``: statistics over, and changes to, non-zero voxels."""

    kind: Literal["zscore"]
    nonzero: bool = False


class ZScoreThenScale(_Strict):
    """z-score (optionally over non-zero voxels), then min–max scaled onto ``output_range`` (MONAI)."""

    kind: Literal["zscore_then_scale"]
    nonzero: bool = False
    output_range: tuple[float, float] = (-1.0, 1.0)


Intensity = Annotated[NoNormalisation | WindowPreset | ClipZScore | ZScore | ZScoreThenScale,
                      Field(discriminator="kind")]


class NetworkInput(_Strict):
    """What the network expects of its input, in volume terms."""

    orientation: str | None = Field(None, pattern=r"^[LRAPSI]{3}$", description="reorient first; null: as stored")
    axes: tuple[int, int, int] = Field((0, 1, 2), description="volume axis (after reorientation) behind "
                                                              "each network spatial axis")
    spacing_mm: tuple[float, float, float] | None = Field(
        None, description="model voxel size along the volume axes (after reorientation); null: as stored")
    intensity: Intensity
    patch_size: tuple[int, int, int] = Field(description="window, in network axes")
    step: float = Field(0.5, gt=0, le=1, description="window step as a fraction of the patch")
    mirror_axes: tuple[int, ...] = Field((), description="network axes test-time mirroring may flip")
    crop_nonzero: bool = Field(False, description="crop to the box of non-zero voxels first (nnU-Net)")
    resampling: Literal["linear", "cubic"] = Field(
        "linear", description="image to the model grid: linear, or cubic B-spline (nnU-Net's default, "
                              "skimage.transform.resize order 3); voxel areas aligned either way")

    @model_validator(mode="after")
    def _checks(self) -> NetworkInput:
        if sorted(self.axes) != [0, 1, 2]:
            raise ValueError(f"axes must be a permutation of 0, 1, 2, got {list(self.axes)}")
        if any(p < 1 for p in self.patch_size):
            raise ValueError("patch sizes must be positive")
        if self.spacing_mm is not None and any(s <= 0 for s in self.spacing_mm):
            raise ValueError("spacing must be positive")
        if any(a not in (0, 1, 2) for a in self.mirror_axes):
            raise ValueError("mirror axes must be among 0, 1, 2")
        return self


@dataclass
class PipelineResult:
    labels: np.ndarray  # channel index per voxel, on the volume's grid (int64 codes)
    info: dict[str, Any]


def run_pipeline(volume: Volume, predictor, *, spec: NetworkInput, channels: int, settings: EngineSettings,
                 device: torch.device, progress: ProgressCallback = no_progress) -> PipelineResult:
    """Argmax channel of ``predictor``'s blended output for every voxel of ``volume``."""
    import torch

    from volseg.segmenters.engine import preprocess as pre
    from volseg.segmenters.engine.export import LabelDecoder, exact_labels, model_grid_codes, nearest_labels
    from volseg.segmenters.engine.infer import run_windows

    t0 = time.perf_counter()
    progress("preprocessing", 0, 1)
    work = reorient(volume, spec.orientation) if spec.orientation else volume
    perm = tuple(spec.axes)
    x = torch.empty(tuple(work.shape[a] for a in perm), dtype=torch.float32, device=device)
    x.copy_(torch.from_numpy(np.asarray(work.array, dtype=np.float32)).permute(perm))
    x = x[None]
    spacing = tuple(float(work.spacing[a]) for a in perm)
    box = pre.nonzero_bbox(x) if spec.crop_nonzero else tuple(slice(0, n) for n in x.shape[1:])
    x = normalise(x[(slice(None), *box)].contiguous(), spec.intensity)
    in_shape = tuple(x.shape[1:])
    target = tuple(float(spec.spacing_mm[a]) for a in perm) if spec.spacing_mm else spacing
    model_shape = tuple(max(1, round(n * s / t)) for n, s, t in zip(in_shape, spacing, target))
    x = resample_image(x, model_shape, spec.resampling)
    t1 = time.perf_counter()
    progress("preprocessing", 1, 1)
    run = run_windows(x, predictor, channels=channels, patch=spec.patch_size, settings=settings,
                      mirror_axes=spec.mirror_axes, progress=progress)
    del x
    t2 = time.perf_counter()
    progress("export", 0, 1)
    decoder = LabelDecoder(tuple(range(channels)))
    codes = model_grid_codes(run.blend, run.keep, decoder)
    maps = axis_maps(model_shape, in_shape)
    if settings.export == "exact":
        codes = exact_labels(codes, run.blend, run.keep, maps, decoder)
    else:
        codes = nearest_labels(decoder.labels(codes), maps)
    full = torch.zeros(tuple(work.shape[a] for a in perm), dtype=torch.int64, device=codes.device)
    full[box] = codes
    array = full.permute(tuple(int(i) for i in np.argsort(perm))).cpu().numpy()
    labels = undo_reorient(array, volume, spec.orientation).array if spec.orientation else array
    progress("export", 1, 1)
    info = {"precision": run.precision, "window_batch": run.window_batch, "windows": run.blend.windows,
            "accumulator": run.accumulator, "fallbacks": run.fallbacks, "model_grid_shape": list(model_shape),
            "timings_s": {"preprocess": t1 - t0, "sliding_window": t2 - t1,
                          "network_forward": run.blend.forward_s, "export": time.perf_counter() - t2}}
    return PipelineResult(labels, info)


def normalise(x: torch.Tensor, preset) -> torch.Tensor:
    """Apply an intensity preset to ``x`` (1, *spatial) in place where possible."""
    from volseg.segmenters.engine import preprocess as pre

    if isinstance(preset, NoNormalisation):
        return x
    if isinstance(preset, WindowPreset):
        return pre.window_normalize(x, lower=preset.window[0], upper=preset.window[1],
                                    out_lower=preset.output_range[0], out_upper=preset.output_range[1])
    if isinstance(preset, ClipZScore):
        return pre.ct_normalize(x, lower=preset.clip[0], upper=preset.clip[1], mean=preset.mean, std=preset.std)
    if isinstance(preset, (ZScore, ZScoreThenScale)):
        x = pre.zscore_normalize(x, (x != 0) if preset.nonzero else None)
        if isinstance(preset, ZScoreThenScale):
            lo, hi = float(x.min()), float(x.max())
            a, b = preset.output_range
            x.sub_(lo).mul_((b - a) / max(hi - lo, 1e-8)).add_(a)
        return x
    raise ModelError(f"unsupported intensity preset {preset!r}")


def resample_image(x: torch.Tensor, shape: tuple[int, ...], method: str = "linear") -> torch.Tensor:
    """``x`` (C, *spatial) resampled to ``shape`` (linear or cubic B-spline), voxel areas aligned."""
    from volseg.segmenters.engine.resample import apply_separable, torch_interp_matrix, zoom_matrix

    def matrix(n: int, m: int):
        return zoom_matrix(n, m, 3) if method == "cubic" else torch_interp_matrix(n, m, "linear")

    matrices = {d + 1: matrix(int(n), int(m)) for d, (n, m) in enumerate(zip(x.shape[1:], shape)) if n != m}
    return apply_separable(x, matrices) if matrices else x


def axis_maps(model_shape: tuple[int, ...], in_shape: tuple[int, ...]):
    """How each input-grid axis samples the model grid (linear, areas aligned)."""
    from volseg.segmenters.engine.resample import AxisMap, torch_interp_matrix

    return [AxisMap.from_matrix(torch_interp_matrix(int(m), int(n), "linear"))
            for m, n in zip(model_shape, in_shape)]
