"""Recipes: each is a valid configuration, says what it was tuned for and what it measured, and
takes flags on top (an ensemble of a recipe is one flag away)."""

import pytest

from mnistlab import TrainConfig
from mnistlab.cli import main
from mnistlab.models import estimate_size
from mnistlab.recipes import RECIPES, get_recipe


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_each_recipe_is_a_configuration_with_its_goal_and_figure(name):
    recipe = get_recipe(name)
    config = TrainConfig.from_dict(recipe.settings)
    assert estimate_size(config).parameters > 0
    assert recipe.goal and recipe.measured and "MEASURED" not in recipe.measured
    ensemble = TrainConfig.from_dict({**recipe.settings, "ensemble": 3})
    assert estimate_size(ensemble).parameters == 3 * estimate_size(config).parameters


def test_the_list_shows_every_recipe_with_its_figure(capsys):
    assert main(["train", "--recipe", "list"]) == 0
    out = capsys.readouterr().out
    assert "measured" in out
    for recipe in RECIPES.values():
        assert recipe.name in out


def test_a_setting_the_recipe_gave_is_named_as_the_recipe_s(tmp_path, capsys):
    """`--recipe fashion-best --dataset mnist`: the flip that is wrong for digits came from
    the recipe, and the message says so, and which flag changes it."""
    from mnistlab.cli import main

    assert main(["train", "--recipe", "fashion-best", "--dataset", "mnist",
                 "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "flip is refused for mnist" in err
    assert "comes from --recipe fashion-best: give --augment to change it" in err
    # the user's own bad value is the user's: no word of the recipe
    assert main(["train", "--recipe", "fashion-best", "--dataset", "mnist", "--augment",
                 "flip=0.5", "--out", str(tmp_path / "r")]) == 2
    assert "--recipe" not in capsys.readouterr().err


def test_a_recipe_s_setting_the_data_refuses_is_named_as_the_recipe_s(tmp_path, capsys):
    """The recipe's val-size of 2,000 refused for a dataset of 1,500 training images read as
    the user's (the data refuses it after the settings are read); so did the warning about
    its train-subset. A value the user gave is still theirs."""
    import sys
    import warnings

    from conftest import make_dataset_folder

    from mnistlab.cli import main

    data = make_dataset_folder(tmp_path / "small", 1500, 100)
    assert main(["train", "--recipe", "fashion-best", "--dataset", str(data), "--out",
                 str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "val-size: 2,000 is out of range" in err
    assert err.endswith("(--val-size 2000 comes from --recipe fashion-best: give --val-size "
                        "to change it)"), err
    assert main(["train", "--recipe", "fashion-best", "--dataset", str(data), "--val-size",
                 "1500", "--out", str(tmp_path / "r")]) == 2
    assert "--recipe" not in capsys.readouterr().err
    (tmp_path / "c.toml").write_text("val_size = 2000\n")  # the file's own, as the recipe's
    assert main(["train", "--recipe", "fashion-best", "--config", str(tmp_path / "c.toml"),
                 "--dataset", str(data), "--out", str(tmp_path / "r")]) == 2
    assert "--recipe" not in capsys.readouterr().err
    with warnings.catch_warnings():  # shown as outside pytest, which only records them
        warnings.simplefilter("always")
        warnings.showwarning = lambda message, category, name, number, *_: sys.stderr.write(
            warnings.formatwarning(message, category, name, number))
        assert main(["train", "--recipe", "mnist-fast", "--dataset", str(data), "--val-size",
                     "300", "--eval-train-size", "100", "--out", str(tmp_path / "f"),
                     "--quiet"]) == 0
    [warning] = [line for line in capsys.readouterr().err.splitlines() if "train-subset" in line]
    assert warning.endswith("(--train-subset 40000 comes from --recipe mnist-fast: give "
                            "--train-subset to change it)"), warning


def test_names_close_to_a_recipe_or_preset_say_which_was_meant(capsys):
    """A typo got the list of names alone; a study's preset given to tune, "unknown" (hunt)."""
    from mnistlab.cli import main

    for argv, said in ((["train", "--recipe", "mnist-fats"], "(did you mean mnist-fast?)"),
                       (["study", "lenet-challange"], "(did you mean lenet-challenge?)"),
                       (["study", "fashion-mlp"], "(it is a preset of `mnistlab tune`: run "
                                                  "`mnistlab tune fashion-mlp`)"),
                       # the other command's near name, not a far one of ours (review)
                       (["study", "fashion-mpl"], "(did you mean `mnistlab tune fashion-mlp`?)"),
                       (["train", "--recipe", "MNIST-FAST"], "(did you mean mnist-fast?)")):
        assert main(argv) == 2
        assert said in capsys.readouterr().err


def test_a_recipe_on_another_dataset_says_its_figures_do_not_apply(tmp_path, capsys,
                                                                    shared_datasets):
    """`--recipe mnist-fast --dataset fashion-mnist` trained without a word of the recipe
    being MNIST's (hunt): one warning line, and the run trains."""
    from mnistlab.cli import main

    assert main(["train", "--recipe", "mnist-fast", "--dataset", "fashion-mnist",
                 "--data-dir", str(shared_datasets), "--train-subset", "500", "--val-size",
                 "100", "--quiet", "--out", str(tmp_path / "r")]) == 0
    assert ("warning: --recipe mnist-fast was tuned and measured on mnist; on fashion-mnist its "
            "settings are a starting point" in " ".join(capsys.readouterr().err.split()))
    # a copy of MNIST in a folder of any name is MNIST: no word (review)
    import shutil

    copy = shutil.copytree(shared_datasets / "mnist", tmp_path / "digits")
    assert main(["train", "--recipe", "mnist-fast", "--dataset", str(copy), "--train-subset",
                 "500", "--val-size", "100", "--quiet", "--out", str(tmp_path / "c")]) == 0
    assert "tuned and measured" not in capsys.readouterr().err
