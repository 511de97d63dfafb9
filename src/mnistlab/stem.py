"""A network's first convolution and its batch norm, trained as one convolution.

In training, batch norm after a convolution y = conv(x, W) normalizes each output channel with
the batch's mean and variance. Those are functions of W and of the input's patches alone:
with p a patch (C_in x k x k values, zero-padded at the borders), m its mean over the batch and
positions and S its covariance,

    mean(y_c) = W_c . m        var(y_c) = W_c S W_c^T

so batch norm's output is itself a convolution, with weights W_c * s_c and bias
beta_c - s_c mean(y_c), where s_c = gamma_c / sqrt(var(y_c) + eps). Autograd differentiates
through m, S and W exactly as through batch norm's own backward, so the outputs, gradients and
running statistics are batch norm's (to float rounding). What it saves is work on the widest
tensor of the network: batch norm reads and writes the first layer's output (for 16 channels
of a 28x28 image, 16 times the input) three times forward and four times backward; here the
statistics come from the input, which the first layer reads anyway.

It pays only where a patch is small (the first layer: one or three input channels): S is
(C_in k^2)^2, read from one matrix product over the input. Under bf16 autocast the statistics
stay float32 and the convolution runs in bf16; there it pays most, since a bf16 convolution is
cheap and batch norm's passes are not (on a Xeon with AMX, one training step: 0.80x for four
mnist-fast networks fused into one ensemble, 0.90x for mnist-best, 1.0x for one mnist-fast
network, whose 16 channels leave batch norm little to cost; BENCHMARKS.md). `FusedStem` is
the nn.Sequential that does it when its first two layers allow (`fusable`); in evaluation, and
wherever a condition fails, it is an ordinary nn.Sequential. Its state dict is an
nn.Sequential's: model files load into either.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn

# Patches up to this many values (C_in * k * k): a 3x3 kernel over three channels.
MAX_PATCH = 27


def plain_conv(layer: nn.Module) -> bool:
    """A convolution without groups and with zero padding: one whose filters, stacked in N
    blocks, can read N inputs side by side as N groups (`copies`)."""
    return type(layer) is nn.Conv2d and layer.groups == 1 and layer.padding_mode == "zeros"


def fusable(conv: nn.Module, norm: nn.Module, x: torch.Tensor, copies: int = 1) -> bool:
    """Whether conv -> batch norm on `x` can run as one convolution: a plain zero-padded
    convolution over small patches, a batch norm in training that keeps running
    statistics, float32 weights, a CPU (where it was measured), and an input that takes no
    gradient (S and m are not differentiated with respect to it). Under autocast too: the
    statistics are computed in float32, the convolution in bf16 as the plain one would be
    (a model cast to another dtype as a whole runs as two layers). With `copies`,
    `x` holds that many inputs side by side along the channels, copy g read by block g of
    the convolution's filters (an ensemble whose members each draw their own augmentation)."""
    return (plain_conv(conv) and type(norm) is nn.BatchNorm2d and norm.training
            and norm.track_running_stats and norm.running_mean is not None
            and not isinstance(conv.padding, str) and _centre_on_image(conv)
            and conv.in_channels * conv.kernel_size[0] * conv.kernel_size[1] <= MAX_PATCH
            and conv.weight.dtype == torch.float32 and conv.out_channels % copies == 0
            and x.dim() == 4 and x.shape[1] == conv.in_channels * copies
            and x.device.type == "cpu" and not x.requires_grad)


