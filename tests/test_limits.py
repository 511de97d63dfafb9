"""Model sizes before building: the arithmetic layer plans against the real modules, and the
one-line refusals of models too big for the machine or too deep for their images."""

import numpy as np
import pytest
import torch
from conftest import make_idx_files

from mnistlab import models
from mnistlab.cli import main
from mnistlab.config import TrainConfig
from mnistlab.errors import MnistlabError
from mnistlab.models import (
    LAYER_PLANS,
    MODEL_REGISTRY,
    build_model,
    check_size,
    count_parameters,
    estimate_size,
)

CONFIGS = [
    {"model": "mlp"},
    {"model": "mlp", "hidden": (512, 256), "dropout": 0.5},
    {"model": "lenet5", "variant": "classic"},
    {"model": "lenet5", "batchnorm": True, "dropout": 0.3},
    {"model": "cnn"},
    {"model": "cnn", "filters": (8, 16, 32, 64, 128, 256), "batchnorm": True, "dropout": 0.2},
    {"model": "resnet", "filters": (8, 16, 32), "blocks": 2},
    {"model": "resnet", "filters": (4, 8, 8, 8, 8, 8), "blocks": 1, "dropout": 0.1},
]
SHAPES = [(1, 28, 28), (1, 32, 32), (3, 13, 17), (1, 12, 12)]


def test_every_model_has_a_layer_plan():
    assert set(LAYER_PLANS) == set(MODEL_REGISTRY) == {c["model"] for c in CONFIGS}


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("settings", CONFIGS, ids=lambda s: "-".join(map(str, s.values())))
def test_estimate_matches_the_built_model(settings, shape):
    config = TrainConfig(**settings)
    model = build_model(config, shape, 10)
    size = estimate_size(config, shape, 10)
    assert size.parameters == count_parameters(model)
    # activations: the plan's outputs per image against what the modules really output
    outputs = []
    hooks = [m.register_forward_hook(lambda _m, _i, out: outputs.append(out[0].numel()))
             for m in model.modules() if not list(m.children())]
    model.train()
    # an input that takes a gradient runs each layer on its own (no fused stem: stem.py), so
    # that every layer's output is seen
    model(torch.zeros(2, *shape, requires_grad=True))
    for hook in hooks:
        hook.remove()
    planned = size.train_activation_bytes / (2 * 4 * config.batch_size)
    assert sum(outputs) / 2 <= planned <= 2 * sum(outputs)


def test_optimizer_moments_and_batch_actually_used_are_counted():
    adam = estimate_size(TrainConfig(model="mlp", optimizer="adam"))
    sgd = estimate_size(TrainConfig(model="mlp", optimizer="sgd"))
    momentum = estimate_size(TrainConfig(model="mlp", optimizer="sgd", momentum=0.9))
    assert (sgd.weight_bytes, momentum.weight_bytes, adam.weight_bytes) == tuple(
        adam.parameters * 4 * n for n in (2, 3, 4))
    big_batch = TrainConfig(model="mlp", batch_size=100_000)
    assert estimate_size(big_batch).images_per_step == 100_000
    assert estimate_size(big_batch, train_size=600).images_per_step == 600
    assert estimate_size(big_batch.replace(train_subset=3000)).images_per_step == 3000


