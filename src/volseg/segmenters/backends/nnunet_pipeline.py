"""One nnU-Net model (one "part") from a volume to labels on exactly that volume's grid.

nnU-Net order of operations, reproduced (as data, :class:`~.network_pipeline.PipelineSpec`, run by
:func:`~.network_pipeline.run_on_array`): the array in SimpleITK's (z, y, x) order and the plans'
``transpose_forward`` → crop to the non-zero box → normalise (as trained) → resample to the model
spacing → sliding window → (exact) resampling of class scores to the cropped input shape → argmax
→ un-crop → ``transpose_backward`` → back to volseg's (i, j, k) order. volseg's arrays are NIfTI
(i, j, k) = SimpleITK's (x, y, z), so one permutation at the boundary covers both conventions.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from volseg.errors import ModelError
from volseg.segmenters.backends.network_pipeline import BodyCrop, Network, PipelineSpec, run_on_array
from volseg.segmenters.backends.nnunet_folder import ModelFolder
from volseg.segmenters.backends.nnunet_network import (
    FeaturePredictor,
    LogitsPredictor,
    feature_channels,
    load_fold_networks,
)
from volseg.segmenters.backends.nnunet_resampling import Resampling
from volseg.segmenters.base import ProgressCallback, no_progress
from volseg.segmenters.engine.export import LabelDecoder
from volseg.segmenters.engine.settings import EngineSettings
from volseg.segmenters.intensity import from_nnunet_scheme

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)
__all__ = ["BodyCrop", "NnUNetPart", "PartResult"]


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

    # ---- the pipeline (network_pipeline.run_on_array; this part only says what nnU-Net does) -------
    def predict(self, array: np.ndarray, spacing: tuple[float, ...], settings: EngineSettings, *,
                label_map: dict[int, int] | None = None, body_crop: BodyCrop | None = None,
                progress: ProgressCallback = no_progress) -> PartResult:
        """Labels of ``array`` (volseg's i, j, k order, ``spacing`` in mm) on exactly its grid.

        ``label_map`` renames the model's labels ({model label: output label}; others become 0).
        """
        spec = self.spec(body_crop)
        predictor, head, channels = self._predictor(settings)
        network = Network(predictor, channels, self.decoder.relabelled(label_map), head)
        run = run_on_array(array, spacing, spec, network, settings, device=self.device,
                           progress=progress)
        out = run.labels.astype(np.uint16) if run.labels.dtype == np.int32 else run.labels
        info = {"precision": run.precision, "window_batch": run.window_batch, "accumulator": run.accumulator,
                "windows": run.windows, "blend": "features" if head is not None else "logits",
                "model_grid_shape": list(run.model_shape), "export": settings.export, **run.stats,
                "fallbacks": run.fallbacks, "timings_s": run.timings}
        return PartResult(out, info)

    def spec(self, body_crop: BodyCrop | None = None) -> PipelineSpec:
        """nnU-Net's steps as data: non-zero crop (after the body box), plans normalisation and resampling."""
        preset = from_nnunet_scheme(self.scheme, use_mask=self.use_mask, properties=self.intensity,
                                    path=self.folder.path)
        return PipelineSpec(axes=self.axis_order, intensity=preset, patch=tuple(self.patch),
                            spacing_mm=tuple(self.spacing), crop=body_crop or "nonzero",
                            image_resampling=self.data_resampling, model_grid="nnunet",
                            score_resampling=self.score_resampling, mirror_axes=tuple(self.folder.mirror_axes))

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