def _centre_on_image(conv: nn.Conv2d) -> bool:
    """Whether the kernel's centre tap reads the image, never the padding, at every output
    position (it carries the bias: see conv_batchnorm)."""
    return all(pad <= dil * min(k // 2, k - 1 - k // 2)
               for pad, dil, k in zip(conv.padding, conv.dilation, conv.kernel_size))


def _patch_index(conv: nn.Conv2d, columns: int, width_out: int, device) -> torch.Tensor:
    """(patch values, output columns): for value (channel, tap row, tap column) of the patch
    at output column c, its column in `_row_windows`' matrix."""
    (kh, kw), (_, dw), (_, sw) = conv.kernel_size, conv.dilation, conv.stride
    starts = torch.tensor([(ci * kh + i) * columns + j * dw for ci in range(conv.in_channels)
                           for i in range(kh) for j in range(kw)], device=device)
    return starts[:, None] + torch.arange(width_out, device=device) * sw


def _row_windows(conv: nn.Conv2d, x: torch.Tensor, centre: float) -> tuple[torch.Tensor, int]:
    """(N * H_out, C_in * k_h * W_padded) matrix: for each image and output row, the padded
    input rows (less `centre`) that row's patches read, side by side; and W_out."""
    (kh, kw), (ph, pw), (dh, dw), (sh, sw) = (conv.kernel_size, conv.padding, conv.dilation,
                                              conv.stride)
    padded = F.pad(x - centre, (pw, pw, ph, ph), value=-centre)
    height_out = (padded.shape[2] - dh * (kh - 1) - 1) // sh + 1
    width_out = (padded.shape[3] - dw * (kw - 1) - 1) // sw + 1
    rows = torch.cat([padded[:, :, i * dh: i * dh + sh * (height_out - 1) + 1: sh]
                      for i in range(kh)], dim=3)  # (N, C, H_out, k_h * W_padded)
    return rows.transpose(1, 2).reshape(-1, rows.shape[1] * rows.shape[3]), width_out


def patch_moments(conv: nn.Conv2d, x: torch.Tensor, copies: int = 1
                  ) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(mean patch m, patch covariance S, number of patches) of `conv`'s input `x`, for each
    of the `copies` inputs side by side in `x`: m (copies, P) and S (copies, P, P), P the
    values of one patch."""
    with torch.no_grad():
        # covariances do not change with a shift; centring keeps E[pp] - mm from cancelling
        centre = float(x.mean())
        windows, width_out = _row_windows(conv, x, centre)
        windows = windows.reshape(windows.shape[0], copies, -1).transpose(0, 1)  # copy by copy
        index = _patch_index(conv, windows.shape[2] // (conv.in_channels * conv.kernel_size[0]),
                             width_out, x.device)
        count = windows.shape[1] * width_out
        gram = windows.transpose(1, 2) @ windows
        mean = windows.sum(1)[:, index].sum(2) / count
        second = gram[:, index[:, None, :], index[None, :, :]].sum(3) / count
        covariance = second - mean[:, :, None] * mean[:, None, :]
        return mean + centre, covariance, count


def conv_batchnorm(conv: nn.Conv2d, norm: nn.BatchNorm2d, x: torch.Tensor,
                   pool: nn.MaxPool2d | None = None, copies: int = 1) -> torch.Tensor:
    """batch norm(conv(x)) in training, as one convolution; updates norm's running statistics
    as batch norm does. With `pool`, the max-pooling that follows: pool(batch norm(conv(x))),
    with the bias added after pooling, on a quarter of the values (max-pooling commutes with
    adding a per-channel constant). With `copies`, see `fusable`."""
    scale, bias = _scale_and_bias(conv, norm, x, copies)
    scaled = conv.weight * scale.reshape(-1, 1, 1, 1)
    if pool is not None:
        pooled = pool(F.conv2d(x, scaled, None, conv.stride, conv.padding, conv.dilation,
                               groups=copies))
        return pooled + bias.reshape(1, -1, 1, 1).to(pooled.dtype)
    if copies > 1:  # the channel of ones below would need one per copy
        return F.conv2d(x, scaled, bias, conv.stride, conv.padding, conv.dilation, groups=copies)
    # Else the bias rides on an extra input channel of ones, read by the kernel's centre tap
    # only (never off the image): a convolution's own bias costs a second pass over its output
    # backward, twice the time of this channel on a channels-last CPU.
    ones = torch.ones_like(x[:, :1])
    kh, kw = conv.kernel_size
    centre = torch.zeros(1, 1, kh, kw, dtype=x.dtype, device=x.device)
    centre[0, 0, kh // 2, kw // 2] = 1
    layout = _layout(conv.weight)
    fused = torch.cat([scaled, bias.reshape(-1, 1, 1, 1) * centre], dim=1)
    return F.conv2d(torch.cat([x, ones], dim=1).contiguous(memory_format=layout),
                    fused.contiguous(memory_format=layout), None, conv.stride, conv.padding,
                    conv.dilation)


def _scale_and_bias(conv: nn.Conv2d, norm: nn.BatchNorm2d, x: torch.Tensor, copies: int = 1
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Batch norm's per-channel scale and bias on conv(x), from the patches' moments; updates
    norm's running statistics. In float32 under autocast too: a variance from bf16 products
    would keep 2-3 significant digits. Block g of the filters meets copy g's moments."""
    with torch.autocast(x.device.type, enabled=False):
        mean_patch, covariance, count = patch_moments(conv, x.float(), copies)
        weight = conv.weight.reshape(copies, conv.out_channels // copies, -1)  # (copies, C, P)
        mean = (weight @ mean_patch.unsqueeze(2)).reshape(-1)
        if conv.bias is not None:  # batch norm takes it away again; the running mean keeps it
            mean = mean + conv.bias
        var = ((weight @ covariance) * weight).sum(2).reshape(-1).clamp_min(0)
        gamma = norm.weight if norm.weight is not None else torch.ones_like(mean)
        beta = norm.bias if norm.bias is not None else torch.zeros_like(mean)
        scale = gamma * torch.rsqrt(var + norm.eps)
        _update_running(norm, mean.detach(), var.detach() * (count / max(count - 1, 1)))
        bias = beta - mean * scale
        if conv.bias is not None:
            bias = bias + conv.bias * scale
        return scale, bias


def _layout(weight: torch.Tensor) -> torch.memory_format:
    """The memory layout of `weight`, hence of the plain convolution's output, told apart by
    strides even for one input channel (where both layouts count as contiguous)."""
    return torch.channels_last if weight.stride(1) < weight.stride(2) else torch.contiguous_format


def _update_running(norm: nn.BatchNorm2d, mean: torch.Tensor, var: torch.Tensor) -> None:
    with torch.no_grad():
        norm.num_batches_tracked.add_(1)
        factor = (norm.momentum if norm.momentum is not None
                  else 1.0 / float(norm.num_batches_tracked))
        norm.running_mean.lerp_(mean, factor)
        norm.running_var.lerp_(var, factor)


class FusedStem(nn.Sequential):
    """An nn.Sequential whose first two layers, a convolution and its batch norm, train as one
    convolution where `fusable` allows (see the module's docstring). `forward(x, copies=N)`:
    x holds N inputs side by side along the channels, and the first convolution reads copy g
    with block g of its filters (an ensemble's members, each on its own augmented images)."""

    def forward(self, x: torch.Tensor, copies: int = 1) -> torch.Tensor:
        first = self[0]
        if len(self) >= 2 and fusable(first, self[1], x, copies):
            pool = self[2] if len(self) > 2 and type(self[2]) is nn.MaxPool2d else None
            if pool is not None and pool.return_indices:
                pool = None
            x = conv_batchnorm(first, self[1], x, pool, copies)
            rest = 2 if pool is None else 3
        elif copies == 1:
            return super().forward(x)
        else:
            if not plain_conv(first):
                raise ValueError("FusedStem(copies=N) needs a plain first convolution (groups 1, "
                                 f"zero padding), not {first!r}")
            x = F.conv2d(x, first.weight, first.bias, first.stride, first.padding,
                         first.dilation, groups=copies)
            rest = 1
        for layer in itertools.islice(self, rest, None):
            x = layer(x)
        return x
