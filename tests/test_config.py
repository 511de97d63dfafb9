"""TrainConfig: validation of every setting, TOML round trip, CLI errors (table-driven)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mnistlab.cli import main
from mnistlab.config import TrainConfig, load_config, parse_augment, parse_int_list
from mnistlab.errors import MnistlabError

BAD_SETTINGS = [
    ({"lr": 0}, "lr: must be a positive number"),
    ({"lr": -0.1}, "lr: must be a positive number"),
    ({"dropout": 1.0}, "dropout: must be in [0, 1)"),
    ({"dropout": -0.1}, "dropout: must be in [0, 1)"),
    ({"batch_size": 0}, "batch-size: must be a whole number >= 1"),
    ({"epochs": 0}, "epochs: must be a whole number >= 1"),
    ({"model": "resnet"}, "model: unknown value 'resnet'; choose one of mlp, lenet5, cnn"),
    ({"optimizer": "rmsprop"}, "optimizer: unknown value 'rmsprop'"),
    ({"schedule": "linear"}, "schedule: unknown value 'linear'"),
    ({"hidden": "128,abc"}, "hidden: '128,abc' is not a comma-separated list"),
    ({"hidden": "0,64"}, "hidden: '0,64' must list one or more positive whole numbers"),
    ({"filters": ""}, "filters: '' must list one or more positive whole numbers"),
    ({"augment": "spin=3"}, "augment: cannot read 'spin=3'"),
    ({"augment": "shift=1.5"}, "augment: shift is a fraction and must be < 1"),
    ({"nesterov": True}, "nesterov: needs --optimizer sgd and --momentum > 0"),
    ({"label_smoothing": 1.0}, "label-smoothing: must be in [0, 1)"),
]


@pytest.mark.parametrize("changes,message", BAD_SETTINGS)
def test_invalid_settings_raise_one_line_errors(changes, message):
    with pytest.raises(MnistlabError) as info:
        TrainConfig.from_dict(changes)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


CLI_BAD = [
    (["--lr", "0"], "lr: must be a positive number"),
    (["--lr", "abc"], "lr: expected a number"),
    (["--dropout", "1.5"], "dropout: must be in [0, 1)"),
    (["--batch-size", "0"], "batch-size: must be a whole number >= 1"),
    (["--batch-size", "2.5"], "batch-size: expected a whole number"),
    (["--model", "vgg"], "model: unknown value 'vgg'"),
    (["--optimizer", "lion"], "optimizer: unknown value 'lion'"),
    (["--schedule", "warm"], "schedule: unknown value 'warm'"),
    (["--hidden", "128;64"], "hidden: '128;64' is not a comma-separated list"),
    (["--dataset", "cifar10"], "cifar10"),
]


@pytest.mark.parametrize("argv,message", CLI_BAD)
def test_cli_bad_settings_exit_2_with_one_line(argv, message, capsys, tmp_path):
    code = main(["train", "--quiet", "--out", str(tmp_path / "r"), *argv])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_toml_round_trip(tmp_path):
    config = TrainConfig(model="cnn", filters=(8, 16), dense=(32,), dropout=0.25,
                         augment="rotate=10,scale=0.1", batchnorm=True, data_dir="/x/y")
    path = tmp_path / "config.toml"
    path.write_text(config.to_toml())
    assert load_config(path) == config


def test_unknown_key_in_file_is_named(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('learning_rate = 0.1\n')
    with pytest.raises(MnistlabError, match="unknown setting 'learning_rate'"):
        load_config(path)


@given(st.lists(st.integers(min_value=1, max_value=4096), min_size=1, max_size=6))
def test_int_list_parses_what_it_prints(values):
    assert parse_int_list("hidden", ",".join(map(str, values))) == tuple(values)


@given(st.floats(0, 45), st.floats(0, 0.9), st.floats(0, 0.9))
def test_augment_round_trip(rotate, scale, shift):
    text = f"rotate={rotate!r},scale={scale!r},shift={shift!r}"
    assert parse_augment(text) == {"rotate": rotate, "scale": scale, "shift": shift}


def test_classic_lenet_defaults_to_tanh():
    assert TrainConfig(model="lenet5", variant="classic").resolved_activation == "tanh"
    assert TrainConfig(model="lenet5").resolved_activation == "relu"
    assert TrainConfig(model="mlp", activation="gelu").resolved_activation == "gelu"
