"""``backend_options`` of a catalogue entry: one strict model per backend, chosen by ``backend``.

The catalogue validates an entry's options with the model its ``backend`` names
(:data:`BACKEND_OPTIONS`) when it loads, so a backend reads typed fields and never defends against a
loose entry. ``engine`` (where a backend has one) sets :class:`EngineSettings` fields; how it combines
with ``sliding_window`` and the user's overrides is :func:`volseg.segmenters.engine_settings.engine_settings`.

This module is the bottom of the segmenters package: it imports no backend and no registry.
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from volseg.strict import StrictModel


class CatalogueEngine(StrictModel):
    """Engine settings a catalogue entry fixes for its model (:class:`EngineSettings` field names)."""

    step: float | None = Field(None, gt=0.0, le=1.0)
    window_batch: int | None = Field(None, ge=1)
    mirror: bool | None = None
    precision: Literal["auto", "fp32", "bf16", "fp16"] | None = None
    channels_last: bool | None = None
    export: Literal["exact", "nearest"] | None = None
    blend: Literal["auto", "features", "logits"] | None = None
    accumulator: Literal["auto", "device", "cpu"] | None = None

    def changes(self) -> dict[str, object]:
        """The settings this entry fixes (unset ones omitted)."""
        return {k: v for k, v in self.model_dump().items() if v is not None}


class ClassicOptions(StrictModel):
    """``classic``: the built-in rule-based segmenter has no options."""


class PartOptions(StrictModel):
    """One nnU-Net model of a multi-part model and where its classes go in the combined map."""

    model_folder: str | None = None  # trained-model folder (absolute, or relative to the model dir)
    dataset: str | None = None  # or: <model dir>/<dataset>/<trainer>__<plans>__<configuration>
    trainer: str = "nnUNetTrainer"
    plans: str = "nnUNetPlans"
    configuration: str = "3d_fullres"
    folds: tuple[int | str, ...] | None = None
    checkpoint: str | None = None
    label_map: dict[int, int] | None = None  # this model's label → combined label (others dropped)


class WithEngine(StrictModel):
    """Options of a backend that runs volseg's engine: the entry may fix some of its settings."""

    engine: CatalogueEngine = CatalogueEngine()


class TripleSplit(StrictModel):
    """TotalSegmentator's split of a large image into three overlapping slabs along the S axis
    (``backends/nnunet_split.py``): when the image on the model grid has more than ``min_voxels``
    voxels and more than ``min_slices`` slices; slabs overlap by ``margin`` slices each way."""

    min_voxels: int = Field(512 * 512 * 900, ge=0)
    min_slices: int = Field(200, ge=0)
    margin: int = Field(20, ge=1)


class NnUNetOptions(PartOptions, WithEngine):
    """``nnunet``: the trained-model folder(s), orientation, body crop and engine settings."""

    model_dir: str | None = None  # default: where the weights manager installed the model
    parts: tuple[PartOptions, ...] | None = None
    reorient_to: str | None = Field(default=None, pattern=r"^[LRAPSI]{3}$")
    crop_to_body: bool = False  # only where the catalogue knows the model tolerates it
    # TotalSegmentator's way: resample to input.spacing_mm with this spline order before nnU-Net
    pre_resample_order: int | None = Field(default=None, ge=0, le=5)
    # TotalSegmentator's three-slab split of large images (its multi-part tasks only)
    triple_split: TripleSplit | None = None


class MonaiBundleOptions(WithEngine):
    """``monai_bundle``: where the bundle lies in the installed files and what it outputs."""

    bundle_folder: str = ""
    config: str = "configs/inference.json"
    network_def: str = "network_def"
    checkpoint: str | None = None
    highres: bool | None = None
    amp: bool | None = None
    out_channels: int | None = Field(None, ge=2)


class OnnxOptions(StrictModel):
    """``onnx``: no catalogued ONNX model yet (a lab's own ``.onnx`` file is given by path)."""


class RaidionicsOptions(StrictModel):
    """``raidionics``: the Raidionics task folder and how its probabilities become labels."""

    task: str
    pipeline: str | None = None
    result_name: str | None = None
    reconstruction_method: Literal["thresholding", "argmax"] = "thresholding"
    reconstruction_order: Literal["resample_first", "resample_second"] = "resample_first"
    #: catalogue models that can give lymph-node station landmarks, in order of preference
    landmark_sources: tuple[str, ...] = ()


class BlastCTOptions(WithEngine):
    """``blast_ct``: the DeepMedic architecture and its ensemble members."""

    architecture: str = "DeepMedic"
    scale_factors: tuple[int, ...] = (5, 3, 1)
    feature_maps: tuple[int, ...] = (30, 30, 40, 40, 40, 40, 50, 50)
    fully_connected: tuple[int, ...] = (250, 250)
    input_channels: int = 1
    num_classes: int = 5
    ensemble: tuple[str, ...] = Field(min_length=1)
    class_names: tuple[str, ...] = ()


BackendName = Literal["classic", "nnunet", "monai_bundle", "onnx", "raidionics", "blast_ct"]

#: backend name → the model of its ``backend_options`` (the registry maps the same names to factories)
BACKEND_OPTIONS: dict[str, type[StrictModel]] = {
    "classic": ClassicOptions,
    "nnunet": NnUNetOptions,
    "monai_bundle": MonaiBundleOptions,
    "onnx": OnnxOptions,
    "raidionics": RaidionicsOptions,
    "blast_ct": BlastCTOptions,
}

BackendOptions = (ClassicOptions | NnUNetOptions | MonaiBundleOptions | OnnxOptions | RaidionicsOptions
                  | BlastCTOptions)


def backend_options(backend: str, raw: object) -> StrictModel:
    """``raw`` (a dict, or already the right model) validated as ``backend``'s options."""
    try:
        model = BACKEND_OPTIONS[backend]
    except KeyError:
        raise ValueError(f"backend {backend!r} is not registered "
                         f"(known: {', '.join(sorted(BACKEND_OPTIONS))})") from None
    if isinstance(raw, model):
        return raw
    return model.model_validate(raw if raw is not None else {})
