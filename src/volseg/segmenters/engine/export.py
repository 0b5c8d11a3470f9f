"""From blended window sums to a label map on the input grid, without full-resolution class scores.

1. **Codes on the model grid**, a slab at a time: logits (through the affine head when the windows
   blended features), then argmax — or, for region-based models, the bit pattern of which region
   logits are positive. All classes' scores exist for one slab only.
2. **Back to the input grid.** ``nearest``: each output voxel takes the label of the model voxel that
   contains its centre. ``exact``: the labels nnU-Net gets by resampling every class score to the
   input grid (linear in-plane, nearest out of plane, …) and then taking the argmax. Each output score
   vector is a convex blend of at most 2×2×2 model voxels; where all of them carry the same code the
   blend has that code too (the argmax, and the sign of every region logit, survive convex
   combination), so only output voxels whose neighbourhood mixes codes need scores. Those are
   computed from the blended sums of their corners — or, when most voxels are mixed (noisy models),
   by resampling the blended sums slab by slab with the same 2-tap weights. Either way the output
   equals full score resampling, at a fraction of its time and memory.
"""
from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from volseg.segmenters.base import ProgressCallback, no_progress
from volseg.segmenters.engine.resample import AxisMap, torch_interp_matrix

if TYPE_CHECKING:
    import torch

    from volseg.segmenters.engine.sliding_window import Blend

_SCORE_BYTES = 1 << 25  # class scores held at once (32 MB, the size of a large L3 cache)
_CORNER_VOXELS = 1 << 16  # mixed voxels whose corners are gathered at once


