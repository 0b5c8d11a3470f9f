"""DeepMedic (Kamnitsas et al. 2017) as published with BLAST-CT v1, written from its architecture.

Three pathways see the same input window at scale factors 5, 3 and 1: each subsamples the window
(every s-th voxel, starting at s // 2), applies eight valid 3×3×3 pre-activation blocks
(BatchNorm → PReLU → convolution without bias, plus the block's input cropped by one voxel when the
channel counts match), and upsamples back by nearest neighbour. Their outputs, cropped to the
common output size, are concatenated and go through "fully connected" pre-activation blocks
(1×1×1 convolutions; the last one gives the class logits).

All convolutions are valid, so the output is smaller than the input: a window of
``input_size(out)`` voxels yields ``out`` voxels at its centre (110 → 30 for BLAST-CT). Because the
coarse pathways subsample, the output depends on where the window sits modulo the scale factors;
windows whose outputs tile the volume at multiples of ``tile_multiple`` are exactly equivalent to
one large window (see :mod:`volseg.segmenters.engine.valid_windows`).

Module names reproduce the published state-dict keys exactly (``path(5, 5, 5)0.path.1.conv.weight``,
``fully_connected.2.bn.running_var``…), so checkpoints load with ``strict=True``.
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch
from torch import nn

SCALE_FACTORS: tuple[int, ...] = (5, 3, 1)
FEATURE_MAPS: tuple[int, ...] = (30, 30, 40, 40, 40, 40, 50, 50)
FULLY_CONNECTED: tuple[int, ...] = (250, 250)
KERNEL = 3


def centre_crop(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """The centre ``size`` voxels of ``x`` (B, C, *spatial); start = n // 2 − size // 2 per axis."""
    if tuple(x.shape[2:]) == tuple(size):
        return x
    index = tuple(slice(n // 2 - s // 2, n // 2 - s // 2 + s) for n, s in zip(x.shape[2:], size))
    return x[(slice(None), slice(None), *index)]


class PreActBlock(nn.Module):
    """BatchNorm → PReLU (one slope) → convolution (no bias), plus a cropped identity shortcut."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int = KERNEL):
        super().__init__()
        self.bn = nn.BatchNorm3d(in_channels)
        self.conv = nn.Conv3d(in_channels, out_channels, kernel_size=kernel, bias=False)
        self.prelu = nn.PReLU()  # (attributes in the published order: bn, conv, prelu)
        self.kernel = kernel

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(self.prelu(self.bn(x)))
        if x.shape[1] == out.shape[1]:
            trim = self.kernel // 2
            if trim:
                x = x[:, :, trim:-trim, trim:-trim, trim:-trim]
            out = out + x
        return out


class Subsample(nn.Module):
    """Every ``factor``-th voxel along each axis, starting at ``factor // 2``."""

    def __init__(self, factor: int):
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.factor
        return x if f == 1 else x[:, :, f // 2::f, f // 2::f, f // 2::f]


class NearestUpsample(nn.Module):
    """Each voxel repeated ``factor`` times along each axis."""

    def __init__(self, factor: int):
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.factor == 1:
            return x
        return nn.functional.interpolate(x, scale_factor=float(self.factor), mode="nearest")


class Pathway(nn.Module):
    """One DeepMedic pathway: subsample, the convolution blocks, upsample (``path.0`` … ``path.N+1``)."""

    def __init__(self, factor: int, in_channels: int, feature_maps: Sequence[int]):
        super().__init__()
        self.factor = factor
        self.blocks = len(feature_maps)
        layers: list[nn.Module] = [Subsample(factor)]
        channels = [in_channels, *feature_maps]
        layers += [PreActBlock(a, b) for a, b in itertools.pairwise(channels)]
        layers.append(NearestUpsample(factor))
        self.path = nn.Sequential(*layers)

    def input_size(self, output_size: int) -> int:
        """Window this pathway needs for ``output_size`` output voxels (one axis)."""
        coarse = math.ceil(output_size / self.factor)
        return (coarse + self.blocks * (KERNEL - 1)) * self.factor

    def forward(self, x: torch.Tensor, output_size: Sequence[int]) -> torch.Tensor:
        x = centre_crop(x, [self.input_size(o) for o in output_size])
        return centre_crop(self.path(x), output_size)


class DeepMedic(nn.Module):
    """The multi-scale network; ``forward(x)`` maps (B, C_in, n, n, n) to logits (B, K, m, m, m)."""

    def __init__(self, in_channels: int = 1, num_classes: int = 5, *,
                 scale_factors: Sequence[int] = SCALE_FACTORS, feature_maps: Sequence[int] = FEATURE_MAPS,
                 fully_connected: Sequence[int] = FULLY_CONNECTED):
        super().__init__()
        factors = tuple(int(s) for s in scale_factors)
        if list(factors) != sorted(factors, reverse=True):
            raise ValueError(f"scale factors must not increase, got {factors}")
        self.scale_factors = factors
        self.pathways: list[Pathway] = []
        for i, factor in enumerate(factors):
            pathway = Pathway(factor, in_channels, feature_maps)
            # the published name: str of the per-axis tuple, then the pathway's index
            self.add_module(f"path{(factor, factor, factor)}{i}", pathway)
            self.pathways.append(pathway)
        widths = [feature_maps[-1] * len(factors), *fully_connected, num_classes]
        self.fully_connected = nn.Sequential(
            *(PreActBlock(a, b, kernel=1) for a, b in itertools.pairwise(widths)))
        self.num_classes = num_classes

    # ---- geometry ------------------------------------------------------------------------------
    def input_size(self, output_size: int) -> int:
        """Input window (one axis) for ``output_size`` output voxels: the coarsest pathway's need."""
        return max(p.input_size(output_size) for p in self.pathways)

    def margin(self, output_size: int) -> int:
        """Voxels of context on each side of the output (40 for BLAST-CT's 30-voxel output)."""
        extra = self.input_size(output_size) - output_size
        if extra % 2:
            raise ValueError(f"output size {output_size} leaves an uneven margin")
        return extra // 2

    @property
    def tile_multiple(self) -> int:
        """Output tiles at multiples of this keep every pathway's subsampling lattice fixed."""
        return math.lcm(*self.scale_factors)

    def output_size(self, input_size: int) -> int:
        """The output size (one axis) of an ``input_size`` window; ValueError when it wastes input."""
        coarse = self.pathways[0]
        out = ((input_size - coarse.factor) // coarse.factor + 1 - coarse.blocks * (KERNEL - 1)) * coarse.factor
        if out <= 0 or self.input_size(out) != input_size:
            raise ValueError(f"input size {input_size} does not fit the network "
                             f"(e.g. {self.input_size(max(out, coarse.factor))} gives "
                             f"{max(out, coarse.factor)})")
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out_size = [self.output_size(int(n)) for n in x.shape[2:]]
        features = torch.cat([p(x, out_size) for p in self.pathways], dim=1)
        return self.fully_connected(features)
