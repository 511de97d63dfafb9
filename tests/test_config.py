"""TrainConfig: validation of every setting, TOML round trip, CLI errors (table-driven)."""

import datetime
import json
import math
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mnistlab.cli import main
from mnistlab.config import (
    SEED_LIMIT,
    TrainConfig,
    check_name,
    load_config,
    name_from_stem,
    parse_augment,
    parse_int_list,
)
from mnistlab.errors import MnistlabError
from mnistlab.study.options import StudyOptions
from mnistlab.tune.options import TuneOptions

BAD_SETTINGS = [
    ({"lr": 0}, "lr: must be a positive number"),
    ({"lr": -0.1}, "lr: must be a positive number"),
    ({"lr": float("inf")}, "lr: must be a positive number (and finite), got inf"),
    ({"filters": "16,,32"}, "filters: '16,,32' has an empty item"),
    ({"dropout": 1.0}, "dropout: must be in [0, 1)"),
    ({"dropout": -0.1}, "dropout: must be in [0, 1)"),
    ({"batch_size": 0}, "batch-size: must be a whole number >= 1"),
    ({"epochs": 0}, "epochs: must be a whole number from 1 to 100,000, got 0"),
    ({"model": "vgg"}, "model: unknown value 'vgg'; choose one of mlp, lenet5, cnn, resnet"),
    ({"optimizer": "rmsprop"}, "optimizer: unknown value 'rmsprop'"),
    ({"schedule": "linear"}, "schedule: unknown value 'linear'"),
    # a wrong case or a near name is named, as a misspelt flag is (hunt)
    ({"optimizer": "SGD"}, "optimizer: unknown value 'SGD'; choose one of sgd, adam, adamw "
                           "(did you mean sgd?)"),
    ({"model": "lenet"}, "model: unknown value 'lenet'; choose one of mlp, lenet5, cnn, resnet "
                         "(did you mean lenet5?)"),
    ({"hidden": "128,abc"}, "hidden: '128,abc' is not a comma-separated list"),
    ({"hidden": "0,64"}, "hidden: '0,64' must list one or more positive whole numbers"),
    ({"filters": ""}, "filters: '' must list one or more positive whole numbers"),
    ({"augment": "spin=3"}, "augment: cannot read 'spin=3'"),
    ({"augment": "shift=1.5"}, "augment: shift is a fraction and must be < 1"),
    ({"augment": "crop=1.5"}, "augment: crop is the padding in whole pixels, 0 to 16"),
    ({"augment": "crop=17"}, "augment: crop is the padding in whole pixels, 0 to 16"),
    ({"augment": "erase=1.5"}, "augment: erase is a probability and must be <= 1"),
    ({"augment": "erase_area=0.2"}, "augment: erase_area needs erase=P"),
    ({"augment": "rotate=10,rotate=20"}, "augment: rotate is given twice (rotate=10 and "
     "rotate=20); give each change once"),  # the last was taken without a word
    ({"augment": "erase=0.5,erase_area=0.2,erase-area=0.3"}, "augment: erase_area is given "
     "twice"),
    ({"augment": "erase=0.5,erase-area=1"}, "augment: erase_area is a fraction and must be < 1"),
    ({"augment": "flip=0.5"}, "augment: flip is refused for mnist: a mirrored 2, 5 or 7 is "
                              "not that digit"),
    ({"augment": "flip=2", "dataset": "fashion-mnist"}, "flip is a probability"),
    ({"blocks": 0}, "blocks: must be a whole number >= 1"),
    ({"blocks": 101}, "blocks: at most 100 per stage"),
    ({"epochs": 1_000_000_000}, "epochs: must be a whole number from 1 to 100,000, got 1,00"),
    ({"ema": 1.0}, "ema: the decay must be in [0, 1)"),
    ({"ema": -0.5}, "ema: the decay must be in [0, 1)"),
    ({"precision": "fp16"}, "precision: unknown value 'fp16'; choose one of fp32, bf16"),
    ({"nesterov": True}, "nesterov: needs --optimizer sgd and --momentum > 0"),
    ({"label_smoothing": 1.0}, "label-smoothing: must be in [0, 1)"),
    ({"hidden": 1.5}, "hidden: 1.5 is not a list of whole numbers"),
    ({"optimizer": "x" * 10**6}, "optimizer: unknown value '" + "x" * 56 + "...; choose"),
    ({"epochs": "9" * 10**4 + "x"}, "epochs: expected a whole number, got '99999"),
    ({"hidden": [8] * 101}, "hidden: at most 100 layers, got 101"),
    ({"filters": ",".join(["4"] * 10**6)}, "filters: at most 100 layers, got 1,000,000"),
    ({"dense": ",".join(["0"] * 10**6)}, "dense: '" + "0," * 28 + "... must list one or more"),
    ({"hidden": {"a": 1}}, "hidden: {'a': 1} is not a list of whole numbers"),
    ({"lr": 10**400}, "lr: expected a number"),
    ({"seed": -1}, "seed: must be a whole number >= 0"),
    ({"seed": 2**62}, "seed: must be below 2**62"),
    ({"seed": 2**63}, "seed: must be below 2**62"),
    ({"data_seed": 2**64 + 1}, "data-seed: must be below 2**62"),
]


