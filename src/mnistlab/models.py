"""The model registry: a plain dict from name to builder, and each model's size before it is
built.

Every builder takes the run's `TrainConfig`, the image shape (channels, height, width) and the
number of classes, and returns an `nn.Module` whose forward gives raw logits (N, classes).
What the loss then does with those logits is the objective's business (see objectives.py).

Beside each builder is its *layer plan*: the same architecture as plain arithmetic (parameters
and output size of every layer), so that a model too big for this machine, or too deep for its
images, is refused in one line before a single tensor is allocated (`check_size`, called by
`build_model`, and by study and search-space files for every configuration they would make).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from .config import MODELS, SGD_SETTINGS, TrainConfig, torch_seed
from .ensemble import Ensemble
from .errors import MnistlabError
from .files import size_text
from .stem import FusedStem

Shape = tuple[int, int, int]
Builder = Callable[[TrainConfig, Shape, int], nn.Module]
MODEL_REGISTRY: dict[str, Builder] = {}


@dataclass(frozen=True)
class Layer:
    """One layer of a layer plan: its parameters and the elements of its output per image."""

    parameters: int
    outputs: int


class DoesNotFit(MnistlabError):
    """A model its data or machine cannot hold: images too small for its layers, too many
    parameters, too little memory. A search fails that trial and draws on; its other trials
    may fit."""


class TooSmall(Exception):
    """A layer plan met an image smaller than its kernels and poolings allow."""


LayerPlan = Callable[[TrainConfig, Shape, int], list[Layer]]
LAYER_PLANS: dict[str, LayerPlan] = {}
LAYER_FLAGS: dict[str, str] = {}  # the flags that size a model's layers, for the fix
MODEL_OPTIONS: dict[str, tuple[str, ...]] = {}  # other settings only some models read


def register_model(name: str, *, layers: LayerPlan, layer_flags: str = "",
                   options: tuple[str, ...] = ()) -> Callable[[Builder], Builder]:
    """Register a builder together with its layer plan (the two must describe one network;
    tests/test_limits.py checks that they count the same parameters). Model names are settings
    values, listed once in config.MODELS (what TrainConfig accepts and the CLI offers)."""
    if name not in MODELS:
        raise ValueError(f"model {name!r} is not in config.MODELS; add it there first")

    def wrap(builder: Builder) -> Builder:
        MODEL_REGISTRY[name] = builder
        LAYER_PLANS[name] = layers
        LAYER_FLAGS[name] = layer_flags
        MODEL_OPTIONS[name] = options
        return builder

    return wrap


def list_models() -> list[str]:
    return sorted(MODEL_REGISTRY)


def shape_settings(model: str) -> tuple[str, ...]:
    """The settings that size a model's layers: ("hidden",) for mlp, () for lenet5."""
    return tuple(flag.strip().removeprefix("--") for flag in LAYER_FLAGS.get(model, "").split(",")
                 if flag.strip())


def model_settings(model: str) -> tuple[str, ...]:
    """The settings of only some models that `model` reads: its shape, and options such as
    lenet5's variant (dropout and the activation every model reads)."""
    return shape_settings(model) + MODEL_OPTIONS.get(model, ())


def unread_settings(model: str) -> dict[str, tuple[str, ...]]:
    """Each setting some model reads and `model` does not -> the models that read it."""
    readers: dict[str, tuple[str, ...]] = {}
    for other in list_models():
        for name in model_settings(other):
            readers[name] = readers.get(name, ()) + (other,)
    return {name: users for name, users in readers.items()
            if name not in model_settings(model)}


ONECYCLE_MOMENTUM = "schedule onecycle cycles SGD's momentum from 0.95 to 0.85 and back itself"


# the settings whose values decide what settings_unread finds (kept beside it: a study's
# check of many configs looks at one of each kind by these)
UNREAD_DECIDED_BY = ("model", "optimizer", "schedule", "loss", "val_from")


