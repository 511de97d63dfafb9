"""The first convolution and its batch norm trained as one convolution (stem.py): the same
outputs, gradients and running statistics as the two layers one after the other."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from mnistlab.config import TrainConfig
from mnistlab.ensemble import Ensemble
from mnistlab.models import build_model
from mnistlab.stem import FusedStem, fusable


def _pair(layers: list[nn.Module], channels_last: bool) -> tuple[nn.Sequential, FusedStem]:
    torch.manual_seed(0)
    plain = nn.Sequential(*layers)
    with torch.no_grad():  # a batch norm with its own scale and shift, some of them negative
        plain[1].weight.uniform_(-1, 2)
        plain[1].bias.uniform_(-1, 1)
    fused = FusedStem(*copy.deepcopy(list(plain)))
    if channels_last:
        plain = plain.to(memory_format=torch.channels_last)
        fused = fused.to(memory_format=torch.channels_last)
    return plain, fused


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return float((a - b).detach().norm() / b.detach().norm()) < 1e-4


def _assert_trains_alike(plain: nn.Module, fused: FusedStem, x: torch.Tensor, steps: int,
                         copies: int = 1) -> None:
    """`steps` training steps of both on `x`: the same outputs in the same layout, the same
    gradients and running statistics; then, in eval mode, the same outputs again."""
    for _ in range(steps):
        a, b = plain(x), fused(x, copies=copies)
        grad = torch.randn_like(a)
        a.backward(grad)
        b.backward(grad)
        assert _close(b, a)
        assert b.stride() == a.stride()  # the layout the rest of the network expects
    for name in ("0.weight", "1.weight", "1.bias"):
        assert _close(fused.get_parameter(name).grad, plain.get_parameter(name).grad), name
    for name in ("running_mean", "running_var"):
        assert _close(getattr(fused[1], name), getattr(plain[1], name)), name
    assert int(fused[1].num_batches_tracked) == int(plain[1].num_batches_tracked) == steps
    plain.eval()
    fused.eval()  # the plain path (for copies: the grouped convolution, then the layers)
    assert not fusable(fused[0], fused[1], x, copies)
    assert _close(fused(x, copies=copies), plain(x))


CASES = [  # in channels, kernel, padding, stride, dilation, channels-last, momentum, pool
    (1, 3, 1, 1, 1, True, 0.1, True),
    (1, 3, 1, 1, 1, False, 0.1, False),
    (3, 3, 1, 2, 1, True, None, False),
    (1, 5, 2, 1, 1, False, 0.1, True),
    (1, 5, 0, 1, 1, True, 0.1, False),
    (2, 3, 2, 1, 2, True, 0.3, False),
    (1, 5, 2, 1, 1, True, 0.1, True),  # with a bias, as LeNet-5 has
]


@pytest.mark.parametrize("cin,k,pad,stride,dil,channels_last,momentum,pool", CASES)
def test_fused_stem_trains_as_conv_then_batch_norm(cin, k, pad, stride, dil, channels_last,
                                                   momentum, pool):
    bias = k == 5 and pad == 2 and channels_last
    layers = [nn.Conv2d(cin, 8, k, padding=pad, stride=stride, dilation=dil, bias=bias),
              nn.BatchNorm2d(8, momentum=momentum)]
    layers += [nn.MaxPool2d(2), nn.ReLU()] if pool else [nn.ReLU()]
    layers.append(nn.Conv2d(8, 4, 3))
    plain, fused = _pair(layers, channels_last)
    x = torch.randn(16, cin, 14, 12) * 3 + 5  # far from zero mean: the statistics must centre
    assert fusable(fused[0], fused[1], x)
    _assert_trains_alike(plain, fused, x, 3)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fused_stem_under_bf16_autocast_is_as_close_as_the_plain_path(seed):
    """Under autocast (--precision bf16) the convolution runs in bf16, as the plain one does,
    and the batch statistics come from the float32 input. Against the same layers in float64,
    its outputs and gradients are as close as the plain bf16 path's (both off by bf16's
    rounding: up to ~13% for the first weights' gradient, here as in the plain path), and its
    running statistics are float32 batch norm's, where the plain path's come from the bf16
    convolution's output (off by ~1e-3)."""
    torch.manual_seed(seed)
    layers = [nn.Conv2d(1, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.MaxPool2d(2),
              nn.ReLU(), nn.Conv2d(8, 4, 3)]
    plain, fused = _pair(layers, True)
    reference = copy.deepcopy(plain).double()
    x = torch.randn(16, 1, 14, 12) * 3 + 5
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert fusable(fused[0], fused[1], x)
        a, b = plain(x), fused(x)
    exact = reference(x.double())
    assert b.dtype == a.dtype == torch.bfloat16 and b.stride() == a.stride()
    grad = torch.randn_like(a)
    for out, g in ((a, grad), (b, grad), (exact, grad.double())):
        out.backward(g)

    def error(mine: torch.Tensor, truth: torch.Tensor) -> float:
        return float((mine.detach().double() - truth.detach()).norm() / truth.detach().norm())

    assert error(b, exact) < 1.5 * error(a, exact) + 1e-3
    for name in ("0.weight", "1.weight", "1.bias"):
        truth = reference.get_parameter(name).grad
        assert error(fused.get_parameter(name).grad, truth) < 1.5 * error(
            plain.get_parameter(name).grad, truth) + 1e-3, name
    for name in ("running_mean", "running_var"):
        assert error(getattr(fused[1], name), getattr(reference[1], name)) < 1e-5, name


@pytest.mark.parametrize("cin,stride,dil,pool", [(1, 1, 1, True), (1, 1, 1, False),
                                                  (2, 2, 1, False), (3, 1, 2, True)])
def test_fused_stem_takes_one_input_per_block_of_filters(cin, stride, dil, pool):
    """copies=3: three inputs side by side, copy g read by block g of the first convolution's
    filters (an ensemble's members on their own augmented images), trained as the grouped
    convolution and its batch norm would train."""
    copies, width = 3, 4
    stacked = nn.Conv2d(cin, copies * width, 3, padding=dil, stride=stride, dilation=dil,
                        bias=not pool)
    layers = [stacked, nn.BatchNorm2d(copies * width, momentum=None if cin == 2 else 0.1)]
    layers += [nn.MaxPool2d(2), nn.ReLU()] if pool else [nn.ReLU()]
    plain, fused = _pair(layers, True)
    grouped = nn.Conv2d(copies * cin, copies * width, 3, padding=dil, stride=stride,
                        dilation=dil, groups=copies, bias=not pool)
    grouped.load_state_dict(plain[0].state_dict())  # the same (copies * width, cin, 3, 3)
    plain[0] = grouped.to(memory_format=torch.channels_last)
    x = torch.randn(16, copies * cin, 14, 12) * 3 + 5
    x[:, cin:2 * cin] = x[:, cin:2 * cin] * 0.5 - 2  # copies that differ: mixing them up shows
    assert fusable(fused[0], fused[1], x, copies) and not fusable(fused[0], fused[1], x)
    _assert_trains_alike(plain, fused, x, 2, copies)


def test_fused_stem_is_exact_on_images_with_a_flat_background():
    """Digits are mostly background: the fused statistics must not lose precision there."""
    torch.manual_seed(1)
    x = torch.zeros(64, 1, 28, 28)
    x[:, :, 8:20, 10:14] = torch.rand(64, 1, 12, 4) * 3
    x = (x - 0.13) / 0.31
    _, fused = _pair([nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16)], True)
    with torch.no_grad():
        reference = copy.deepcopy(nn.Sequential(*fused)).double()(x.double())
        assert float((fused(x).double() - reference).abs().max()) < 1e-4