@pytest.mark.parametrize("changes,message", [
    ({"shuffle_labels": "no"}, "shuffle-labels: must be true or false, got 'no'"),
    ({"tta": "false"}, "tta: must be true or false, got 'false'"),
    ({"dropout": "0.5"}, "dropout: must be a number, got '0.5'"),
    ({"momentum": None}, "momentum: must be a number, got None"),
    ({"lr": True}, "lr: must be a number, got True"),
    ({"augment": None}, "augment: must be text, got None"),
    ({"dataset": 123}, "dataset: must be text, got 123")])
def test_settings_given_from_python_are_of_their_kind(changes, message):
    """Python keyword arguments are not read as files and flags are: shuffle_labels="no"
    shuffled the labels (a text is true), tta="false" turned test-time augmentation on, and
    dropout="0.5" or augment=None raised TypeError or AttributeError."""
    with pytest.raises(MnistlabError, match=message.replace("(", r"\(").replace(")", r"\)")):
        TrainConfig(**changes)
    assert TrainConfig(lr=1).lr == 1  # a whole number is a number
    import numpy as np  # numpy's numbers and truths are theirs, as Python's own

    config = TrainConfig(lr=np.float64(0.01), tta=np.bool_(True), epochs=np.int64(3))
    assert (config.lr, config.tta, config.epochs) == (0.01, True, 3)
    assert type(config.tta) is bool and type(config.epochs) is int


@pytest.mark.parametrize("changes,message", BAD_SETTINGS)
def test_invalid_settings_raise_one_line_errors(changes, message):
    with pytest.raises(MnistlabError) as info:
        TrainConfig.from_dict(changes)
    assert message in str(info.value)
    assert "\n" not in str(info.value) and len(str(info.value)) < 300


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
    (["--dataset", "fashion-mnst"], "dataset: 'fashion-mnst' (did you mean fashion-mnist?) is "
     "neither a known dataset"),  # hunt: a recipe's name had the hint, a dataset's not
    (["--seed", "9223372036854775808"], "seed: must be below 2**62"),
    (["--data-seed", "4611686018427387904"], "data-seed: must be below 2**62"),
    (["--hidden", "1e400"], "hidden: '1e400' is not a comma-separated list"),
    (["--augment", "crop=2,flip=0.5"], "augment: flip is refused for mnist"),
    (["--ema", "0.999x"], "ema: expected a number"),
    (["--blocks", "0"], "blocks: must be a whole number >= 1"),
]


