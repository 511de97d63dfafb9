"""N networks of one architecture as one network: an ensemble that trains in lockstep.

`--ensemble N` trains N members, seeds s ... s+N-1, on the same batches. Trained one after
another, N small conv nets pay N times the per-step overhead of a CPU step (dispatch, thread
start-up, small kernels); fused, the N members are one network whose layers are N times wider:

- the first convolution meets the shared image once, with the members' filters stacked along
  its output channels; every later convolution is grouped (`groups=N`), so member m's channels
  (block m of the N*C channels) only ever see member m's channels;
- batch norm over N*C channels is each member's batch norm, statistics and all;
- pooling, activations and dropout act per channel or per value, so they need no change;
- at the flatten, (B, N*C, H, W) becomes (N, B, C*H*W), and each dense layer is one batched
  multiply (`torch.baddbmm`) with the members' weights stacked along a leading axis.

Each member starts from exactly the weights `train()` gives its seed, and an optimizer that acts
per value (SGD, Adam) updates each member as it would alone: the fused loss is the sum of the
members' losses, so no gradient crosses members. What members share is the batch order
(`data_seed`). With augmentation, each member of a network that starts with a convolution draws
its own augmented copy of each batch, as it would alone: the N copies come side by side along
the channels, (B, N*C, H, W), and the first convolution takes them as N groups with the same
weights (`member_logits`). Members that shared the augmented images made the same mistakes
more often (BENCHMARKS.md). `Ensemble.forward` returns the log of the members' averaged
softmax, a valid logit for everything that scores, predicts or exports a model.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from .errors import MnistlabError
from .stem import FusedStem, plain_conv

# Modules that act per value or per channel: a single copy serves every member.
_PER_CHANNEL = (nn.ReLU, nn.Tanh, nn.Sigmoid, nn.GELU, nn.MaxPool2d, nn.AvgPool2d,
                nn.AdaptiveAvgPool2d, nn.Dropout, nn.Dropout2d, nn.Identity)
# The layout of the tensor between layers: the input every member shares, (B, N*C, H, W)
# with member m's channels in block m, or (N, B, F) after the flatten.
SHARED, CHANNELS, MEMBERS = "shared", "channels", "members"


class MemberFlatten(nn.Module):
    """(B, N*C, H, W) -> (N, B, C*H*W): each member's own flatten, in its (C, H, W) order."""

    def __init__(self, members: int) -> None:
        super().__init__()
        self.members = members

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], self.members, -1).transpose(0, 1)


