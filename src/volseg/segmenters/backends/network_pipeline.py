"""The one preprocessing → sliding window → export pipeline of the nnU-Net, ONNX and MONAI backends.

What differs between models is data (:class:`PipelineSpec`): orientation, which volume axes become
the network's axes, the crop rule, the intensity preset, the target spacing, how the image is
resampled, how the model grid is computed and how class scores are resampled on export. The steps,
all on the compute device (:func:`run_network`):

reorient → to the device, axes permuted → crop (none / non-zero box / body box then non-zero box)
→ normalise → model grid → resample the image → the engine's streaming sliding window
(:func:`~volseg.segmenters.engine.stream.segment_windows`: class scores in a band about one patch
deep, decoded to (exact / nearest) labels on the cropped input grid as rows become final) → un-crop
→ un-permute → undo the reorientation.

Resampling rules: nnU-Net plans (:class:`~.nnunet_resampling.Resampling`: skimage-exact B-splines
with separate z, or torch linear) or plain ``"linear"`` / ``"cubic"`` (voxel areas aligned). Model
grid rules: ``"nnunet"`` is nnU-Net's ``compute_new_shape``, ``round(s / t · n)``; ``"round"`` is
``max(1, round(n · s / t))``. They are not the same: the two float products can fall on different
sides of a .5 (n = 5, s = 1.2, t = 0.8: 7.499999999999999 → 7 vs 7.5 → 8) and nnU-Net allows 0, so
both are kept, each exact (tests/backends/test_network_pipeline.py).
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from volseg.errors import UsageError
from volseg.segmenters.backends.nnunet_resampling import (
    Resampling,
    compute_new_shape,
    export_axis_maps,
    plan_resampling,
    resample_volume,
)
from volseg.segmenters.base import ProgressCallback, no_progress
from volseg.segmenters.intensity import Preset
from volseg.volume import Volume, reorient, undo_reorient

if TYPE_CHECKING:
    import torch

    from volseg.segmenters.engine.air import AirMask
    from volseg.segmenters.engine.export import AffineHead, LabelDecoder
    from volseg.segmenters.engine.settings import EngineSettings


@dataclass(frozen=True)
class BodyCrop:
    """Crop to voxels above ``threshold`` (grown by ``margin_mm``), then to the non-zero box."""

    threshold: float = -500.0
    margin_mm: float = 10.0


#: crop rule: "none", "nonzero" (nnU-Net's ``crop_to_nonzero``) or a body box then the non-zero box
Crop = Literal["none", "nonzero"] | BodyCrop
#: image / score resampling rule: nnU-Net plans semantics, or plain linear / cubic (areas aligned)
ImageResampling = Resampling | Literal["linear", "cubic"]


@dataclass(frozen=True)
class PipelineSpec:
    """Everything the steps need to know about a model's input, in network axes where it says so."""

    axes: tuple[int, ...]  # volume axis (after reorientation) behind each network spatial axis
    intensity: Preset
    patch: tuple[int, ...]
    orientation: str | None = None  # reorient first; None: as stored
    spacing_mm: tuple[float, ...] | None = None  # target voxel size in network axes; None: as stored
    crop: Crop = "none"
    image_resampling: ImageResampling = "linear"
    model_grid: Literal["nnunet", "round"] = "round"
    score_resampling: Resampling | Literal["linear"] = "linear"
    mirror_axes: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        n = len(self.axes)
        problems = [
            (sorted(self.axes) != list(range(n)), f"axes must be a permutation of 0..{n - 1}"),
            (len(self.patch) != n or any(p < 1 for p in self.patch), f"patch needs {n} positive sizes"),
            (self.spacing_mm is not None and (len(self.spacing_mm) != n or any(s <= 0 for s in self.spacing_mm)),
             f"spacing_mm needs {n} positive values"),
            (not isinstance(self.crop, BodyCrop) and self.crop not in ("none", "nonzero"), f"crop {self.crop!r}"),
            (not isinstance(self.image_resampling, Resampling) and self.image_resampling not in ("linear", "cubic"),
             f"image_resampling {self.image_resampling!r}"),
            (self.model_grid not in ("nnunet", "round"), f"model_grid {self.model_grid!r}"),
            (not isinstance(self.score_resampling, Resampling) and self.score_resampling != "linear",
             f"score_resampling {self.score_resampling!r}"),
            (any(a not in range(n) for a in self.mirror_axes), f"mirror axes must be among 0..{n - 1}"),
        ]
        bad = [text for failed, text in problems if failed]
        if bad:
            raise ValueError("invalid pipeline spec: " + "; ".join(bad))