@pytest.mark.parametrize("argv,message", CLI_BAD)
def test_cli_bad_settings_exit_2_with_one_line(argv, message, capsys, tmp_path):
    code = main(["train", "--quiet", "--out", str(tmp_path / "r"), *argv])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("line,said", [
    ("epochs = true", "c.toml: epochs: expected a whole number, got true"),
    ("hidden = [true]", "c.toml: hidden: [true] is not a list of whole numbers (e.g. [128, 64])"),
    ("batch_size = 32.5", "c.toml: batch_size: expected a whole number, got 32.5"),
    ("data_dir = 5", "c.toml: data_dir: expected text, got 5"),
    ("tta = 1", "c.toml: tta: expected true or false, got 1"),
    # a flag of the command: it was "unknown setting 'out' (did you mean dropout?)"
    ("out = 'runs/x'", "c.toml: 'out' is no setting but a flag of the command (--out); give it "
     "on the command line"),
    ("recipe = 'mnist-fast'", "c.toml: 'recipe' is no setting but a flag of the command "
     "(--recipe); give it on the command line"),
])
def test_a_config_file_s_bad_value_is_said_as_the_file_writes_it(line, said, capsys,
                                                                  tmp_path):
    """A config.toml's `epochs = true` was "got True", and `batch_size = 32.5` was said with
    the flag's spelling, batch-size (hunt)."""
    (tmp_path / "c.toml").write_text(line + "\n")
    assert main(["train", "--quiet", "--config", str(tmp_path / "c.toml"),
                 "--out", str(tmp_path / "r")]) == 2
    assert capsys.readouterr().err.strip() == f"error: {tmp_path / said}"


def test_a_command_flag_elsewhere_is_no_setting_without_a_false_hint():
    """Review: the flag's wording reached study files and Python (`replace(out=...)` was told
    to give --out on the command line); there it is an unknown setting, without "did you
    mean dropout?"."""
    from mnistlab.study import parse_study

    with pytest.raises(MnistlabError, match=r"unknown setting 'out'$"):
        TrainConfig().replace(out="x")
    with pytest.raises(MnistlabError, match=r"\[base\]: unknown setting 'recipe'$"):
        parse_study({"base": {"recipe": "mnist-fast"}})


def test_toml_round_trip(tmp_path):
    config = TrainConfig(model="cnn", filters=(8, 16), dense=(32,), dropout=0.25,
                         augment="rotate=10,scale=0.1", batchnorm=True, data_dir="/x/y")
    path = tmp_path / "config.toml"
    path.write_text(config.to_toml())
    assert load_config(path) == config


def test_new_settings_round_trip_through_config_toml(tmp_path):
    config = TrainConfig(dataset="fashion-mnist", model="resnet", filters=(16, 32), blocks=3,
                         augment="crop=2,erase=0.5,erase-area=0.2,flip=0.5", ema=0.999,
                         tta=True, precision="bf16")
    path = tmp_path / "config.toml"
    path.write_text(config.to_toml())
    assert load_config(path) == config
    assert config.augmentation == {"crop": 2.0, "erase": 0.5, "erase_area": 0.2, "flip": 0.5}
    assert "ema = 0.999" in path.read_text() and "tta = true" in path.read_text()


def test_erase_area_has_a_default_and_flip_is_fine_for_fashion():
    assert TrainConfig(augment="erase=0.5").augmentation == {"erase": 0.5, "erase_area": 0.25}
    assert TrainConfig(dataset="fashion-mnist", augment="flip=0.5").augmentation == {
        "flip": 0.5}


def test_an_augmentation_that_does_nothing_is_none():
    """A zero moves nothing: "rotate=0,shift=0" is no augmentation, as "none" is, so such a
    run takes the plain path (and may join a cohort); erase_area=0 beside erase is kept,
    since its unsaid value is 0.25, not 0."""
    for text in ("", "none", "rotate=0,shift=0"):
        assert TrainConfig(augment=text).augmentation == {}
    assert TrainConfig(augment="rotate=0,scale=0.1").augmentation == {"scale": 0.1}
    assert TrainConfig(augment="erase=0.5,erase_area=0").augmentation == {
        "erase": 0.5, "erase_area": 0.0}