class StackedLinear(nn.Module):
    """N linear layers: weight (N, in, out), bias (N, 1, out). The input is (N, B, in), or the
    shared (B, in) for a network that starts dense; the output is (N, B, out)."""

    def __init__(self, layers: list[nn.Linear], shared: bool) -> None:
        super().__init__()
        self.shared = shared
        self.weight = nn.Parameter(torch.stack([lin.weight.detach().t() for lin in layers]))
        bias = [lin.bias.detach() if lin.bias is not None else torch.zeros(lin.out_features)
                for lin in layers]
        self.bias = nn.Parameter(torch.stack(bias).unsqueeze(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.shared:
            return torch.matmul(x, self.weight) + self.bias
        return torch.baddbmm(self.bias, x, self.weight)


class Ensemble(nn.Module):
    """N members fused for lockstep training. `member_logits(x)` -> (N, B, classes) for the
    training loss; `forward(x)` -> (B, classes), the log of the averaged softmax."""

    def __init__(self, members: list[nn.Module]) -> None:
        super().__init__()
        if len(members) < 2:
            raise MnistlabError("ensemble: needs at least 2 members (--ensemble N, N >= 2)")
        self.size = len(members)
        self.net = FusedStem(*fuse(members))

    @property
    def takes_own_images(self) -> bool:
        """Whether each member can take its own copy of the images: the network starts with a
        convolution (member m's filters, block m of its outputs)."""
        return plain_conv(self.net[0])

    def member_logits(self, x: torch.Tensor) -> torch.Tensor:
        """(N, B, classes). x is the images all members see, (B, C, ...), or, where
        `takes_own_images`, each member's own copy side by side, (B, N*C, H, W)."""
        if not (self.takes_own_images and x.dim() == 4
                and x.shape[1] == self.size * self.net[0].in_channels):
            return self.net(x)
        return self.net(x, copies=self.size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return average_logits(self.net(x))


class MemberView(nn.Module):
    """Member `index` of an ensemble, seen as a model of its own (for scoring it alone)."""

    def __init__(self, ensemble: Ensemble, index: int) -> None:
        super().__init__()
        self.ensemble = ensemble
        self.index = index

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ensemble.member_logits(x)[self.index]


def average_logits(member_logits: torch.Tensor) -> torch.Tensor:
    """(N, B, K) logits -> (B, K): the log of the mean of the members' softmax."""
    return torch.logsumexp(torch.log_softmax(member_logits, dim=-1), dim=0) - math.log(
        member_logits.shape[0])


def _leaves(module: nn.Module) -> list[nn.Module]:
    """The layers of a model in order, nested nn.Sequentials opened."""
    if isinstance(module, nn.Sequential):
        return [leaf for child in module for leaf in _leaves(child)]
    return [module]


def fuse(members: list[nn.Module]) -> list[nn.Module]:
    """The fused layers of `members` (equal architectures), in order."""
    columns = [_leaves(m) for m in members]
    if len({len(c) for c in columns}) != 1:
        raise MnistlabError("ensemble: the members' architectures differ")
    layers, layout = [], SHARED
    for row in zip(*columns):
        layer, layout = _fuse_layer(list(row), layout)
        layers.append(layer)
    if layout != MEMBERS:
        raise MnistlabError("ensemble: the network does not end in a dense layer, so its "
                            "members' outputs cannot be told apart")
    return layers


def _fuse_layer(row: list[nn.Module], layout: str) -> tuple[nn.Module, str]:
    first, n = row[0], len(row)
    if any(type(m) is not type(first) for m in row):
        raise MnistlabError("ensemble: the members' architectures differ")
    if isinstance(first, nn.Conv2d) and layout in (SHARED, CHANNELS):
        return _fuse_conv(row, shared=layout == SHARED), CHANNELS
    if isinstance(first, nn.BatchNorm2d) and layout == CHANNELS:
        return _fuse_batchnorm(row), CHANNELS
    if isinstance(first, nn.Flatten):
        return (copy.deepcopy(first), SHARED) if layout == SHARED else (MemberFlatten(n), MEMBERS)
    if isinstance(first, nn.Linear) and layout in (SHARED, MEMBERS):
        return StackedLinear(row, shared=layout == SHARED), MEMBERS
    if isinstance(first, _PER_CHANNEL) and not (layout == SHARED and isinstance(first, (
            nn.Dropout, nn.Dropout2d))):
        return copy.deepcopy(first), layout
    if getattr(type(first), "channel_local", False) and layout == CHANNELS:
        return _fuse_block(row), CHANNELS
    raise MnistlabError(f"ensemble: a {type(first).__name__} layer here has no lockstep form; "
                        "train the members one by one (--seed) instead")


def _fuse_conv(row: list[nn.Conv2d], shared: bool) -> nn.Conv2d:
    c, n = row[0], len(row)
    if c.groups != 1:
        raise MnistlabError("ensemble: grouped convolutions have no lockstep form")
    fused = nn.Conv2d(c.in_channels * (1 if shared else n), c.out_channels * n, c.kernel_size,
                      stride=c.stride, padding=c.padding, dilation=c.dilation,
                      groups=1 if shared else n, bias=c.bias is not None,
                      padding_mode=c.padding_mode)
    with torch.no_grad():
        fused.weight.copy_(torch.cat([m.weight for m in row]))
        if c.bias is not None:
            fused.bias.copy_(torch.cat([m.bias for m in row]))
    return fused


def _fuse_batchnorm(row: list[nn.BatchNorm2d]) -> nn.BatchNorm2d:
    b = row[0]
    fused = nn.BatchNorm2d(b.num_features * len(row), eps=b.eps, momentum=b.momentum,
                           affine=b.affine, track_running_stats=b.track_running_stats)
    with torch.no_grad():
        for name in ("weight", "bias", "running_mean", "running_var"):
            if getattr(b, name) is not None:
                getattr(fused, name).copy_(torch.cat([getattr(m, name) for m in row]))
        if b.num_batches_tracked is not None:
            fused.num_batches_tracked.copy_(b.num_batches_tracked)
    return fused


def _fuse_block(row: list[nn.Module]) -> nn.Module:
    """A block whose class says its forward acts per channel (`channel_local = True`, e.g. a
    residual block): a copy with each child fused."""
    block = copy.deepcopy(row[0])
    for name, _ in row[0].named_children():
        children = [getattr(m, name) for m in row]
        leaves = [_leaves(c) for c in children]
        fused, layout = [], CHANNELS
        for layer_row in zip(*leaves):
            layer, layout = _fuse_layer(list(layer_row), layout)
            fused.append(layer)
        if layout != CHANNELS:
            raise MnistlabError(f"ensemble: the {type(row[0]).__name__} block leaves the "
                                "channel layout")
        setattr(block, name, fused[0] if len(fused) == 1 and not isinstance(
            children[0], nn.Sequential) else nn.Sequential(*fused))
    return block