def _chunk_voxels(channels: int) -> int:
    """Voxels per chunk so that ``channels`` float32 scores per voxel fill about _SCORE_BYTES."""
    return max(1024, _SCORE_BYTES // (4 * max(1, channels)))
_DENSE_ABOVE = 0.2  # fraction of mixed output voxels above which exact export resamples densely


@dataclass(frozen=True)
class AffineHead:
    """A pointwise affine map features → logits (a 1×1×1 convolution): ``W·f + b``."""

    weight: torch.Tensor  # (C, K) float32
    bias: torch.Tensor  # (C,) float32

    def __call__(self, features: torch.Tensor) -> torch.Tensor:
        """Logits (N, C) of features (N, K)."""
        import torch

        return torch.addmm(self.bias, features, self.weight.T)

    @classmethod
    def from_conv(cls, conv) -> AffineHead:
        w = conv.weight.detach().float()
        b = conv.bias.detach().float() if conv.bias is not None else w.new_zeros(w.shape[0])
        return cls(w.reshape(w.shape[0], w.shape[1]).clone(), b.clone())

    def to(self, device) -> AffineHead:
        return AffineHead(self.weight.to(device), self.bias.to(device))


@dataclass(frozen=True)
class LabelDecoder:
    """How class scores become labels: argmax over channels, or nnU-Net's ordered regions."""

    values: tuple[int, ...]  # label value per channel (argmax) or per region channel, in order
    regions: bool = False

    def codes(self, logits: torch.Tensor) -> torch.Tensor:
        """Code per voxel of logits (N, C): the argmax channel, or the bit set of positive regions."""
        import torch

        if not self.regions:  # max(...).indices: the first maximum, like argmax, and faster on CPU
            return torch.max(logits, dim=1).indices.to(self.code_dtype)
        bits = torch.zeros(logits.shape[0], dtype=torch.int64, device=logits.device)
        for i in range(logits.shape[1]):
            bits |= (logits[:, i] > 0).to(torch.int64) << i
        return bits

    def labels(self, codes: torch.Tensor) -> torch.Tensor:
        """Label values of codes (uint8 when they fit, else int32)."""
        import torch

        values = torch.tensor(self.values, dtype=self.label_dtype, device=codes.device)
        if not self.regions:
            return values[codes.long()]
        out = torch.zeros(codes.shape, dtype=self.label_dtype, device=codes.device)
        for i in range(len(self.values)):  # later regions overwrite earlier ones (nnU-Net)
            out = torch.where(((codes >> i) & 1).bool(), values[i], out)
        return out

    @property
    def code_dtype(self) -> torch.dtype:
        import torch

        if self.regions:
            return torch.int64
        return torch.uint8 if len(self.values) <= 256 else torch.int16

    @property
    def label_dtype(self) -> torch.dtype:
        import torch

        return torch.uint8 if max(self.values + (0,)) <= 255 else torch.int32

    def relabelled(self, mapping: dict[int, int] | None) -> LabelDecoder:
        """The same decoder writing ``mapping[value]`` (0 for values the mapping leaves out)."""
        if mapping is None:
            return self
        return LabelDecoder(tuple(int(mapping.get(v, 0)) for v in self.values), self.regions)

    def check(self) -> None:
        if self.regions and len(self.values) > 62:
            raise ValueError("more than 62 regions cannot be decoded")


def model_grid_codes(blend: Blend, keep: Sequence[slice], decoder: LabelDecoder,
                     head: AffineHead | None = None) -> torch.Tensor:
    """Codes (D, H, W) on the unpadded model grid ``keep``, computed a slab at a time."""
    import torch

    sums = blend.sums[(slice(None), *keep)]
    wsum = blend.weight_sum[tuple(keep)]
    depth, plane = sums.shape[1], int(np.prod(sums.shape[2:]))
    h = head.to(sums.device) if head is not None else None
    classes = h.weight.shape[0] if h is not None else sums.shape[0]
    rows = max(1, _chunk_voxels(max(classes, sums.shape[0])) // max(1, plane))
    out = torch.empty(sums.shape[1:], dtype=decoder.code_dtype, device=sums.device)
    for z0 in range(0, depth, rows):
        block = sums[:, z0:z0 + rows].reshape(sums.shape[0], -1)
        if h is not None:
            block = block / wsum[z0:z0 + rows].reshape(1, -1)
        out[z0:z0 + rows] = _decode_columns(block, h, decoder, codes=True).reshape(out[z0:z0 + rows].shape)
    return out


def _decode_columns(columns: torch.Tensor, head: AffineHead | None, decoder: LabelDecoder, *,
                    codes: bool = False) -> torch.Tensor:
    """Codes (or labels) of normalised scores given as columns (K, N), a cache-sized chunk at a time."""
    import torch

    n = columns.shape[1]
    step = _chunk_voxels(head.weight.shape[0] if head is not None else columns.shape[0])
    out = torch.empty(n, dtype=decoder.code_dtype if codes else decoder.label_dtype, device=columns.device)
    for start in range(0, n, step):
        part = columns[:, start:start + step]
        logits = head(part.T) if head is not None else part.T
        found = decoder.codes(logits)
        out[start:start + step] = found if codes else decoder.labels(found)
    return out


def nearest_labels(labels: torch.Tensor, maps: Sequence[AxisMap]) -> torch.Tensor:
    """Labels on the output grid: each output voxel takes the model voxel containing its centre."""
    return _gather(labels, [m.nearest for m in maps], [m.identity for m in maps])


def exact_labels(codes: torch.Tensor, blend: Blend, keep: Sequence[slice], maps: Sequence[AxisMap],
                 decoder: LabelDecoder, head: AffineHead | None = None,
                 progress: ProgressCallback = no_progress, stats: dict | None = None) -> torch.Tensor:
    """Labels on the output grid equal to decoding the resampled blended scores.

    ``stats`` (if given) receives ``scored_fraction``: the share of output voxels that needed scores.
    """
    labels = decoder.labels(codes)
    mixed = _mixed_cubes(codes, [m.two_tap for m in maps])
    out = _gather(labels, [m.lo for m in maps], [m.identity for m in maps])
    stats = {} if stats is None else stats
    stats["scored_fraction"] = 0.0
    if mixed is None:
        return out
    mixed = _gather(mixed, [m.lo for m in maps], [m.identity for m in maps])
    stats["scored_fraction"] = fraction = float(mixed.float().mean())
    if fraction > _DENSE_ABOVE:
        stats["scored_fraction"] = 1.0
        return _dense_exact(blend, keep, maps, decoder, head, progress)
    todo = mixed.nonzero()
    h = head.to(blend.sums.device) if head is not None else None
    tables = [_axis_tensors(m, blend.sums.device) for m in maps]
    total = todo.shape[0]
    for start in range(0, total, _CORNER_VOXELS):
        where = todo[start:start + _CORNER_VOXELS]
        scores = _blend_corners(where, blend, keep, tables)
        values = decoder.labels(decoder.codes(h(scores) if h is not None else scores))
        out[where[:, 0], where[:, 1], where[:, 2]] = values.to(out.device)
        progress("export", min(total, start + _CORNER_VOXELS), total)
    return out


# ---- helpers -----------------------------------------------------------------------------------
def _gather(volume: torch.Tensor, indices: Sequence[np.ndarray], skip: Sequence[bool]) -> torch.Tensor:
    import torch

    out = volume
    for dim, (idx, same) in enumerate(zip(indices, skip)):
        if not same:
            out = torch.index_select(out, dim, torch.as_tensor(idx, device=volume.device))
    return out


def _mixed_cubes(codes: torch.Tensor, two_tap: Sequence[bool]) -> torch.Tensor | None:
    """True at model voxel v when the codes in the cube v … v+1 (along two-tap axes) differ."""
    import torch

    steps = [(0, 1) if t else (0,) for t in two_tap]
    shifts = [s for s in itertools.product(*steps) if any(s)]
    if not shifts:
        return None
    mixed = torch.zeros(codes.shape, dtype=torch.bool, device=codes.device)
    n = codes.shape
    for s in shifts:
        head = tuple(slice(0, n[d] - s[d]) for d in range(3))
        tail = tuple(slice(s[d], n[d]) for d in range(3))
        mixed[head] |= codes[head] != codes[tail]
    return mixed


def _axis_tensors(m: AxisMap, device) -> tuple:
    import torch

    return (torch.as_tensor(m.lo, device=device), torch.as_tensor(m.hi, device=device),
            torch.as_tensor(m.w_lo, dtype=torch.float32, device=device),
            torch.as_tensor(m.w_hi, dtype=torch.float32, device=device))


def _blend_corners(where: torch.Tensor, blend: Blend, keep: Sequence[slice], tables) -> torch.Tensor:
    """Normalised blended sums (N, K) interpolated at output voxels ``where`` (N, 3)."""
    where = where.to(blend.sums.device)
    shape = blend.weight_sum.shape
    flat_sums = blend.sums.reshape(blend.sums.shape[0], -1)
    flat_w = blend.weight_sum.reshape(-1)
    per_axis = []
    for d, (lo, hi, w_lo, w_hi) in enumerate(tables):
        o = where[:, d]
        offset = keep[d].start or 0
        per_axis.append(((lo[o] + offset, w_lo[o]), (hi[o] + offset, w_hi[o])))
    total = None
    for (i0, a), (i1, b), (i2, c) in itertools.product(*per_axis):
        flat = (i0 * shape[1] + i1) * shape[2] + i2
        weight = (a * b * c) / flat_w[flat]
        corner = flat_sums[:, flat]
        total = corner * weight if total is None else total.addcmul_(corner, weight)
    if total is None:  # cannot happen: a point has two corners per axis
        raise RuntimeError("_blend_corners: no corners")
    return total.T


def _lerp(x: torch.Tensor, dim: int, table) -> torch.Tensor:
    """2-tap interpolation of ``x`` along ``dim`` with an axis table (lo, hi, w_lo, w_hi)."""
    import torch

    lo, hi, w_lo, w_hi = table
    shape = [1] * x.ndim
    shape[dim] = -1
    out = torch.index_select(x, dim, lo) * w_lo.view(shape)
    return out.addcmul_(torch.index_select(x, dim, hi), w_hi.view(shape))


def _resample_plane(x: torch.Tensor, m1: AxisMap, m2: AxisMap, t1, t2) -> torch.Tensor:
    """Resample axes 2 and 3 of ``x`` (K, s, H, W): torch's bilinear kernel when the weights are
    exactly its own (linear, voxel areas aligned, edges clamped), else 2-tap gathers."""
    import torch.nn.functional as F

    if _is_torch_linear(m1) and _is_torch_linear(m2):
        k, s = x.shape[:2]
        out = F.interpolate(x.reshape(1, k * s, *x.shape[2:]), size=(m1.n_out, m2.n_out), mode="bilinear",
                            align_corners=False)
        return out.reshape(k, s, m1.n_out, m2.n_out)
    for dim, (m, table) in ((2, (m1, t1)), (3, (m2, t2))):
        if not m.identity:
            x = _lerp(x, dim, table)
    return x


def _is_torch_linear(m: AxisMap) -> bool:
    """True when ``m`` has exactly the weights of ``F.interpolate(mode='linear', align_corners=False)``."""
    if m.identity or not m.two_tap:
        return False
    ref = _torch_linear_map(m.n_in, m.n_out)
    return bool(np.array_equal(m.lo, ref.lo) and np.allclose(m.w_lo, ref.w_lo, atol=1e-6)
                and np.allclose(m.w_hi, ref.w_hi, atol=1e-6) and np.array_equal(m.hi[m.w_hi != 0],
                                                                             ref.hi[m.w_hi != 0]))


@lru_cache(maxsize=32)
def _torch_linear_map(n_in: int, n_out: int) -> AxisMap:
    return AxisMap.from_matrix(torch_interp_matrix(n_in, n_out, "linear"))


def _dense_exact(blend: Blend, keep: Sequence[slice], maps: Sequence[AxisMap], decoder: LabelDecoder,
                 head: AffineHead | None, progress: ProgressCallback) -> torch.Tensor:
    """Resample normalised blended sums slab by slab (output axis 0), then decode every voxel."""
    import torch

    device = blend.sums.device
    tables = [_axis_tensors(m, device) for m in maps]
    h = head.to(device) if head is not None else None
    out_shape = tuple(m.n_out for m in maps)
    plane = out_shape[1] * out_shape[2]
    channels = max(h.weight.shape[0] if h is not None else 0, blend.sums.shape[0])
    rows = max(1, _chunk_voxels(channels) // plane)
    out = torch.empty(out_shape, dtype=decoder.label_dtype, device=device)
    lo0, hi0 = maps[0].lo, maps[0].hi
    for a in range(0, out_shape[0], rows):
        b = min(a + rows, out_shape[0])
        r0, r1 = int(lo0[a:b].min()), int(hi0[a:b].max()) + 1
        z = slice(keep[0].start + r0, keep[0].start + r1)
        part = blend.sums[:, z, keep[1], keep[2]] / blend.weight_sum[z, keep[1], keep[2]][None]
        local = (tables[0][0][a:b] - r0, tables[0][1][a:b] - r0, tables[0][2][a:b], tables[0][3][a:b])
        part = _lerp(part, 1, local)
        part = _resample_plane(part, maps[1], maps[2], tables[1], tables[2])
        out[a:b] = _decode_columns(part.reshape(part.shape[0], -1), h, decoder).reshape(out[a:b].shape)
        progress("export", b, out_shape[0])
    return out
