"""Every registered model builds, gives (N, classes) finite logits, and trains a step."""

import os
from pathlib import Path

import pytest
import torch
from torch import nn

from mnistlab.config import TrainConfig
from mnistlab.errors import MnistlabError
from mnistlab.models import MODEL_REGISTRY, build_model, count_parameters, list_models

VARIANTS = [
    {"model": "mlp"},
    {"model": "mlp", "hidden": (512, 256), "dropout": 0.6},
    {"model": "lenet5", "variant": "classic"},
    {"model": "lenet5", "variant": "modern", "batchnorm": True, "dropout": 0.3},
    {"model": "cnn"},
    {"model": "cnn", "filters": (8, 16, 32, 64, 128, 256), "batchnorm": True},
    {"model": "resnet", "filters": (8, 16), "blocks": 1},
    {"model": "resnet", "filters": (4, 8, 8, 16, 16, 32), "blocks": 2, "dropout": 0.2},
]


def test_every_registered_model_is_covered():
    assert {v["model"] for v in VARIANTS} == set(MODEL_REGISTRY) == set(list_models())


@pytest.mark.parametrize("settings", VARIANTS, ids=lambda s: "-".join(map(str, s.values())))
@pytest.mark.parametrize("shape", [(1, 28, 28), (1, 32, 32)])
def test_forward_shape_finite_and_backward(settings, shape):
    torch.manual_seed(0)
    model = build_model(TrainConfig(**settings), shape, 10)
    x = torch.randn(4, *shape)
    out = model(x)
    assert out.shape == (4, 10)
    assert torch.isfinite(out).all()
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_parameter_counts_match_the_papers():
    # 784-128-64-10: 100,480 + 8,256 + 650
    assert count_parameters(build_model(TrainConfig(model="mlp"), (1, 28, 28), 10)) == 109_386
    # LeNet-5 with full C3: 156 + 2,416 + 48,120 + 10,164 + 850
    lenet = build_model(TrainConfig(model="lenet5", variant="classic"), (1, 28, 28), 10)
    assert count_parameters(lenet) == 61_706


def test_unknown_model_lists_known_ones():
    config = TrainConfig()
    object.__setattr__(config, "model", "vgg")
    with pytest.raises(MnistlabError, match="known models: cnn, lenet5, mlp, resnet"):
        build_model(config, (1, 28, 28), 10)


def test_resnet_halves_the_map_per_stage_and_pools_globally():
    config = TrainConfig(model="resnet", filters=(8, 16, 32), blocks=2)
    model = build_model(config, (1, 28, 28), 10)
    maps = []
    hooks = [m.register_forward_hook(lambda _m, _i, out: maps.append(tuple(out.shape[1:])))
             for m in model if type(m).__name__ == "ResidualBlock"]
    model.eval()
    model(torch.zeros(2, 1, 28, 28))
    for hook in hooks:
        hook.remove()
    assert maps == [(8, 28, 28), (8, 28, 28), (16, 14, 14), (16, 14, 14), (32, 7, 7), (32, 7, 7)]
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()) == 1 + 6 * 2 + 2


def test_resnet_is_deterministic_with_a_seed():
    config = TrainConfig(model="resnet", filters=(8, 16), blocks=1)
    x = torch.randn(3, 1, 28, 28)
    outs = []
    for _ in range(2):
        torch.manual_seed(5)
        model = build_model(config, (1, 28, 28), 10).eval()
        outs.append(model(x))
    assert torch.equal(outs[0], outs[1])


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid", "gelu"])
def test_pooling_before_a_monotone_activation_is_the_same_function(activation):
    # cnn and lenet5 run max-pool-then-activation where that equals the written order
    # (activation, then pool): same outputs, same input gradients, fewer values activated.
    from mnistlab.models import MONOTONE, _activation, _activation_and_max_pool

    layers = _activation_and_max_pool(activation)
    assert isinstance(layers[0], nn.MaxPool2d) == (activation in MONOTONE)
    fast = nn.Sequential(*layers)
    written = nn.Sequential(_activation(activation), nn.MaxPool2d(2))
    x = torch.randn(4, 3, 8, 8, dtype=torch.float64, requires_grad=True)
    x2 = x.detach().clone().requires_grad_()
    fast(x).sum().backward()
    written(x2).sum().backward()
    assert torch.equal(fast(x), written(x2))
    assert torch.equal(x.grad, x2.grad)


