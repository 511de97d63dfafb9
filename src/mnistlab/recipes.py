"""Named recipes: tuned settings to start from (`mnistlab train --recipe NAME`).

A recipe fills in settings the way a --config file does; --config and flags given beside it
still win (`--recipe mnist-fast --epochs 3`). Each recipe says what it was tuned for and what it
reached; the figures come from benchmarks/time_to_accuracy.py (see BENCHMARKS.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import MnistlabError


@dataclass(frozen=True)
class Recipe:
    name: str
    goal: str
    settings: dict[str, Any]


# A small 3-block conv net trained for a short one-cycle run: batch norm and one-cycle let a
# high learning rate work from the first step; label smoothing keeps the last epoch from
# over-fitting; a large batch keeps per-step overhead low on a CPU.
RECIPES: dict[str, Recipe] = {r.name: r for r in (
    Recipe("mnist-fast", "MNIST: 99.0% test accuracy in the shortest training time on a CPU",
           dict(dataset="mnist", model="cnn", filters=[16, 32, 64], dense=[128], batchnorm=True,
                dropout=0.0, optimizer="adam", lr=0.01, schedule="onecycle",
                label_smoothing=0.1, batch_size=256, epochs=1, eval_train_size=2000)),
    Recipe("mnist-best", "MNIST: 99.5% test accuracy within a minute of training on a CPU",
           dict(dataset="mnist", model="cnn", filters=[16, 32, 64], dense=[128],
                batchnorm=True, dropout=0.1, optimizer="adam", lr=0.01, schedule="onecycle",
                label_smoothing=0.1, augment="rotate=8,scale=0.08,shift=0.08", batch_size=256,
                epochs=6, eval_train_size=2000)),
)}


def get_recipe(name: str) -> Recipe:
    try:
        return RECIPES[name]
    except KeyError:
        raise MnistlabError(f"recipe: unknown name {name!r}; known recipes: "
                            f"{', '.join(sorted(RECIPES))} (see --recipe list)") from None