def settings_unread(config: TrainConfig) -> dict[str, tuple[str, str]]:
    """Each setting `config`'s run does not read -> (why, where it is read): `filters` beside
    an mlp, `momentum` beside Adam or beside one-cycle (which cycles SGD's momentum itself),
    `label_smoothing` beside the binary loss, `val_size` where validation is the test set."""
    out = {name: (f"model {config.model}; only {' and '.join(readers)} "
                  f"read{'s' * (len(readers) == 1)} it", "give it beside a model that reads it")
           for name, readers in unread_settings(config.model).items()}
    if config.optimizer != "sgd":
        out.update({name: (f"optimizer {config.optimizer}; only sgd reads it",
                           'give it where optimizer = "sgd"') for name in SGD_SETTINGS})
    elif config.schedule == "onecycle":
        out["momentum"] = (ONECYCLE_MOMENTUM, "give it with another schedule")
    if config.loss == "bce":
        out["label_smoothing"] = ("loss bce; only ce and ce-on-softmax smooth labels",
                                  'give it where loss = "ce"')
    if config.val_from == "test":
        out["val_size"] = ("val_from test validates on the test set",
                           'give it where val_from = "train"')
    return out


def as_trained(config: TrainConfig) -> TrainConfig:
    """`config` as its run trains it: every setting it does not read (settings_unread) at its
    default, the activation resolved to the model's own ("" is relu on a modern lenet5) and
    the augmentation written one way ("rotate=10.0" is "rotate=10"). Two configs alike here
    train one network, whatever their files say."""
    defaults = TrainConfig()
    unread = {name: getattr(defaults, name) for name in settings_unread(config)}
    if "momentum" in unread and "nesterov" not in unread and config.nesterov:
        unread["momentum"] = 0.95  # one-cycle's own, with the Nesterov step it still takes
    return config.replace(**unread, activation=config.resolved_activation,
                          augment=config.augmentation_text)


def build_model(config: TrainConfig, image_shape: Shape, num_classes: int, *,
                train_size: int | None = None, device: str | None = None,
                training: bool = True) -> nn.Module:
    """The model, on the CPU, after `check_size` found that it fits (see there for
    `train_size`, `device` and `training`)."""
    try:
        builder = MODEL_REGISTRY[config.model]
    except KeyError:
        raise MnistlabError(
            f"model: unknown name {config.model!r}; known models: {', '.join(list_models())}"
        ) from None
    check_size(config, image_shape, num_classes, train_size=train_size, device=device,
               training=training)
    if config.ensemble == 1:
        return builder(config, image_shape, num_classes)
    members = []
    for member in range(config.ensemble):
        # member m starts from the weights train() gives seed s+m, whatever the caller seeded
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(torch_seed(config.seed + member))
            members.append(builder(config, image_shape, num_classes))
    return Ensemble(members)


# --- size before building --------------------------------------------------------------------
NOMINAL_SHAPE: Shape = (1, 28, 28)  # MNIST-family images: what files are checked against
NOMINAL_CLASSES = 10
# Images per forward pass when scoring (evaluation.evaluate's batch): 256 scored 10,000 images
# 1.1-1.5x faster than 2,000 did on a 2-core Xeon, for every recipe's network and ensembles of
# them alike (the activations of a smaller chunk stay in cache; benchmarks/scoring_chunk.py),
# and a GPU still gets 40 passes, not 10,000.
EVAL_CHUNK = 256
BYTES_PER_VALUE = 4  # float32 weights, gradients, moments and activations
# A cap on parameters whatever the machine: the largest networks that make sense for 28x28
# images have a few million (the LeNet challenge's final CNN: 0.42 M; a 784-4096-4096 MLP:
# 20 M). 100 M is 25x that, still trains in about 2 GB with Adam, and refuses in one line
# the typo that asks for billions (--hidden 10000000: 7.9 G parameters, 31 GB of weights).
MAX_PARAMETERS = 100_000_000
# Training may use half of this machine's memory: the rest is the dataset, Python and torch
# themselves, and whatever else runs here (studies train several runs side by side, each in
# its own process and checked on its own). On a CUDA device, 90% of the GPU's memory: nothing
# else lives there but the CUDA context, cuDNN's workspace and the dataset on the device.
MEMORY_SHARE = 0.5
CUDA_MEMORY_SHARE = 0.9
# Values kept per optimizer for each parameter, besides the weight and its gradient.
OPTIMIZER_MOMENTS = {"adam": 2, "adamw": 2, "sgd": 1}