@dataclass(frozen=True)
class Network:
    """The predictor and how its output channels decode to labels (``head``: features → logits)."""

    predictor: Any
    channels: int
    decoder: LabelDecoder
    head: AffineHead | None = None


@dataclass
class NetworkRun:
    labels: np.ndarray  # decoded labels on the volume's grid (the decoder's dtype)
    precision: str
    window_batch: int
    accumulator: str
    windows: int
    fallbacks: list
    model_shape: tuple[int, ...]
    stats: dict[str, float]
    timings: dict[str, float]


def run_network(volume: Volume, spec: PipelineSpec, network: Network, settings: EngineSettings, *,
                device: torch.device, progress: ProgressCallback = no_progress) -> NetworkRun:
    """Labels of ``volume`` on exactly its grid; reoriented first if ``spec.orientation`` says so."""
    work = reorient(volume, spec.orientation) if spec.orientation else volume
    run = run_on_array(work.array, work.spacing, spec, network, settings, device=device, progress=progress)
    if spec.orientation:
        run.labels = undo_reorient(run.labels, volume, spec.orientation).array
    return run


def run_on_array(array: np.ndarray, spacing: tuple[float, ...], spec: PipelineSpec, network: Network,
                 settings: EngineSettings, *, device: torch.device,
                 progress: ProgressCallback = no_progress) -> NetworkRun:
    """Labels of ``array`` (``spacing`` in mm, volume axes) on exactly its grid (orientation as is)."""
    import torch

    from volseg.segmenters.engine.stream import segment_windows

    t0 = time.perf_counter()
    progress("preprocessing", 0, 1)
    x, prep = preprocess(array, spacing, spec, device)
    t1 = time.perf_counter()
    progress("preprocessing", 1, 1)
    maps = score_maps(spec.score_resampling, prep.model_shape, prep.in_shape, prep.target, prep.spacing)
    air = air_mask(array, spec, prep) if settings.skip_air else None
    run = segment_windows(x, network.predictor, channels=network.channels, patch=spec.patch, settings=settings,
                          decoder=network.decoder, maps=maps, head=network.head, mirror_axes=spec.mirror_axes,
                          air=air, progress=progress)
    del x
    t2 = time.perf_counter()
    labels = run.labels
    full = torch.zeros(tuple(array.shape[p] for p in spec.axes), dtype=labels.dtype, device=labels.device)
    full[prep.box] = labels
    out = full.permute(tuple(int(i) for i in np.argsort(spec.axes))).cpu().numpy()
    progress("export", 1, 1)
    # windows and export interleave: "sliding_window" is the streaming pass less the time spent
    # decoding/exporting final rows, "export" is that time plus un-cropping to the input grid
    stats: dict[str, float] = {"scored_fraction": run.scored_fraction} if settings.export == "exact" else {}
    if air is not None:
        stats["air_windows_skipped"] = run.air_windows
    timings = {"preprocess": t1 - t0, "sliding_window": t2 - t1 - run.export_s, "network_forward": run.forward_s,
               "export": run.export_s + time.perf_counter() - t2}
    return NetworkRun(out, run.precision, run.window_batch, run.accumulator, run.windows, run.fallbacks,
                      prep.model_shape, stats, timings)


def air_mask(array: np.ndarray, spec: PipelineSpec, prep: Prepared) -> AirMask:
    """``skip_air``: input voxels below AIR_HU in the cropped input grid (network axes), and the
    normalised intensity of a window of pure air. CT presets only (the threshold is in HU)."""
    import torch

    from volseg.segmenters.engine.air import AirMask
    from volseg.segmenters.engine.settings import AIR_HU, AIR_WINDOW_HU

    if spec.intensity.kind not in ("window", "clip_zscore"):
        raise UsageError(f"--skip-air needs a CT model (HU intensities); this model normalises by "
                         f"{spec.intensity.kind!r}", hint="leave out --skip-air for this model")
    air = np.asarray(array).transpose(spec.axes)[prep.box] < AIR_HU
    value = spec.intensity.apply(torch.full((1, 1), AIR_WINDOW_HU, dtype=torch.float32))
    return AirMask(np.ascontiguousarray(air), prep.model_shape, float(value.reshape(-1)[0]))