def test_a_resumed_run_with_another_ema_is_refused(tmp_path):
    from mnistlab.runs import claim_run_folder

    out = tmp_path / "run"
    assert claim_run_folder(out, TrainConfig(ema=0.99), overwrite=False, needs_test=True) == "new"
    (out / "metrics.csv").write_text("epoch\n1\n")  # an epoch was trained: the folder holds work
    with pytest.raises(MnistlabError, match="holds a run of another configuration.*overwrite"):
        claim_run_folder(out, TrainConfig(ema=0.999), overwrite=False, needs_test=True)
    with pytest.raises(MnistlabError, match="changed by hand"):  # a study's or search's folder
        claim_run_folder(out, TrainConfig(ema=0.999), overwrite=False, needs_test=True,
                         named_by_settings=True)
    with pytest.raises(MnistlabError, match="another configuration"):
        claim_run_folder(out, TrainConfig(ema=0.99, tta=True), overwrite=False,
                         needs_test=True)


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


def test_largest_seed_is_accepted():
    assert TrainConfig(seed=SEED_LIMIT - 1, data_seed=SEED_LIMIT - 1).seed == SEED_LIMIT - 1


def _load_study(path):
    from mnistlab.study import load_study

    return load_study(str(path))


def _load_space(path):
    from mnistlab.tune.space import load_space

    return load_space(str(path))


@pytest.mark.parametrize("load", [load_config, _load_study, _load_space])
@pytest.mark.parametrize("content", [b"lr = 0.1  # \xe9t\xe9\n", b"\xff\xfe[\x00b\x00]\x00"])
def test_files_that_are_not_utf8_are_one_line(load, content, tmp_path):
    path = tmp_path / "settings.toml"
    path.write_bytes(content)
    with pytest.raises(MnistlabError) as info:
        load(path)
    assert str(info.value).startswith(f"{path}: not UTF-8 text")
    assert "save the file as UTF-8" in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("load", [load_config, _load_study, _load_space])
def test_a_binary_file_given_as_settings_is_said_to_be_one(load, tmp_path):
    """A run's model.pt given as a study file was told to be saved as UTF-8."""
    import torch

    path = tmp_path / "model.pt"
    torch.save({"state_dict": {"w": torch.zeros(3)}}, path)
    with pytest.raises(MnistlabError) as info:
        load(path)
    assert str(info.value) == (f"{path}: a binary file (a zip archive: a model.pt, say), not a "
                               "TOML text file; give the settings file itself (a .toml)")


@pytest.mark.parametrize("name,problem", [
    ("two words", "it holds spaces"),
    ("tab\there", "it holds control characters"),
    ("nul\x00byte", "it holds control characters"),
    ("a/b", "a slash would make it a path"),
    ("a\\b", "a slash would make it a path"),
    (".", "it starts with a dot"),
    ("..", "it starts with a dot"),
    (".hidden", "it starts with a dot"),
    ("", "it is empty"),
    ("   ", "it is empty"),
    ("x" * 101, "longer than 100 characters"),
    (3, "it is not text"),
])
def test_names_that_cannot_be_folders_are_refused(name, problem):
    with pytest.raises(MnistlabError) as info:
        check_name(name, "s.toml")
    text = str(info.value)
    assert text.startswith("s.toml: name must be a word") and problem in text
    assert "\n" not in text


@pytest.mark.parametrize("stem,name", [
    ("my study", "my-study"),
    ("  two   spaces ", "two-spaces"),
    (".hidden", "hidden"),
    ("...", "unnamed"),
    ("ctrl\x01char", "ctrlchar"),
    ("fine-name_1", "fine-name_1"),
])
def test_file_stems_become_valid_names(stem, name):
    assert name_from_stem(stem) == name
    assert check_name(name, "x") == name