@pytest.mark.parametrize("why", ["eval", "groups", "wide", "grad", "no-stats", "far-padding",
                                 "float64"])
def test_fused_stem_falls_back_where_it_does_not_apply(why):
    conv = nn.Conv2d(1 if why not in ("wide", "groups") else 4, 8, 3, bias=False,
                     padding=1 if why != "far-padding" else 3, groups=2 if why == "groups" else 1)
    norm = nn.BatchNorm2d(8, track_running_stats=why != "no-stats")
    plain, fused = _pair([conv, norm, nn.ReLU()], True)
    x = torch.randn(8, conv.in_channels, 10, 10, requires_grad=why == "grad")
    if why == "float64":  # a model cast as a whole: its statistics would be float32's
        plain, fused, x = plain.double(), fused.double(), x.double()
    if why == "eval":
        plain.eval()
        fused.eval()
    assert not fusable(fused[0], fused[1], x)
    assert torch.equal(fused(x), plain(x))  # the plain path itself: bit for bit


def test_model_files_load_either_way():
    """A FusedStem's state dict is an nn.Sequential's: run folders from before it still load."""
    config = TrainConfig(model="cnn", filters=(8, 16), dense=(16,), batchnorm=True)
    model = build_model(config, (1, 28, 28), 10)
    assert isinstance(model[0], FusedStem)
    plain = copy.deepcopy(model)
    plain[0].__class__ = nn.Sequential
    plain.load_state_dict(model.state_dict())
    model.load_state_dict(plain.state_dict())
    assert set(model.state_dict()) == set(plain.state_dict())


@pytest.mark.parametrize("name", ["cnn", "resnet", "lenet5"])
def test_models_with_batch_norm_take_the_fused_path(name):
    config = TrainConfig(model=name, filters=(8, 16), dense=(16,), batchnorm=True,
                         variant="modern", blocks=1)
    model = build_model(config, (1, 28, 28), 10).train()
    stem = next(m for m in model.modules() if isinstance(m, FusedStem))
    assert fusable(stem[0], stem[1], torch.randn(4, 1, 28, 28))


def test_an_ensemble_fuses_its_stacked_first_layer():
    config = TrainConfig(model="cnn", filters=(8, 16), dense=(16,), batchnorm=True)
    members = [build_model(config.replace(seed=s), (1, 28, 28), 10) for s in range(3)]
    ensemble = Ensemble(members)
    assert isinstance(ensemble.net, FusedStem)
    x = torch.randn(4, 1, 28, 28)
    assert fusable(ensemble.net[0], ensemble.net[1], x)
    plain = copy.deepcopy(ensemble)
    plain.net.__class__ = nn.Sequential
    assert _close(ensemble.member_logits(x), plain.member_logits(x))
