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