def test_a_bad_value_in_a_config_file_names_the_file(tmp_path, capsys):
    from mnistlab.cli import main

    settings = tmp_path / "settings.toml"
    settings.write_text('model = "mlp"\nepochs = 0\n')
    assert main(["train", "--config", str(settings), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert f"{settings}: epochs" in " ".join(err.split())
    # the same value as a flag is the flag's, not the file's
    assert main(["train", "--config", str(settings), "--epochs", "-1",
                 "--out", str(tmp_path / "run")]) == 2
    assert f"{settings}:" not in capsys.readouterr().err
    assert main(["train", "--config", str(tmp_path), "--out", str(tmp_path / "run")]) == 2
    assert "a folder, not a file" in capsys.readouterr().err


def test_a_relative_dataset_path_that_is_not_here_says_where_it_looked(tmp_path, monkeypatch):
    from mnistlab.data import load_dataset

    monkeypatch.chdir(tmp_path)
    with pytest.raises(MnistlabError, match=f"a relative path, looked for in {tmp_path}"):
        load_dataset("my-digits")


@pytest.mark.parametrize("field", ["dataset", "data_dir"])
def test_a_path_that_is_not_utf8_is_one_line_before_anything_is_written(field):
    """config.toml is UTF-8: writing such a path was a traceback (a folder made, nothing in it).
    Reading from such a path writes no config.toml (`evaluate --data-dir`): not refused."""
    import os

    assert TrainConfig(**{field: os.fsdecode(b"/data/mn\xffist")}).dataset

    with pytest.raises(MnistlabError, match=r"^{}: /data/mn\\udcffist holds bytes that are not "
                       r"UTF-8, .*\(ln -s\)$".format(field.replace("_", "-"))):
        TrainConfig(**{field: os.fsdecode(b"/data/mn\xffist")}).to_toml()
    assert TrainConfig(**{field: "/data/données"}).to_toml()  # UTF-8 beyond ASCII is fine


@pytest.mark.parametrize("preset, command", [("study/presets/fashion-hparams.toml", "study"),
                                             ("tune/presets/fashion-mlp.toml", "tune"),
                                             (None, "study")])
def test_a_study_or_search_file_given_as_settings_says_which_command_runs_it(
        preset, command, tmp_path, capsys):
    """`train --config` of a study file said "unknown setting 'name'"."""
    from pathlib import Path

    import mnistlab

    if preset is None:  # a study without [base]: recognised by its experiments
        path = tmp_path / "s.toml"
        path.write_text("[[experiment]]\nname = 'x'\nfactor = 'lr'\nvalues = [0.1]\n")
    else:
        path = Path(mnistlab.__file__).parent / preset
    assert main(["train", "--config", str(path), "--out", str(tmp_path / "r")]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: {path}: a {'study' if command == 'study' else 'search'} file, not one run's "
        f"settings; run it with `mnistlab {command} {path}`, or give its [base] settings as a "
        "file of their own")
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("text, said", [
    ('epochs = "3"', "epochs = '3' is text; write the number without quotes: epochs = 3"),
    ('lr = "1e-3"', "lr = '1e-3' is text; write the number without quotes: lr = 1e-3"),
    ('nesterov = "True"', "nesterov = 'True' is text; write the true or false without quotes: "
                          "nesterov = true"),
    # "yes" and "0" were taken as true and false, where "false" was refused
    ('tta = "yes"', "tta = 'yes' is text; write the true or false without quotes: tta = true"),
    ('shuffle_labels = "0"', "shuffle_labels = '0' is text; write the true or false without "
                             "quotes: shuffle_labels = false"),
    ('hidden = ["32", 16]', 'hidden = ["32", 16] holds text; write the numbers without quotes: '
                            "hidden = [32, 16]")])
def test_a_number_in_quotes_in_a_settings_file_is_refused(text, said, tmp_path, capsys):
    """It was taken as the number, hiding the quoting; flags on the command line stay text."""
    path = tmp_path / "c.toml"
    path.write_text(text + "\n")
    assert main(["train", "--config", str(path), "--out", str(tmp_path / "r")]) == 2
    assert capsys.readouterr().err.strip() == f"error: {path}: {said}"
    from mnistlab.config import tomllib
    from mnistlab.study.spec import parse_study

    with pytest.raises(MnistlabError, match=" text; write the"):
        parse_study(tomllib.loads(f"[base]\n{text}\n[[experiment]]\nname = 'x'\nfactor = "
                                  "'lr'\nvalues = [0.1]\n"))


@pytest.mark.parametrize("value", [["", datetime.date(2000, 1, 1)], ["0\n0"], ["32", math.nan],
                                   ["32", "wide"], ["32", True]])
def test_a_list_with_text_that_is_not_all_numbers_gets_the_type_line(value):
    """Found by the study property test in CI: a date beside text crashed json.dumps, and
    "0\n0" was 'corrected' to a line break inside the one-line error."""
    with pytest.raises(MnistlabError) as caught:
        TrainConfig.from_dict({"hidden": value}, where="c.toml")
    text = str(caught.value)
    assert "\n" not in text and "hidden" in text and "without quotes" not in text


def test_a_settings_file_saved_with_a_byte_order_mark_is_read(tmp_path):
    """Windows Notepad's UTF-8 starts with a BOM; TOML said "Invalid statement (line 1)"."""
    from mnistlab.config import load_config

    path = tmp_path / "c.toml"
    path.write_bytes(b"\xef\xbb\xbfmodel = \"mlp\"\nlr = 0.5\n")
    assert load_config(path).lr == 0.5


@pytest.mark.skipif(__import__("sys").platform != "linux", reason="names of any bytes: Linux's")
def test_train_on_a_path_that_is_not_utf8_makes_no_folder(tmp_path, capsys):
    import os

    data = os.fsdecode(os.fsencode(tmp_path) + b"/mn\xffist")
    os.mkdir(data)
    assert main(["train", "--dataset", data, "--out", str(tmp_path / "r")]) == 2
    assert "holds bytes that are not UTF-8" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_flip_is_refused_for_mnist_given_by_its_path(shared_datasets, tmp_path):
    """The check named the dataset setting only: MNIST given by its folder's path flipped
    digits (hunt). Its checksums name it MNIST, and the refusal is the same."""
    from mnistlab import train

    config = TrainConfig(dataset=str(shared_datasets / "mnist"), model="mlp", hidden=(8,),
                         epochs=1, augment="flip=0.5", train_subset=500, val_size=100)
    with pytest.raises(MnistlabError, match="augment: flip is refused for mnist: a mirrored"):
        train(config, out=tmp_path / "r")
    assert train(config.replace(augment=""), out=tmp_path / "r").summary.dataset == "mnist"
    # a run an earlier version trained so is still scored (evaluate prepares the same data)
    from mnistlab.data.tensors import prepare_data

    assert prepare_data(config).published


def test_a_numpy_array_of_layers_and_a_misspelt_replace_are_read_as_files_read_them():
    """hidden=np.array([64, 32]) was numpy's "can only convert an array of size 1", and
    .replace(learning_rate=0.1) dataclasses' TypeError without the hint files get."""
    import numpy as np

    assert TrainConfig(hidden=np.array([64, 32])).hidden == (64, 32)
    assert TrainConfig().replace(**{"batch-size": 64}).batch_size == 64  # as files spell it
    with pytest.raises(MnistlabError, match=r"replace: unknown setting 'learning_rate' "
                                            r"\(did you mean lr\?\)"):
        TrainConfig().replace(learning_rate=0.1)


@pytest.mark.parametrize("make,message", [
    (lambda: StudyOptions(quick="false"), "quick: must be True or False, got 'false'"),
    (lambda: StudyOptions(cohorts="no"), "cohorts: must be True or False, got 'no'"),
    (lambda: StudyOptions(placement={"backend": "ray"}), "placement: give mnistlab.raycluster"),
    (lambda: StudyOptions(data_dir=3), "data_dir: must be text, got 3"),
    (lambda: TuneOptions(report="no"), "report: must be True or False, got 'no'"),
    (lambda: TuneOptions(quick=2), "quick: must be True or False, got 2"),
    (lambda: TuneOptions(study_name=3), "study_name: must be text, got 3"),
    (lambda: TuneOptions(storage=Path("x.db")), "storage:"),  # a path: the URL's own check
])
def test_options_given_from_python_are_of_their_kind(make, message):
    """A text is true to Python: StudyOptions(quick="false") ran the quick form and
    TuneOptions(report="no") retrained and wrote the report; study_name=3 or a placement
    given as a dict failed later as AttributeErrors."""
    with pytest.raises(MnistlabError, match=re.escape(message)):
        make()
    import numpy as np

    assert StudyOptions(quick=np.bool_(True)).quick is True
    assert TuneOptions(report=0).report is False  # 0 and 1 are taken (review)
    assert StudyOptions(data_dir=Path("/x")).data_dir == "/x"


def test_numpy_whole_numbers_are_taken_as_python_s():
    """StudyOptions(seeds=np.int64(2)) was "must be a whole number >= 1, got np.int64(2)",
    and TuneOptions(retrain_seeds=np.int64(0)) "must be ... from 0 to 1,000, got 0" (hunt)."""
    import numpy as np

    study = StudyOptions(seeds=np.int64(2), workers=np.int32(1))
    tune = TuneOptions(trials=np.int64(3), seed=np.int64(3), retrain_seeds=np.int64(0))
    assert (study.seeds, study.workers, tune.trials, tune.seed, tune.retrain_seeds) == (
        2, 1, 3, 3, 0)
    assert type(study.seeds) is int and type(tune.retrain_seeds) is int
    with pytest.raises(MnistlabError, match=r"got 5000$"):
        TuneOptions(retrain_seeds=np.int64(5000))
    with pytest.raises(MnistlabError, match=r"got np\.float64\(2\.0\)|got 2\.0"):
        StudyOptions(seeds=np.float64(2.0))  # a float is no whole number, numpy's or not
    # a TrainConfig keeps a float32's float64, as it always has: its runs are named by it
    assert TrainConfig(lr=np.float32(0.003)).lr == float(np.float32(0.003))


def test_a_study_or_space_built_in_python_takes_numpy_numbers_tuples_and_paths():
    """Built in a notebook: np.float32 values were taken, then "Object of type float32 is not
    JSON serializable" when the study folder was made, "not TOML serializable" in a search's
    [compare]; np.int64 seeds and space bounds, tuples and paths were refused (hunt)."""
    import numpy as np

    from mnistlab.study import parse_study
    from mnistlab.tune import parse_space

    base = {"model": "mlp", "hidden": (16,), "data_dir": Path("/data")}
    spec = parse_study({"seeds": np.int64(2), "base": base, "experiment": [
        {"name": "lr", "factor": "lr", "values": (np.float32(0.01), 0.1)}],
        "final": {"choose": "explicit", "settings": {"batch_size": np.int64(32)}},
        "quick": {"max_epochs": np.int64(1)}})
    assert spec.seeds == 2 and spec.base.data_dir == "/data"
    assert [v.changes for v in spec.experiments[0].variants] == [{"lr": 0.01}, {"lr": 0.1}]
    assert json.dumps(spec.final.settings) == '{"batch_size": 32}'
    space = parse_space({"base": base, "space": {
        "lr": {"type": "float", "low": np.float32(0.001), "high": 0.1, "log": np.bool_(True)},
        "hidden": {"type": "categorical", "choices": [(16,), (32, 16)]}},
        "compare": {"settings": {"lr": np.float32(0.01)}}})
    assert space.params[0].low == 0.001 and space.params[0].log is True
    assert space.compare.settings == {"lr": 0.01}
    with pytest.raises(MnistlabError, match="a search space is a table of keys"):
        parse_space([("base", {})])
    # float32 arrays as written too, one by one (review); a key that is not text is one line
    values = np.array([0.01, 0.1], dtype=np.float32)
    spec = parse_study({"base": base, "experiment": [
        {"name": "lr", "factor": "lr", "values": values}]})
    assert [v.changes for v in spec.experiments[0].variants] == [{"lr": 0.01}, {"lr": 0.1}]
    with pytest.raises(MnistlabError, match=r"^study.base: key 1 \(int\) is not text; keys are "
                                            r"names"):
        parse_study({"base": {1: 2}})
    with pytest.raises(MnistlabError, match=r"study.experiment.original: key 0.01 \(float\)"):
        parse_study({"base": base, "experiment": [{"name": "lr", "factor": "lr", "values": [
            0.01, 0.1], "original": {0.01: {"val": 80.0}}}]})
