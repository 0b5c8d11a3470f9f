"""The one intensity vocabulary: how a volume's values are normalised before a network sees them.

Each preset is frozen data with the formula it stands for (:meth:`apply`, on a torch tensor on the
compute device, in place where possible). The same kind names are used by the catalogue
(``input.intensity.kind``, plus ``from_model``: "the model's own files say", e.g. nnU-Net plans or
a bundle config), by ONNX sidecars and MONAI bundle specs (:class:`NetworkInput`) and by the
nnU-Net backend (each plans scheme maps onto one preset, :func:`from_nnunet_scheme`).

Torch-free to import: the formulas import :mod:`volseg.segmenters.engine.preprocess` when applied.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field, ValidationError, model_validator

from volseg.errors import ModelError
from volseg.strict import StrictModel

if TYPE_CHECKING:
    import torch

#: the kinds of preset, as spelled in catalogue entries, sidecars and specs
PresetKind = Literal["none", "window", "clip_zscore", "zscore", "zscore_then_scale", "rescale_01"]
#: the catalogue's one extra kind: the normalisation is read from the model's own files
FROM_MODEL = "from_model"


class NoNormalisation(StrictModel):
    """Values as they are (nnU-Net's ``NoNormalization``)."""

    kind: Literal["none"]

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        return x


class WindowPreset(StrictModel):
    """Clip to ``window`` (e.g. HU) and map it linearly onto ``output_range``."""

    kind: Literal["window"]
    window: tuple[float, float]
    output_range: tuple[float, float] = (0.0, 1.0)

    @model_validator(mode="after")
    def _ordered(self) -> WindowPreset:
        if self.window[0] >= self.window[1]:
            raise ValueError("window needs lower < upper")
        return self

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        from volseg.segmenters.engine import preprocess as pre

        return pre.window_normalize(x, lower=self.window[0], upper=self.window[1],
                                    out_lower=self.output_range[0], out_upper=self.output_range[1])


class ClipZScore(StrictModel):
    """Clip to ``clip``, then (x − mean) / std with fixed statistics (nnU-Net's ``CTNormalization``)."""

    kind: Literal["clip_zscore"]
    clip: tuple[float, float]
    mean: float
    std: float = Field(gt=0)

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        from volseg.segmenters.engine import preprocess as pre

        return pre.ct_normalize(x, lower=self.clip[0], upper=self.clip[1], mean=self.mean, std=self.std)


def _zscore(x: torch.Tensor, nonzero: bool, fill_holes: bool) -> torch.Tensor:
    from volseg.segmenters.engine import preprocess as pre

    if not nonzero:
        return pre.zscore_normalize(x, None)
    mask = pre.filled_nonzero_mask(x)[None] if fill_holes else (x != 0)
    return pre.zscore_normalize(x, mask)


class ZScore(StrictModel):
    """(x − mean) / std of this image; ``nonzero``: statistics over, and changes to, non-zero voxels
    only (``fill_holes``: the non-zero mask with its holes filled, nnU-Net's ``ZScoreNormalization``)."""

    kind: Literal["zscore"]
    nonzero: bool = False
    fill_holes: bool = False

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        return _zscore(x, self.nonzero, self.fill_holes)


class ZScoreThenScale(StrictModel):
    """z-score (optionally over non-zero voxels), then min–max scaled onto ``output_range`` (MONAI)."""

    kind: Literal["zscore_then_scale"]
    nonzero: bool = False
    output_range: tuple[float, float] = (-1.0, 1.0)

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        x = _zscore(x, self.nonzero, False)
        lo, hi = float(x.min()), float(x.max())
        a, b = self.output_range
        return x.sub_(lo).mul_((b - a) / max(hi - lo, 1e-8)).add_(a)


class RescaleTo01(StrictModel):
    """(x − min) / max after the shift (nnU-Net's ``RescaleTo01Normalization``)."""

    kind: Literal["rescale_01"]

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        from volseg.segmenters.engine import preprocess as pre

        return pre.rescale_01(x)


Preset = NoNormalisation | WindowPreset | ClipZScore | ZScore | ZScoreThenScale | RescaleTo01
Intensity = Annotated[Preset, Field(discriminator="kind")]


def from_nnunet_scheme(scheme: str, *, use_mask: bool, properties: dict, path=None) -> Preset:
    """The preset an nnU-Net plans normalisation scheme stands for (statistics from the plans)."""
    if scheme == "CTNormalization":
        try:
            clip = (properties["percentile_00_5"], properties["percentile_99_5"])
            return ClipZScore(kind="clip_zscore", clip=clip, mean=properties["mean"], std=properties["std"])
        except KeyError as exc:
            raise ModelError(f"plans lack the CT intensity property {exc}", path=path) from exc
        except ValidationError as exc:
            raise ModelError("plans' CT intensity properties are invalid "
                             f"({exc.errors()[0]['msg']})", path=path) from exc
    if scheme == "ZScoreNormalization":
        return ZScore(kind="zscore", nonzero=bool(use_mask), fill_holes=True)
    if scheme == "NoNormalization":
        return NoNormalisation(kind="none")
    if scheme == "RescaleTo01Normalization":
        return RescaleTo01(kind="rescale_01")
    raise ModelError(f"normalisation scheme {scheme!r} is not supported", path=path)