@pytest.mark.parametrize("settings,shape,message", [
    ({"model": "mlp", "hidden": (10_000_000,)}, (1, 28, 28),
     "mlp would have about 7,950,000,010 parameters (127.2 GB to train with adam), above the "
     "limit of 100,000,000; use smaller layers (--hidden)"),
    ({"model": "cnn", "filters": (4096, 4096, 4096)}, (1, 28, 28),
     "use smaller layers (--filters, --dense)"),
    ({"model": "mlp"}, (1, 100_000, 100_000), "mlp would have about 1,280,000,"),
    ({"model": "lenet5"}, (1, 4, 4),
     "lenet5 needs images of at least 12x12 pixels (its convolutions and poolings shrink "
     "them), these are 4x4; use --model cnn or mlp"),
    ({"model": "lenet5"}, (1, 1, 1), "lenet5 needs images of at least 12x12 pixels"),
    ({"model": "lenet5"}, (1, 28, 11), "these are 28x11"),
    ({"model": "cnn", "batch_size": 100_000}, (1, 28, 28),
     "training cnn needs about 80.0 GB (weights 6.8 MB, activations of a 100,000-image batch "
     "79.9 GB, of a 256-image scoring chunk 51.4 MB), above the limit of 1.0 GB (test); use a "
     "smaller --batch-size or smaller layers (--filters, --dense)"),
    ({"model": "lenet5", "batch_size": 100_000}, (1, 28, 28),
     "use a smaller --batch-size or another --model"),
    ({"model": "resnet", "batch_size": 100_000}, (1, 28, 28),
     "use a smaller --batch-size or smaller layers (--filters, --blocks)"),
    ({"model": "resnet", "filters": (4096, 4096, 4096), "blocks": 4}, (1, 28, 28),
     "resnet would have about"),
    # a batch of 10**13 images said "about 1275200000000000.0 GB"
    ({"model": "mlp", "batch_size": 10**13}, (1, 28, 28),
     "training mlp needs about 156,960 TB (weights 1.8 MB"),
])
def test_too_big_or_too_deep_is_one_line_before_building(settings, shape, message, monkeypatch):
    monkeypatch.setattr(models, "memory_limit", lambda device="cpu": (10**9, "test"))
    with pytest.raises(MnistlabError) as info:
        build_model(TrainConfig(**settings), shape, 10)
    assert message in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("settings,shape", [
    ({"model": "cnn", "filters": (32, 64, 128), "dense": (256, 128), "batch_size": 256},
     (1, 28, 28)),  # the LeNet challenge's final network
    ({"model": "cnn"}, (1, 1, 1)),  # cnn stops pooling at one pixel: any size will do
    ({"model": "cnn", "batchnorm": True}, (1, 4, 4)),
    ({"model": "mlp"}, (1, 1, 1)),
    ({"model": "lenet5"}, (1, 12, 12)),
    ({"model": "mlp", "hidden": (4096, 4096)}, (1, 28, 28)),
    ({"model": "resnet"}, (1, 1, 1)),  # resnet stops halving at one pixel, like cnn
    ({"model": "resnet", "filters": (32, 64, 128), "blocks": 2, "batch_size": 256}, (1, 28, 28)),
])
def test_real_recipes_and_small_images_pass(settings, shape):
    model = build_model(TrainConfig(**settings), shape, 10)
    assert model(torch.zeros(2, *shape)).shape == (2, 10)
    # on this machine's memory too, with a batch the size of a small training set
    assert check_size(TrainConfig(**settings), shape, 10, train_size=60_000).parameters > 0


def test_memory_limit_is_a_share_of_this_machine():
    limit, source = models.memory_limit("cpu")
    assert 0 < limit < 2**64 and "of this machine's" in source


@pytest.mark.parametrize("device", ["cuda", "auto"])
def test_on_a_gpu_its_memory_is_the_limit(device, monkeypatch):
    """No GPU needed: torch.cuda is stood in for by a 2 GB device."""
    class Properties:
        total_memory = 2 * 10**9

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda index: Properties())
    config = TrainConfig(model="cnn", batch_size=4000, device=device)  # ~3.2 GB of activations
    with pytest.raises(MnistlabError, match=r"above the limit of 1\.8 GB \(90% of the GPU's "
                                            r"2\.0 GB of memory\)"):
        build_model(config, (1, 28, 28), 10)
    assert check_size(config.replace(batch_size=256), device=None).parameters == 422_026


def _dataset(folder, side):
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 120), ("t10k", 40)):
        labels = (np.arange(n) % 10).astype(np.uint8)
        images = rng.integers(0, 256, size=(n, side, side), dtype=np.uint8)
        make_idx_files(folder, images, labels, prefix)
    return folder


@pytest.mark.parametrize("argv,side,message", [
    (["--model", "mlp", "--hidden", "10000000"], 28,
     "mlp would have about 7,950,000,010 parameters"),
    (["--model", "lenet5"], 4, "lenet5 needs images of at least 12x12 pixels"),
    (["--model", "lenet5"], 1, "these are 1x1; use --model cnn or mlp"),
])
def test_cli_refuses_in_one_line_and_exit_2(argv, side, message, tmp_path, capsys):
    data = _dataset(tmp_path / "images", side)
    out = tmp_path / "run"
    code = main(["train", "--quiet", "--dataset", str(data), "--val-size", "20", "--out",
                 str(out), *argv])
    err = capsys.readouterr().err
    assert code == 2 and message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (out / "model.pt").exists()
