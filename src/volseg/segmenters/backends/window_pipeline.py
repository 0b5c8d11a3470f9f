"""One network behind a predictor callable, from a volume to labels on exactly its grid.

Shared by the ONNX and MONAI-bundle backends. What the network expects is data
(:class:`NetworkInput`): orientation, which volume axes become the network's axes, target spacing,
intensity preset (:mod:`volseg.segmenters.intensity`, the one vocabulary), patch, window step,
mirror axes. :func:`run_pipeline` turns it into a :class:`~.network_pipeline.PipelineSpec` (crop to
the non-zero box or not, linear or cubic B-spline resampling with voxel areas aligned, the model grid
``max(1, round(n·spacing/target))``, linear score resampling on export) and runs the one pipeline
(:func:`~.network_pipeline.run_network`), whose result it returns as channel indices.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import Field, model_validator

from volseg.segmenters.backends.network_pipeline import (
    Network,
    PipelineSpec,
    resample_image,
    run_network,
    score_maps,
)
from volseg.segmenters.base import ProgressCallback, no_progress
from volseg.segmenters.intensity import (
    ClipZScore,
    Intensity,
    NoNormalisation,
    RescaleTo01,
    WindowPreset,
    ZScore,
    ZScoreThenScale,
)
from volseg.strict import StrictModel
from volseg.volume import Volume

if TYPE_CHECKING:
    import torch

    from volseg.segmenters.engine.settings import EngineSettings

__all__ = ["ClipZScore", "Intensity", "NetworkInput", "NoNormalisation", "PipelineResult", "RescaleTo01",
           "WindowPreset", "ZScore", "ZScoreThenScale", "axis_maps", "normalise", "resample_image",
           "run_pipeline"]


class NetworkInput(StrictModel):
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

    def pipeline_spec(self) -> PipelineSpec:
        """These facts as the one pipeline's spec (spacing in network axes)."""
        perm = tuple(self.axes)
        return PipelineSpec(
            axes=perm, intensity=self.intensity, patch=tuple(self.patch_size), orientation=self.orientation,
            spacing_mm=tuple(float(self.spacing_mm[a]) for a in perm) if self.spacing_mm else None,
            crop="nonzero" if self.crop_nonzero else "none", image_resampling=self.resampling,
            model_grid="round", score_resampling="linear", mirror_axes=tuple(self.mirror_axes))


@dataclass
class PipelineResult:
    labels: np.ndarray  # channel index per voxel, on the volume's grid (int64 codes)
    info: dict[str, Any]


def run_pipeline(volume: Volume, predictor, *, spec: NetworkInput, channels: int, settings: EngineSettings,
                 device: torch.device, progress: ProgressCallback = no_progress) -> PipelineResult:
    """Argmax channel of ``predictor``'s blended output for every voxel of ``volume``."""
    from volseg.segmenters.engine.export import LabelDecoder

    network = Network(predictor, channels, LabelDecoder(tuple(range(channels))))
    run = run_network(volume, spec.pipeline_spec(), network, settings, device=device, progress=progress)
    info = {"precision": run.precision, "window_batch": run.window_batch, "windows": run.windows,
            "accumulator": run.accumulator, "fallbacks": run.fallbacks, "model_grid_shape": list(run.model_shape),
            "timings_s": run.timings}
    return PipelineResult(run.labels.astype(np.int64, copy=False), info)


def normalise(x: torch.Tensor, preset) -> torch.Tensor:
    """Apply an intensity preset to ``x`` (1, *spatial) in place where possible."""
    return preset.apply(x)


def axis_maps(model_shape: tuple[int, ...], in_shape: tuple[int, ...]):
    """How each input-grid axis samples the model grid (linear, areas aligned)."""
    return score_maps("linear", model_shape, in_shape, None, None)