@dataclass(frozen=True)
class SizeEstimate:
    """What training a model costs in memory, approximately (arithmetic, nothing allocated).

    - weights: parameters x (weight + gradient + the optimizer's moments: Adam keeps two,
      SGD with momentum one, plain SGD none);
    - training activations: every layer's output for one batch, twice (the forward values
      autograd keeps, and gradients of about the same size during the backward pass);
    - scoring activations: the two largest consecutive layer outputs of one chunk of
      `EVAL_CHUNK` images (no autograd: each output is freed once the next layer has run).
    The peak is the weights plus the larger of the two activation figures. Temporaries inside
    kernels, allocator slack and the dataset itself are left out: the estimate is the part
    that grows with the settings, within a factor of about 2 of what torch allocates
    (measured here: 0.7x to 1.9x the resident memory two Adam steps and a scoring chunk add,
    for cnn at batch 512 and 2048, lenet5 at 4096, mlp 4096-4096 at 256 and 2048 at 8192).
    """

    parameters: int
    weight_bytes: int
    train_activation_bytes: int
    eval_activation_bytes: int
    images_per_step: int

    @property
    def peak_bytes(self) -> int:
        """Training: weights, gradients and moments, and the larger activations."""
        return self.weight_bytes + max(self.train_activation_bytes, self.eval_activation_bytes)

    @property
    def inference_bytes(self) -> int:
        """Scoring a trained model (evaluate, predict): the weights alone and one chunk."""
        return self.parameters * BYTES_PER_VALUE + self.eval_activation_bytes


def layer_plan(config: TrainConfig, image_shape: Shape = NOMINAL_SHAPE,
               num_classes: int = NOMINAL_CLASSES) -> list[Layer]:
    """The model's layers as numbers; `TooSmall` when the image is too small for them. An
    ensemble's layers are its members' side by side."""
    layers = LAYER_PLANS[config.model](config, image_shape, num_classes)
    n = config.ensemble
    return layers if n == 1 else [Layer(x.parameters * n, x.outputs * n) for x in layers]


def estimate_size(config: TrainConfig, image_shape: Shape = NOMINAL_SHAPE,
                  num_classes: int = NOMINAL_CLASSES, *,
                  train_size: int | None = None) -> SizeEstimate:
    """The memory `config` needs to train (see SizeEstimate for what is counted).

    A step sees min(batch size, training images) images: `train_size` where the caller knows
    it, else `train_subset` when the config sets one (an upper bound), else the batch size."""
    layers = layer_plan(config, image_shape, num_classes)
    parameters = sum(layer.parameters for layer in layers)
    moments = OPTIMIZER_MOMENTS[config.optimizer] if (
        config.optimizer != "sgd" or config.momentum > 0) else 0
    known = train_size if train_size is not None else (config.train_subset or None)
    images = min(config.batch_size, known) if known else config.batch_size
    pixels = image_shape[0] * image_shape[1] * image_shape[2]
    outputs = [pixels] + [layer.outputs for layer in layers]
    largest_pair = max(a + b for a, b in zip(outputs, outputs[1:]))
    return SizeEstimate(
        parameters=parameters,
        weight_bytes=parameters * (2 + moments) * BYTES_PER_VALUE,
        train_activation_bytes=2 * images * sum(outputs) * BYTES_PER_VALUE,
        eval_activation_bytes=EVAL_CHUNK * largest_pair * BYTES_PER_VALUE,
        images_per_step=images)


def memory_limit(device: str = "cpu") -> tuple[int, str]:
    """(bytes training may use, how that figure was found); (0, ...) when unknown."""
    if device == "cuda":
        total = torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory
        return int(total * CUDA_MEMORY_SHARE), (
            f"{CUDA_MEMORY_SHARE:.0%} of the GPU's {size_text(total)} of memory")
    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):  # not a POSIX system: no memory figure
        return 0, "unknown"
    return int(total * MEMORY_SHARE), f"{MEMORY_SHARE:.0%} of this machine's {size_text(total)}"


