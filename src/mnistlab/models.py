"""The model registry: a plain dict from name to builder.

Every builder takes the run's `TrainConfig`, the image shape (channels, height, width) and the
number of classes, and returns an `nn.Module` whose forward gives raw logits (N, classes).
What the loss then does with those logits is the objective's business (see objectives.py).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .config import TrainConfig
from .errors import MnistlabError

Builder = Callable[[TrainConfig, tuple[int, int, int], int], nn.Module]
MODEL_REGISTRY: dict[str, Builder] = {}


def register_model(name: str) -> Callable[[Builder], Builder]:
    def wrap(builder: Builder) -> Builder:
        MODEL_REGISTRY[name] = builder
        return builder

    return wrap


def list_models() -> list[str]:
    return sorted(MODEL_REGISTRY)


def build_model(config: TrainConfig, image_shape: tuple[int, int, int],
                num_classes: int) -> nn.Module:
    try:
        builder = MODEL_REGISTRY[config.model]
    except KeyError:
        raise MnistlabError(
            f"model: unknown name {config.model!r}; known models: {', '.join(list_models())}"
        ) from None
    return builder(config, image_shape, num_classes)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _activation(name: str) -> nn.Module:
    return {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "gelu": nn.GELU}[name]()


def _dense_head(in_features: int, sizes: tuple[int, ...], num_classes: int, activation: str,
                dropout: float) -> list[nn.Module]:
    """Linear -> activation -> dropout for each hidden size, then the classifier layer."""
    layers: list[nn.Module] = []
    for size in sizes:
        layers += [nn.Linear(in_features, size), _activation(activation)]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        in_features = size
    layers.append(nn.Linear(in_features, num_classes))
    return layers


def _flat_size(features: nn.Module, image_shape: tuple[int, int, int]) -> int:
    features.eval()  # batch norm cannot take a batch of one in training mode
    with torch.no_grad():
        size = int(features(torch.zeros(1, *image_shape)).numel())
    features.train()
    return size


@register_model("mlp")
def mlp(config: TrainConfig, image_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """784-128-64-10 by default: the Fashion-MNIST study's network."""
    in_features = image_shape[0] * image_shape[1] * image_shape[2]
    head = _dense_head(in_features, config.hidden, num_classes, config.resolved_activation,
                       config.dropout)
    return nn.Sequential(nn.Flatten(), *head)


@register_model("lenet5")
def lenet5(config: TrainConfig, image_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """LeNet-5. `classic`: tanh, average pooling, 6-16-120-84 (LeCun et al. 1998, with C3 fully
    connected rather than the paper's partial table). `modern`: same shape with ReLU, max
    pooling, optional batch norm and dropout."""
    classic = config.variant == "classic"
    act = config.resolved_activation
    pool = nn.AvgPool2d(2) if classic else nn.MaxPool2d(2)

    def conv(cin: int, cout: int, padding: int) -> list[nn.Module]:
        block: list[nn.Module] = [nn.Conv2d(cin, cout, 5, padding=padding)]
        if config.batchnorm:
            block.append(nn.BatchNorm2d(cout))
        return block + [_activation(act)]

    # 28x28 MNIST digits are padded to 32x32 in the paper; padding=2 does the same.
    features = nn.Sequential(
        *conv(image_shape[0], 6, 2), pool,
        *conv(6, 16, 0), type(pool)(2),
        nn.Flatten(),
    )
    flat = _flat_size(features, image_shape)
    return nn.Sequential(features, *_dense_head(flat, (120, 84), num_classes, act, config.dropout))


@register_model("cnn")
def cnn(config: TrainConfig, image_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """A deeper conv net: per filter count, conv3x3 -> (batch norm) -> activation -> max pool;
    then the dense layers. 32-64-128 / 256-128 is the LeNet challenge's final network."""
    act = config.resolved_activation
    layers: list[nn.Module] = []
    channels = image_shape[0]
    size = min(image_shape[1], image_shape[2])
    for width in config.filters:
        layers.append(nn.Conv2d(channels, width, 3, padding=1, bias=not config.batchnorm))
        if config.batchnorm:
            layers.append(nn.BatchNorm2d(width))
        layers.append(_activation(act))
        if size >= 2:  # stop pooling once the map is a single pixel
            layers.append(nn.MaxPool2d(2))
            size //= 2
        channels = width
    features = nn.Sequential(*layers, nn.Flatten())
    flat = _flat_size(features, image_shape)
    head = _dense_head(flat, config.dense, num_classes, act, config.dropout)
    return nn.Sequential(features, *head)
