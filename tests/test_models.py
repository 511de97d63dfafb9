"""Every registered model builds, gives (N, classes) finite logits, and trains a step."""

import pytest
import torch

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
    with pytest.raises(MnistlabError, match="known models: cnn, lenet5, mlp"):
        build_model(config, (1, 28, 28), 10)