def check_size(config: TrainConfig, image_shape: Shape = NOMINAL_SHAPE,
               num_classes: int = NOMINAL_CLASSES, *, train_size: int | None = None,
               device: str | None = "cpu", training: bool = True,
               where: str = "model") -> SizeEstimate:
    """Refuse, in one line naming the estimate, the limit and the fix, a model that its
    images are too small for, that has more than MAX_PARAMETERS parameters, or that needs
    more memory than `memory_limit` allows: to train it, or with `training=False` (a trained
    model loaded to score images) to hold its weights and score a chunk. `device`: "cpu"
    (the default) or "cuda" to judge against that memory; None: the device `config.device`
    trains on."""
    if config.model not in LAYER_PLANS:
        raise MnistlabError(f"{where}: unknown model {config.model!r}; known models: "
                            f"{', '.join(list_models())}")
    try:
        size = estimate_size(config, image_shape, num_classes, train_size=train_size)
    except TooSmall:
        raise DoesNotFit(_too_small(config, image_shape, num_classes, where)) from None
    layers = LAYER_FLAGS[config.model]
    smaller = f"smaller layers ({layers})" if layers else "another --model"
    if size.parameters > MAX_PARAMETERS:
        raise DoesNotFit(
            f"{where}: {config.model} would have about {size.parameters:,} parameters "
            f"({size_text(size.weight_bytes)} to train with {config.optimizer}), above the "
            f"limit of {MAX_PARAMETERS:,}; use {smaller}")
    limit, source = memory_limit(_device_kind(config) if device is None else device)
    if limit and not training and size.inference_bytes > limit:
        raise DoesNotFit(
            f"{where}: scoring with {config.model} needs about {size_text(size.inference_bytes)}, "
            f"above the limit of {size_text(limit)} ({source}); use a machine with more memory")
    if limit and training and size.peak_bytes > limit:
        raise DoesNotFit(
            f"{where}: training {config.model} needs about {size_text(size.peak_bytes)} "
            f"(weights {size_text(size.weight_bytes)}, activations of a "
            f"{size.images_per_step:,}-image batch {size_text(size.train_activation_bytes)}, "
            f"of a {EVAL_CHUNK:,}-image scoring chunk {size_text(size.eval_activation_bytes)}), "
            f"above the limit of {size_text(limit)} ({source}); use a smaller --batch-size or "
            f"{smaller}")
    return size


def checked_config(data: dict, where: str) -> TrainConfig:
    """A table of a study or search-space file as a TrainConfig that is valid and whose
    model fits (check_size on nominal images), every error one line beginning with `where`
    (the file and the table or setting in it)."""
    try:
        config = TrainConfig.from_dict(data, where=where)
        check_size(config, where=where)
        return config
    except MnistlabError as exc:
        text = str(exc)
        raise MnistlabError(text if text.startswith(where) else f"{where}: {text}") from None


def _device_kind(config: TrainConfig) -> str:
    """Where `config` trains, without starting CUDA (train.resolve_device's rule)."""
    if config.device == "cuda" or (config.device == "auto" and torch.cuda.is_available()):
        return "cuda" if torch.cuda.is_available() else "cpu"
    return "cpu"


def _too_small(config: TrainConfig, image_shape: Shape, num_classes: int, where: str) -> str:
    """The one line for a network too deep for its images, with the smallest size it takes."""
    def fits(model: str, side: int) -> bool:
        try:
            layer_plan(config.replace(model=model), (image_shape[0], side, side), num_classes)
        except TooSmall:
            return False
        return True

    need = next((s for s in range(1, 1025) if fits(config.model, s)), None)
    others = [m for m in list_models() if m != config.model and fits(m, min(image_shape[1:]))]
    need_text = f"at least {need}x{need} pixels" if need else "larger images"
    fix = f"use --model {' or '.join(others)}" if others else "use larger images"
    return (f"{where}: {config.model} needs images of {need_text} (its convolutions and "
            f"poolings shrink them), these are {image_shape[1]}x{image_shape[2]}; {fix}")


def _dense_plan(in_features: int, sizes: tuple[int, ...], num_classes: int,
                dropout: float) -> list[Layer]:
    """_dense_head's layers: linear, activation (and dropout) per size, then the classifier."""
    layers: list[Layer] = []
    for size in sizes:
        layers += [Layer(in_features * size + size, size), Layer(0, size)]
        if dropout > 0:
            layers.append(Layer(0, size))
        in_features = size
    return layers + [Layer(in_features * num_classes + num_classes, num_classes)]


def _conv_plan(channels: int, width: int, kernel: int, height_width: tuple[int, int],
               padding: int, bias: bool, batchnorm: bool) -> tuple[list[Layer], tuple[int, int]]:
    """conv -> (batch norm) -> activation: its layers and the output's (height, width)."""
    h, w = (side + 2 * padding - kernel + 1 for side in height_width)
    if h < 1 or w < 1:
        raise TooSmall
    out = width * h * w
    layers = [Layer(channels * width * kernel * kernel + (width if bias else 0), out)]
    if batchnorm:
        layers.append(Layer(2 * width, out))
    return layers + [Layer(0, out)], (h, w)


def _pool(height_width: tuple[int, int]) -> tuple[int, int]:
    h, w = height_width[0] // 2, height_width[1] // 2
    if h < 1 or w < 1:
        raise TooSmall
    return h, w


