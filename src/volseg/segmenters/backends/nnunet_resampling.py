"""nnU-Net's resampling semantics as separable matrices (see :mod:`volseg.segmenters.engine.resample`).

Plans name a resampling function and its keyword arguments for the image (``resampling_fn_data``) and
for class scores on export (``resampling_fn_probabilities``). Supported, with nnU-Net's exact
behaviour (checked against nnunetv2 in ``tests/backends``):

* ``resample_data_or_seg_to_shape`` (the default): skimage ``resize`` with B-spline ``order``, output
  clipped to the input's range; for anisotropic spacing (ratio > 3) "separate z": in-plane ``order``
  per slice (each slice clipped to its own range), then ``order_z`` along the low-resolution axis.
* ``resample_torch_fornnunet``: torch trilinear (align_corners=False); separate z uses
  ``nearest-exact`` along the low-resolution axis.
* ``no_resampling_hack``: none.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from volseg.errors import ModelError
from volseg.segmenters.engine.resample import (
    AxisMap,
    apply_axis,
    coordinate_matrix,
    torch_interp_matrix,
    zoom_matrix,
)

if TYPE_CHECKING:
    import torch

ANISO_THRESHOLD = 3.0  # nnunetv2.configuration.ANISO_THRESHOLD


@dataclass(frozen=True)
class Resampling:
    kind: str  # "spline" | "torch" | "none"
    order: int = 3
    order_z: int = 0
    force_separate_z: bool | None = None
    aniso_mode: str = "nearest-exact"

    @classmethod
    def from_plans(cls, name: str, kwargs: dict | None) -> Resampling:
        kw = dict(kwargs or {})
        if name in ("resample_data_or_seg_to_shape", "resample_data_or_seg_to_spacing"):
            return cls("spline", int(kw.get("order", 3)), int(kw.get("order_z", 0)),
                       kw.get("force_separate_z", False))
        if name == "resample_torch_fornnunet":
            if kw.get("mode", "linear") != "linear":
                raise ModelError(f"resample_torch_fornnunet mode {kw['mode']!r} is not supported")
            return cls("torch", 1, 0, kw.get("force_separate_z"), kw.get("aniso_axis_mode", "nearest-exact"))
        if name == "no_resampling_hack":
            return cls("none")
        raise ModelError(f"the plans' resampling function {name!r} is not supported",
                         hint="supported: resample_data_or_seg_to_shape, resample_torch_fornnunet")


@dataclass(frozen=True)
class ResamplePlan:
    """Matrices per axis (None = unchanged) and how the result is clipped."""

    matrices: tuple[np.ndarray | None, ...]
    separate_axis: int | None  # resampled last, after in-plane axes (and their per-slice clip)
    clip: bool  # skimage's clip of the output to the input's range


def compute_new_shape(shape, current_spacing, new_spacing) -> tuple[int, ...]:
    """nnU-Net ``compute_new_shape``: round(old spacing / new spacing · old size) per axis."""
    return tuple(round(float(c) / float(n) * int(s)) for s, c, n in zip(shape, current_spacing, new_spacing))


def separate_z(force: bool | None, current_spacing, new_spacing) -> int | None:
    """The low-resolution axis to resample separately, or None (``determine_do_sep_z_and_axis``)."""
    def anisotropic(spacing) -> bool:
        return max(spacing) / min(spacing) > ANISO_THRESHOLD

    def lowres(spacing) -> list[int]:
        spacing = np.asarray(spacing, dtype=float)
        return [int(i) for i in np.where(max(spacing) / spacing == 1)[0]]

    if force is not None:
        axes = lowres(current_spacing) if force else None
    elif anisotropic(current_spacing):
        axes = lowres(current_spacing)
    elif anisotropic(new_spacing):
        axes = lowres(new_spacing)
    else:
        axes = None
    return axes[0] if axes is not None and len(axes) == 1 else None


def plan_resampling(spec: Resampling, in_shape, out_shape, current_spacing, new_spacing) -> ResamplePlan:
    in_shape, out_shape = tuple(int(s) for s in in_shape), tuple(int(s) for s in out_shape)
    if spec.kind == "none" or in_shape == out_shape:
        if spec.kind == "none" and in_shape != out_shape:
            raise ModelError("the model's plans disable resampling but the input is not at the model spacing")
        return ResamplePlan((None, None, None), None, False)
    axis = separate_z(spec.force_separate_z, current_spacing, new_spacing)
    matrices: list[np.ndarray | None] = []
    for d, (n_in, n_out) in enumerate(zip(in_shape, out_shape)):
        if n_in == n_out:
            matrices.append(None)
        elif spec.kind == "torch":
            mode = spec.aniso_mode if d == axis else "linear"
            matrices.append(torch_interp_matrix(n_in, n_out, mode))
        elif d == axis:
            matrices.append(coordinate_matrix(n_in, n_out, spec.order_z))
        else:
            matrices.append(zoom_matrix(n_in, n_out, spec.order))
    return ResamplePlan(tuple(matrices), axis, spec.kind == "spline" and spec.order > 1)


def resample_volume(x: torch.Tensor, plan: ResamplePlan) -> torch.Tensor:
    """Resample ``x`` (C, *spatial) float32 per ``plan``, clipping like skimage where it does."""
    if all(m is None for m in plan.matrices):
        return x
    source = x
    inplane = [(d, m) for d in range(3) if d != plan.separate_axis and (m := plan.matrices[d]) is not None]
    inplane.sort(key=lambda dm: dm[1].shape[0] / dm[1].shape[1])
    for d, m in inplane:
        x = apply_axis(x, m, d + 1)
    if plan.clip:
        x = _clip_to_source(x, source, plan.separate_axis)
    axis = plan.separate_axis
    if axis is not None and (last := plan.matrices[axis]) is not None:
        x = apply_axis(x, last, axis + 1)
    return x


def _clip_to_source(x: torch.Tensor, source: torch.Tensor, axis: int | None) -> torch.Tensor:
    """Clip to the source range: per channel, or per channel and slice along ``axis``."""
    import torch

    if axis is None:
        dims = tuple(range(1, source.ndim))
        lo, hi = torch.amin(source, dim=dims, keepdim=True), torch.amax(source, dim=dims, keepdim=True)
    else:
        dims = tuple(d for d in range(1, source.ndim) if d != axis + 1)
        lo, hi = torch.amin(source, dim=dims, keepdim=True), torch.amax(source, dim=dims, keepdim=True)
    return torch.maximum(torch.minimum(x, hi), lo)


def export_axis_maps(spec: Resampling, model_shape, out_shape, model_spacing, out_spacing) -> list[AxisMap]:
    """How each output axis samples the model grid when class scores are resampled on export."""
    plan = plan_resampling(spec, model_shape, out_shape, model_spacing, out_spacing)
    maps = []
    for d, m in enumerate(plan.matrices):
        n = int(model_shape[d])
        matrix = np.eye(n) if m is None else m
        try:
            maps.append(AxisMap.from_matrix(matrix))
        except ValueError as exc:
            raise ModelError(f"exact export needs linear or nearest score resampling ({exc})",
                             hint="use export='nearest' for this model") from exc
    return maps
