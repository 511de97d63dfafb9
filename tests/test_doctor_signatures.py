"""Each of the doctor's signatures, triggered by a really broken training setup.

Every test trains a small model with a mistake built in (mostly the teaching-aid options) and
checks that the doctor names that mistake first.
"""

import pytest
import torch
from synth import blobs

from mnistlab import TrainConfig, train
from mnistlab.cli import main

FAST = dict(model="mlp", hidden=(32,), val_size=200, eval_train_size=500, batch_size=50,
            epochs=3, seed=0, device="cpu", schedule="constant")


def codes(result):
    return [f.code for f in result.summary.diagnoses]


def first_problem(result):
    problems = [f.code for f in result.summary.diagnoses if f.severity == "problem"]
    return problems[0] if problems else None


def test_binary_accuracy_illusion():
    config = TrainConfig(**{**FAST, "loss": "bce", "metric": "binary-accuracy",
                            "shuffle_labels": True, "hidden": (16,), "epochs": 3})
    result = train(config, dataset=blobs(n_train=3000))
    assert result.summary.val_metric == pytest.approx(0.9, abs=0.005)
    assert result.history[-1].train_loss == pytest.approx(0.3251, abs=0.01)
    assert codes(result)[0] == "binary-accuracy-illusion"


@pytest.mark.parametrize("val_size", [200, 0])
def test_not_learning(val_size):
    # deep sigmoid stack: gradients vanish, outputs stay constant; without validation it was
    # called a label problem (no-signal): the rule read the NaN validation accuracy
    config = TrainConfig(**{**FAST, "hidden": (64, 64, 64, 64, 64, 64), "activation": "sigmoid",
                            "optimizer": "sgd", "lr": 0.01, "val_size": val_size})
    result = train(config, dataset=blobs())
    assert first_problem(result) == "not-learning" and "no-signal" not in codes(result)


def test_collapse():
    ds = blobs()
    ds.train_labels = torch.zeros_like(ds.train_labels)  # a label file read as all zeros
    config = TrainConfig(**{**FAST, "val_from": "test"})
    with pytest.warns(UserWarning):
        assert first_problem(train(config, dataset=ds)) == "collapse"


def test_softmax_twice():
    config = TrainConfig(**{**FAST, "loss": "ce-on-softmax", "epochs": 8, "lr": 0.003})
    result = train(config, dataset=blobs())
    assert first_problem(result) == "softmax-twice"


def test_divergence():
    config = TrainConfig(**{**FAST, "optimizer": "sgd", "lr": 50.0})
    result = train(config, dataset=blobs())
    assert result.summary.status == "diverged"
    assert first_problem(result) == "diverged"


def test_too_slow():
    config = TrainConfig(**{**FAST, "optimizer": "sgd", "lr": 1e-5})
    assert first_problem(train(config, dataset=blobs())) == "too-slow"


def test_unnormalised_input():
    config = TrainConfig(**{**FAST, "input_scaling": "raw"})
    assert first_problem(train(config, dataset=blobs())) == "unnormalised-input"


def test_overfitting(shared_datasets):
    config = TrainConfig(dataset="fashion-mnist", data_dir=str(shared_datasets), model="mlp",
                         hidden=(512, 256), train_subset=1000, val_size=2000,
                         eval_train_size=1000, epochs=25, batch_size=50, schedule="constant",
                         device="cpu")
    result = train(config)
    assert first_problem(result) is None
    assert codes(result)[0] == "overfitting"


def test_validation_above_running_training_is_explained():
    config = TrainConfig(**{**FAST, "hidden": (64, 32), "dropout": 0.6})
    result = train(config, dataset=blobs())
    assert first_problem(result) is None
    assert codes(result)[0] == "val-above-train"


def test_wrong_dataset_from_class_histogram():
    # 60,000 images with exactly 6,000 per class, offered as MNIST: Fashion-MNIST's histogram
    ds = blobs(n_train=60000, name="mnist")
    config = TrainConfig(**{**FAST, "epochs": 1, "batch_size": 2000, "eval_train_size": 100})
    assert first_problem(train(config, dataset=ds)) == "wrong-dataset"


def test_no_signal(shared_datasets):
    # real digits: within-class variety, so a model that learned nothing answers at chance
    config = TrainConfig(**{**FAST, "dataset": "mnist", "data_dir": str(shared_datasets),
                            "train_subset": 5000, "val_size": 2000, "shuffle_labels": True,
                            "epochs": 4})
    result = train(config)
    assert first_problem(result) == "no-signal"


def test_no_signal_where_the_training_images_are_learned_by_heart(shared_datasets):
    """Shuffled labels on 2,000 images: the model learned its own images (eval mode well above
    chance) and validation stayed below chance (0.067), and the doctor found nothing wrong."""
    config = TrainConfig(dataset="mnist", data_dir=str(shared_datasets), model="mlp",
                         train_subset=2000, epochs=3, shuffle_labels=True, device="cpu")
    result = train(config)  # `train --model mlp --train-subset 2000 --epochs 3 --shuffle-labels`
    (found,) = [f for f in result.summary.diagnoses if f.code == "no-signal"]
    assert found.values.get("kind") == "memorising", found.values
    assert "learns its own training images by heart" in found.text()["explanation"]


def test_healthy_run_has_no_problem():
    result = train(TrainConfig(**FAST), dataset=blobs())
    assert first_problem(result) is None


def test_cli_diverges_clearly(tmp_path, capsys, shared_datasets):
    code = main(["train", "--dataset", "mnist", "--data-dir", str(shared_datasets),
                 "--optimizer", "sgd", "--lr", "50", "--train-subset", "5000",
                 "--out", str(tmp_path / "r"), "--quiet"])
    captured = capsys.readouterr()
    assert code == 1
    assert "diverged" in captured.err and "lower the learning rate" in captured.err
    assert "nan" not in captured.out.lower()
    assert "  problems=diverg" in captured.out  # --quiet keeps the doctor's verdict, as a code
    assert main(["doctor", str(tmp_path / "r")]) == 1
    assert "Training diverged" in capsys.readouterr().out