def _mlp_plan(config: TrainConfig, image_shape: Shape, num_classes: int) -> list[Layer]:
    pixels = image_shape[0] * image_shape[1] * image_shape[2]
    return [Layer(0, pixels)] + _dense_plan(pixels, config.hidden, num_classes, config.dropout)


def _lenet5_plan(config: TrainConfig, image_shape: Shape, num_classes: int) -> list[Layer]:
    layers, size = _conv_plan(image_shape[0], 6, 5, image_shape[1:], 2, True, config.batchnorm)
    size = _pool(size)
    layers.append(Layer(0, 6 * size[0] * size[1]))
    more, size = _conv_plan(6, 16, 5, size, 0, True, config.batchnorm)
    size = _pool(size)
    flat = 16 * size[0] * size[1]
    return layers + more + [Layer(0, flat)] + _dense_plan(flat, (120, 84), num_classes,
                                                          config.dropout)


def _cnn_plan(config: TrainConfig, image_shape: Shape, num_classes: int) -> list[Layer]:
    layers: list[Layer] = []
    channels, size = image_shape[0], image_shape[1:]
    for width in config.filters:
        block, size = _conv_plan(channels, width, 3, size, 1, not config.batchnorm,
                                 config.batchnorm)
        layers += block
        if min(size) >= 2:  # cnn() stops pooling once the map is a single pixel
            size = _pool(size)
            layers.append(Layer(0, width * size[0] * size[1]))
        channels = width
    flat = channels * size[0] * size[1]
    return layers + _dense_plan(flat, config.dense, num_classes, config.dropout)


def count_parameters(model: nn.Module) -> int:
    """The model's weights, trainable or not: the moving average a run keeps (--ema) is a copy
    whose weights take no gradient, and it has as many as the network it averages."""
    return sum(p.numel() for p in model.parameters())


def _activation(name: str) -> nn.Module:
    return {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "gelu": nn.GELU}[name]()


# Activations that never decrease: max-pooling commutes with them (max(f(a), f(b)) =
# f(max(a, b))), so pooling first gives the same outputs and gradients on a quarter of the values.
MONOTONE = ("relu", "tanh", "sigmoid")


def _activation_and_max_pool(activation: str) -> list[nn.Module]:
    """Activation then 2x2 max-pooling, as the network is written; run as pool-then-activation
    where that is the same function (MONOTONE), which saves the activation three quarters of
    its work forward and backward. Neither has weights: model.pt files load either way."""
    if activation in MONOTONE:
        return [nn.MaxPool2d(2), _activation(activation)]
    return [_activation(activation), nn.MaxPool2d(2)]


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