def test_the_parameter_names_of_conv_nets_did_not_move():
    # the pooling order holds no weights: model.pt files written before it load unchanged
    keys = list(build_model(TrainConfig(model="cnn", filters=(4, 8), dense=(16,),
                                        batchnorm=True), (1, 28, 28), 10).state_dict())
    assert [k for k in keys if k.endswith("weight")] == [
        "0.0.weight", "0.1.weight", "0.4.weight", "0.5.weight", "1.weight", "3.weight"]
    lenet = list(build_model(TrainConfig(model="lenet5"), (1, 28, 28), 10).state_dict())
    assert [k for k in lenet if k.endswith("weight")] == [
        "0.0.weight", "0.3.weight", "1.weight", "3.weight", "5.weight"]


def test_seeds_2_to_the_32_apart_draw_different_networks():
    """A CPU generator keeps a seed's low 32 bits: --seed 4294967296 trained seed 0's network,
    and member 1 of `--seed 4294967295 --ensemble 2` was a copy of it. Seeds below 2**32 draw
    what they always drew."""
    from mnistlab.config import torch_seed

    def member(seed: int, index: int) -> torch.Tensor:  # members are seeded seed + index
        config = TrainConfig(model="mlp", hidden=(8,), seed=seed, ensemble=2)
        fused = next(build_model(config, (1, 28, 28), 10).parameters())  # (members, in, out)
        return fused[index].detach()

    assert [torch_seed(s) for s in (0, 7, 2**32 - 1)] == [0, 7, 2**32 - 1]
    assert len({torch_seed(s) for s in (2**32, 2**33, 2**40, 2**62 - 1)}) == 4
    assert not torch.equal(member(2**32 - 1, 1), member(0, 0))
    assert not torch.equal(member(2**32, 0), member(0, 0))
    # a cohort's dropout stream is seeded with a 48-bit hash of its members' seeds: it drew
    # another stream for every seed once the mixing was put inside the epoch seed itself
    from mnistlab.training.engine import epoch_seed

    assert epoch_seed(2**40 + 5, 3) == ((2**40 + 5) * 1_000_003 + 3 * 7919) % (2**63 - 1)
    torch.manual_seed(5)
    single = build_model(TrainConfig(model="mlp", hidden=(8,)), (1, 28, 28), 10)
    assert torch.equal(member(5, 0), next(single.parameters()).detach().T)


def test_a_resnet_skip_takes_every_other_pixel_as_a_strided_1x1_conv_would():
    """The skip's conv no longer strides (see the next test): its sums are the same."""
    import torch.nn.functional as F

    from mnistlab.models import ResidualBlock

    block = ResidualBlock(4, 8, 2, "relu").eval()
    x = torch.randn(2, 4, 15, 15)
    conv, norm = block.skip
    assert torch.allclose(norm(F.conv2d(x, conv.weight, stride=2)), block.skip(x[:, :, ::2, ::2]))
    assert block(x).shape == (2, 8, 8, 8)


def test_a_narrow_resnet_on_large_images_trains_in_channels_last(tmp_path):
    """Hunt: --model resnet --filters 8,16 on 64x64 images killed the process (SIGSEGV, no
    word) in its first backward pass: oneDNN's weight gradient of a strided 1x1 convolution
    in channels-last, few channels, a large map (torch 2.13 on a CPU)."""
    import subprocess
    import sys

    code = ("import torch\nfrom mnistlab.config import TrainConfig\n"
            "from mnistlab.models import build_model\n"
            "config = TrainConfig(model='resnet', filters=(8, 16), blocks=1)\n"
            "model = build_model(config, (1, 64, 64), 10).to(memory_format=torch.channels_last)\n"
            "x = torch.randn(4, 1, 64, 64).contiguous(memory_format=torch.channels_last)\n"
            "model(x).sum().backward()\nprint('ok')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")})
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-500:]
