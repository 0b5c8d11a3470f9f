"""One nnU-Net model (one "part") from a volume to labels on exactly that volume's grid.

nnU-Net order of operations, reproduced: the array in SimpleITK's (z, y, x) order and the plans'
``transpose_forward`` → crop to the non-zero box → normalise (as trained) → resample to the model
spacing → sliding window → (exact) resampling of class scores to the cropped input shape → argmax
→ un-crop → ``transpose_backward`` → back to volseg's (i, j, k) order. volseg's arrays are NIfTI
(i, j, k) = SimpleITK's (x, y, z), so one permutation at the boundary covers both conventions.
"""
from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from volseg.errors import ModelError
from volseg.segmenters.backends.nnunet_folder import ModelFolder
from volseg.segmenters.backends.nnunet_network import (
    FeaturePredictor,
    LogitsPredictor,
    feature_channels,
    load_fold_networks,
)
from volseg.segmenters.backends.nnunet_resampling import (
    Resampling,
    compute_new_shape,
    export_axis_maps,
    plan_resampling,
    resample_volume,
)
from volseg.segmenters.base import ProgressCallback, no_progress
from volseg.segmenters.engine import preprocess as pre
from volseg.segmenters.engine.export import LabelDecoder, exact_labels, model_grid_codes, nearest_labels
from volseg.segmenters.engine.infer import run_windows
from volseg.segmenters.engine.settings import EngineSettings

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BodyCrop:
    """Crop to voxels above ``threshold`` (grown by ``margin_mm``) before anything else."""

    threshold: float = -500.0
    margin_mm: float = 10.0


@dataclass
class PartResult:
    labels: np.ndarray  # on the volume's grid, model label values
    info: dict[str, Any] = field(default_factory=dict)