@dataclass(frozen=True)
class Prepared:
    """Where the preprocessed image sits: crop box, shapes and spacings, all in network axes."""

    box: tuple[slice, ...]
    in_shape: tuple[int, ...]  # the cropped input grid
    model_shape: tuple[int, ...]
    spacing: tuple[float, ...]  # of the input grid
    target: tuple[float, ...]  # of the model grid


def preprocess(array: np.ndarray, spacing: tuple[float, ...], spec: PipelineSpec,
               device: torch.device) -> tuple[torch.Tensor, Prepared]:
    """To the device with axes permuted, cropped, normalised and resampled onto the model grid."""
    perm = tuple(spec.axes)
    x = to_device(array, perm, device)
    spacing_n = tuple(float(spacing[p]) for p in perm)
    box = crop_box(x, spacing_n, spec.crop)
    x = spec.intensity.apply(x[(slice(None), *box)].contiguous())
    in_shape = tuple(x.shape[1:])
    target = tuple(float(t) for t in spec.spacing_mm) if spec.spacing_mm is not None else spacing_n
    model_shape = model_grid(in_shape, spacing_n, target, spec.model_grid)
    x = resample_image(x, model_shape, spec.image_resampling, spacing_n, target)
    return x, Prepared(box, in_shape, model_shape, spacing_n, target)


def to_device(array: np.ndarray, perm: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """float32 (1, *spatial) tensor of ``array`` with axes permuted by ``perm``, on ``device``."""
    import torch

    a = np.asarray(array)
    if a.dtype.kind not in "iuf" or not a.dtype.isnative or a.dtype in (np.uint16, np.uint32, np.uint64):
        a = a.astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # read-only arrays: the tensor is only read
        source = torch.from_numpy(a).permute(perm)
    out = torch.empty(source.shape, dtype=torch.float32, device=device)
    out.copy_(source)
    return out[None]


def crop_box(x: torch.Tensor, spacing: tuple[float, ...], crop: Crop) -> tuple[slice, ...]:
    """The box the steps work in, per the crop rule (everything for ``"none"``)."""
    from volseg.segmenters.engine import preprocess as pre

    outer = tuple(slice(0, n) for n in x.shape[1:])
    if crop == "none":
        return outer
    if isinstance(crop, BodyCrop):
        outer = pre.body_bbox(x, threshold=crop.threshold, margin_mm=crop.margin_mm, spacing=spacing)
    inner = pre.nonzero_bbox(x[(slice(None), *outer)])
    return tuple(slice(o.start + i.start, o.start + i.stop) for o, i in zip(outer, inner))


def model_grid(shape: tuple[int, ...], spacing: tuple[float, ...], target: tuple[float, ...],
               rule: str) -> tuple[int, ...]:
    """The model grid's shape: nnU-Net's ``compute_new_shape``, or ``max(1, round(n·s/t))``."""
    if rule == "nnunet":
        return compute_new_shape(shape, spacing, target)
    return tuple(max(1, round(n * s / t)) for n, s, t in zip(shape, spacing, target))


def resample_image(x: torch.Tensor, shape: tuple[int, ...], rule: ImageResampling = "linear",
                   spacing: tuple[float, ...] | None = None,
                   target: tuple[float, ...] | None = None) -> torch.Tensor:
    """``x`` (C, *spatial) resampled to ``shape``: per nnU-Net plans, or linear / cubic B-spline."""
    from volseg.segmenters.engine.resample import apply_separable, torch_interp_matrix, zoom_matrix

    if isinstance(rule, Resampling):
        return resample_volume(x, plan_resampling(rule, tuple(x.shape[1:]), shape, spacing, target))

    def matrix(n: int, m: int):
        return zoom_matrix(n, m, 3) if rule == "cubic" else torch_interp_matrix(n, m, "linear")

    matrices = {d + 1: matrix(int(n), int(m)) for d, (n, m) in enumerate(zip(x.shape[1:], shape)) if n != m}
    return apply_separable(x, matrices) if matrices else x


def score_maps(rule: Resampling | str, model_shape, in_shape, model_spacing, in_spacing):
    """How each input-grid axis samples the model grid when labels are exported."""
    from volseg.segmenters.engine.resample import AxisMap, torch_interp_matrix

    if isinstance(rule, Resampling):
        return export_axis_maps(rule, model_shape, in_shape, model_spacing, in_spacing)
    return [AxisMap.from_matrix(torch_interp_matrix(int(m), int(n), "linear"))
            for m, n in zip(model_shape, in_shape)]