@register_model("mlp", layers=_mlp_plan, layer_flags="--hidden")
def mlp(config: TrainConfig, image_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """784-128-64-10 by default: the Fashion-MNIST study's network."""
    in_features = image_shape[0] * image_shape[1] * image_shape[2]
    head = _dense_head(in_features, config.hidden, num_classes, config.resolved_activation,
                       config.dropout)
    return nn.Sequential(nn.Flatten(), *head)


@register_model("lenet5", layers=_lenet5_plan, options=("variant", "batchnorm"))
def lenet5(config: TrainConfig, image_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """LeNet-5. `classic`: tanh, average pooling, 6-16-120-84 (LeCun et al. 1998, with C3 fully
    connected rather than the paper's partial table). `modern`: same shape with ReLU, max
    pooling, optional batch norm and dropout."""
    classic = config.variant == "classic"
    act = config.resolved_activation

    def conv(cin: int, cout: int, padding: int) -> list[nn.Module]:
        block: list[nn.Module] = [nn.Conv2d(cin, cout, 5, padding=padding)]
        if config.batchnorm:
            block.append(nn.BatchNorm2d(cout))
        if classic:
            return block + [_activation(act), nn.AvgPool2d(2)]
        return block + _activation_and_max_pool(act)

    # 28x28 MNIST digits are padded to 32x32 in the paper; padding=2 does the same.
    features = FusedStem(*conv(image_shape[0], 6, 2), *conv(6, 16, 0), nn.Flatten())
    flat = _flat_size(features, image_shape)
    return nn.Sequential(features, *_dense_head(flat, (120, 84), num_classes, act, config.dropout))


@register_model("cnn", layers=_cnn_plan, layer_flags="--filters, --dense",
                options=("batchnorm",))
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
        if size >= 2:  # stop pooling once the map is a single pixel
            layers += _activation_and_max_pool(act)
            size //= 2
        else:
            layers.append(_activation(act))
        channels = width
    features = FusedStem(*layers, nn.Flatten())
    flat = _flat_size(features, image_shape)
    head = _dense_head(flat, config.dense, num_classes, act, config.dropout)
    return nn.Sequential(features, *head)


# --- resnet ------------------------------------------------------------------------------------
def _downsampled(size: tuple[int, int]) -> tuple[int, int]:
    """A 3x3 (or 1x1) convolution with stride 2 and 'same' padding: ceil(side / 2)."""
    return (size[0] - 1) // 2 + 1, (size[1] - 1) // 2 + 1


def _resnet_strides(config: TrainConfig, image_shape: Shape) -> list[int]:
    """The stride of each residual block in order: 2 for the first block of every stage after
    the first (the map halves), as long as the map is at least 2 pixels; else 1."""
    strides, size = [], image_shape[1:]
    for stage in range(len(config.filters)):
        for block in range(config.blocks):
            halve = stage > 0 and block == 0 and min(size) >= 2
            strides.append(2 if halve else 1)
            size = _downsampled(size) if halve else size
    return strides


def _resnet_plan(config: TrainConfig, image_shape: Shape, num_classes: int) -> list[Layer]:
    width = config.filters[0]
    size = image_shape[1:]
    out = width * size[0] * size[1]
    layers = [Layer(image_shape[0] * width * 9, out), Layer(2 * width, out), Layer(0, out)]
    channels = width
    widths = [w for w in config.filters for _ in range(config.blocks)]
    for width, stride in zip(widths, _resnet_strides(config, image_shape)):
        size = _downsampled(size) if stride == 2 else size
        out = width * size[0] * size[1]
        layers += [Layer(channels * width * 9, out), Layer(2 * width, out), Layer(0, out),
                   Layer(width * width * 9, out), Layer(2 * width, out)]
        if stride != 1 or channels != width:  # the skip is a 1x1 conv and batch norm
            layers += [Layer(channels * width, out), Layer(2 * width, out)]
        layers.append(Layer(0, out))  # the sum's activation
        channels = width
    layers.append(Layer(0, channels))  # global average pooling
    if config.dropout > 0:
        layers.append(Layer(0, channels))
    return layers + [Layer(channels * num_classes + num_classes, num_classes)]


class ResidualBlock(nn.Module):
    """conv3x3 -> BN -> act -> conv3x3 -> BN, plus the input (through a 1x1 conv and BN when
    the width or the map size changes), then act: He et al. 2016's basic block."""

    channel_local = True  # its forward acts per channel: an ensemble fuses it (ensemble.py)

    def __init__(self, channels: int, width: int, stride: int, activation: str) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, width, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.act1 = _activation(activation)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.skip: nn.Module = nn.Identity()
        # the skip's 1x1 convolution takes every stride-th pixel as its input, rather than
        # striding itself, the same sums: oneDNN's weight gradient of a strided 1x1 conv in
        # channels-last killed the process (SIGSEGV) with few channels on a large map (8 to
        # 16 channels at 56 px and more, torch 2.13 on a CPU; hunt)
        self.stride = stride
        if stride != 1 or channels != width:
            self.skip = nn.Sequential(nn.Conv2d(channels, width, 1, bias=False),
                                      nn.BatchNorm2d(width))
        self.act2 = _activation(activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.bn2(self.conv2(self.act1(self.bn1(self.conv1(x)))))
        taken = x if self.stride == 1 else x[:, :, ::self.stride, ::self.stride]
        return self.act2(residual + self.skip(taken))


@register_model("resnet", layers=_resnet_plan, layer_flags="--filters, --blocks")
def resnet(config: TrainConfig, image_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """A small residual network: a conv3x3-BN stem, then one stage per --filters width of
    --blocks residual blocks (each stage after the first halves the map), global average
    pooling, (dropout,) and the classifier. Batch norm throughout; the --dense sizes are not
    used (pooling leaves one value per channel)."""
    act = config.resolved_activation
    width = config.filters[0]
    layers: list[nn.Module] = [nn.Conv2d(image_shape[0], width, 3, padding=1, bias=False),
                               nn.BatchNorm2d(width), _activation(act)]
    channels = width
    widths = [w for w in config.filters for _ in range(config.blocks)]
    for width, stride in zip(widths, _resnet_strides(config, image_shape)):
        layers.append(ResidualBlock(channels, width, stride, act))
        channels = width
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    if config.dropout > 0:
        layers.append(nn.Dropout(config.dropout))
    return FusedStem(*layers, nn.Linear(channels, num_classes))