class NnUNetPart:
    """A loaded nnU-Net model: networks on the device plus everything the plans say about its input."""

    def __init__(self, folder: ModelFolder, device: torch.device, settings: EngineSettings):
        config, labels = folder.config(), folder.labels()
        channels = folder.dataset_json.get("channel_names") or folder.dataset_json.get("modality") or {}
        if len(channels) != 1:
            raise ModelError(f"the model needs {len(channels)} input images; volseg gives it one",
                             path=folder.path)
        self.folder = folder
        self.device = device
        self.transpose_forward = folder.transpose_forward
        self.spacing = config.spacing
        self.patch = config.patch_size
        self.scheme = config.normalization_schemes[0]
        self.use_mask = config.use_mask_for_norm[0]
        self.intensity = folder.intensity_properties(0)
        c = config.entries
        try:
            self.data_resampling = Resampling.from_plans(c["resampling_fn_data"], c.get("resampling_fn_data_kwargs"))
            self.score_resampling = Resampling.from_plans(c["resampling_fn_probabilities"],
                                                          c.get("resampling_fn_probabilities_kwargs"))
        except KeyError as exc:
            raise ModelError(f"plans.json lacks {exc}", path=folder.path) from exc
        self.decoder = LabelDecoder(labels.values, regions=labels.regions)
        self.decoder.check()
        self.num_outputs = labels.heads
        self.nets = load_fold_networks(folder, device, channels_last=settings.channels_last)

    @property
    def axis_order(self) -> tuple[int, ...]:
        """Volume axis behind each network axis: SimpleITK's reversal, then transpose_forward."""
        return tuple(2 - t for t in self.transpose_forward)

    # ---- the pipeline --------------------------------------------------------------------------
    def predict(self, array: np.ndarray, spacing: tuple[float, ...], settings: EngineSettings, *,
                label_map: dict[int, int] | None = None, body_crop: BodyCrop | None = None,
                progress: ProgressCallback = no_progress) -> PartResult:
        """Labels of ``array`` (volseg's i, j, k order, ``spacing`` in mm) on exactly its grid.

        ``label_map`` renames the model's labels ({model label: output label}; others become 0).
        """
        import torch

        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        progress("preprocessing", 0, 1)
        perm = self.axis_order
        x = _to_device(array, perm, self.device)
        spacing_n = tuple(float(spacing[p]) for p in perm)
        box = self._crop_box(x, spacing_n, body_crop)
        x = self._normalise(x[(slice(None), *box)])
        cropped_shape = tuple(x.shape[1:])
        model_shape = compute_new_shape(cropped_shape, spacing_n, self.spacing)
        x = resample_volume(x, plan_resampling(self.data_resampling, cropped_shape, model_shape,
                                               spacing_n, self.spacing))
        timings["preprocess"] = time.perf_counter() - t0
        progress("preprocessing", 1, 1)
        predictor, head, channels = self._predictor(settings)
        run = run_windows(x, predictor, channels=channels, patch=self.patch, settings=settings,
                          mirror_axes=self.folder.mirror_axes, progress=progress)
        del x
        timings["sliding_window"] = time.perf_counter() - t0 - timings["preprocess"]
        timings["network_forward"] = run.blend.forward_s
        t1 = time.perf_counter()
        progress("export", 0, 1)
        decoder = self.decoder.relabelled(label_map)
        codes = model_grid_codes(run.blend, run.keep, decoder, head)
        maps = export_axis_maps(self.score_resampling, model_shape, cropped_shape, self.spacing, spacing_n)
        stats: dict[str, float] = {}
        if settings.export == "exact":
            labels = exact_labels(codes, run.blend, run.keep, maps, decoder, head, progress=progress, stats=stats)
        else:
            labels = nearest_labels(decoder.labels(codes), maps)
        windows, run.blend = run.blend.windows, None  # free the blended sums before un-cropping
        full = torch.zeros(tuple(array.shape[p] for p in perm), dtype=labels.dtype, device=labels.device)
        full[box] = labels
        out = full.permute(tuple(int(i) for i in np.argsort(perm))).cpu().numpy()
        if out.dtype == np.int32:
            out = out.astype(np.uint16)
        timings["export"] = time.perf_counter() - t1
        progress("export", 1, 1)
        info = {"precision": run.precision, "window_batch": run.window_batch, "accumulator": run.accumulator,
                "windows": windows, "blend": "features" if head is not None else "logits",
                "model_grid_shape": list(model_shape), "export": settings.export, **stats,
                "fallbacks": run.fallbacks, "timings_s": timings}
        return PartResult(out, info)

    def _crop_box(self, x: torch.Tensor, spacing: tuple[float, ...], body: BodyCrop | None) -> tuple[slice, ...]:
        outer = tuple(slice(0, n) for n in x.shape[1:])
        if body is not None:
            outer = pre.body_bbox(x, threshold=body.threshold, margin_mm=body.margin_mm, spacing=spacing)
        inner = pre.nonzero_bbox(x[(slice(None), *outer)])
        return tuple(slice(o.start + i.start, o.start + i.stop) for o, i in zip(outer, inner))

    def _normalise(self, x: torch.Tensor) -> torch.Tensor:
        scheme, props = self.scheme, self.intensity
        if scheme == "CTNormalization":
            try:
                return pre.ct_normalize(x, lower=props["percentile_00_5"], upper=props["percentile_99_5"],
                                        mean=props["mean"], std=props["std"])
            except KeyError as exc:
                raise ModelError(f"plans lack the CT intensity property {exc}", path=self.folder.path) from exc
        if scheme == "ZScoreNormalization":
            mask = pre.filled_nonzero_mask(x) if self.use_mask else None
            return pre.zscore_normalize(x, None if mask is None else mask[None])
        if scheme == "NoNormalization":
            return x
        if scheme == "RescaleTo01Normalization":
            return pre.rescale_01(x)
        raise ModelError(f"normalisation scheme {scheme!r} is not supported", path=self.folder.path)

    def _predictor(self, settings: EngineSettings):
        features = feature_channels(self.nets)
        use_features = features is not None and (
            settings.blend == "features" or (settings.blend == "auto" and features < self.num_outputs))
        if settings.blend == "features" and features is None:
            raise ModelError("this network's last layer is not a 1×1×1 convolution; use blend='logits'")
        if use_features:
            predictor = FeaturePredictor(self.nets)
            return predictor, predictor.head(), features
        return LogitsPredictor(self.nets), None, self.num_outputs


def _to_device(array: np.ndarray, perm: tuple[int, ...], device: torch.device) -> torch.Tensor:
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
