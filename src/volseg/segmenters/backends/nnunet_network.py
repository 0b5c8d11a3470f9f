"""The networks of one nnU-Net model (one per fold) as the engine's predictor, with the head split off.

nnU-Net's U-Nets end in a 1×1×1 convolution (``decoder.seg_layers[-1]``) from the last decoder
features to the class logits. Blending is linear and that head is affine, so blending the features
and applying the head once per voxel gives exactly the blended logits: with 32 features and 118
classes that blends 3.7× fewer numbers. Folds are ensembled like nnU-Net (mean of logits); in
feature mode their features are concatenated and the head becomes the mean of the fold heads.
"""
from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from volseg.segmenters.backends.nnunet_folder import ModelFolder, build_network
from volseg.segmenters.engine.export import AffineHead

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)


@dataclass
class FoldNet:
    trunk: torch.nn.Module  # the network without its last 1×1×1 convolution (or the whole network)
    head: torch.nn.Conv3d | None  # that convolution, or None when it could not be split off


def load_fold_networks(folder: ModelFolder, device: torch.device, *, channels_last: bool = False) -> list[FoldNet]:
    """One network per fold with its weights, on ``device``, head split off where possible."""
    import torch

    nets = []
    for fold in folder.folds:
        network = _with_weights(folder, fold.state_dict).to(device).eval()
        if channels_last:
            network = network.to(memory_format=torch.channels_last_3d)
        nets.append(_split_head(network))
    return nets


def _with_weights(folder: ModelFolder, state_dict: dict):
    """The network with ``state_dict`` as its weights, built on the meta device (no random init).

    Falls back to an ordinary build when the network keeps tensors outside its state dict.
    """
    import torch

    with torch.device("meta"):
        network = build_network(folder)
    network.load_state_dict(state_dict, assign=True)
    if any(t.is_meta for t in itertools.chain(network.parameters(), network.buffers())):
        network = build_network(folder)
        network.load_state_dict(state_dict)
    return network


def _split_head(network) -> FoldNet:
    import torch

    decoder = getattr(network, "decoder", None)
    layers = getattr(decoder, "seg_layers", None)
    if decoder is None or layers is None or getattr(decoder, "deep_supervision", True):
        return FoldNet(network, None)
    last = layers[-1]
    if not (isinstance(last, torch.nn.Conv3d) and tuple(last.kernel_size) == (1, 1, 1)
            and tuple(last.stride) == (1, 1, 1) and tuple(last.padding) == (0, 0, 0)
            and last.groups == 1 and tuple(last.dilation) == (1, 1, 1)):
        return FoldNet(network, None)
    layers[-1] = torch.nn.Identity()
    return FoldNet(network, last)


def feature_channels(nets: list[FoldNet]) -> int | None:
    """Channels the feature-mode predictor returns (all folds), or None if a head is missing."""
    heads = [n.head for n in nets]
    if any(h is None for h in heads):
        return None
    return sum(int(h.in_channels) for h in heads if h is not None)


class LogitsPredictor:
    """Windows → mean logits over folds (nnU-Net's ensembling)."""

    def __init__(self, nets: list[FoldNet]):
        self.nets = nets

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        outs = (self._logits(net, x) for net in self.nets)
        total = next(outs)
        for out in outs:
            total = total + out
        return total if len(self.nets) == 1 else total / len(self.nets)

    @staticmethod
    def _logits(net: FoldNet, x: torch.Tensor) -> torch.Tensor:
        out = net.trunk(x)
        if net.head is not None:
            out = net.head(out)
        return out.float()


class FeaturePredictor:
    """Windows → every fold's last decoder features, concatenated along channels."""

    def __init__(self, nets: list[FoldNet]):
        self.nets = nets

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        import torch

        outs = [net.trunk(x) for net in self.nets]
        return outs[0] if len(outs) == 1 else torch.cat(outs, dim=1)

    def head(self) -> AffineHead:
        """The affine map from concatenated fold features to the mean of the folds' logits."""
        import torch

        heads = [AffineHead.from_conv(n.head) for n in self.nets]
        n = len(heads)
        weight = torch.cat([h.weight for h in heads], dim=1) / n
        bias = torch.stack([h.bias for h in heads]).sum(dim=0) / n
        return AffineHead(weight.cpu(), bias.cpu())
