"""What training the first convolution and its batch norm as one convolution saves (stem.py).

    MNISTLAB_DATA=../shared/datasets python benchmarks/stem_fusion.py [--steps 30] [--rounds 3]

For each recipe: the recipe's model, optimizer and augmentation-free batch of real images, one
full training step (forward, loss, backward, optimizer, EMA where the recipe keeps one) timed two
ways side by side in one process, alternating in rounds: the first block as `FusedStem` runs it
(one convolution), and as a plain nn.Sequential (convolution, then batch norm). Printed: median
ms per step of each and their ratio, and each way's largest error in the first block's output
on that batch against the same block computed in float64.
"""

from __future__ import annotations

import argparse
import copy
import math
import platform
import statistics
import time

import torch
from _cli import at_least, run_main  # benchmarks/ is the script's folder, so on sys.path
from torch import nn

from mnistlab.allocator import keep_freed_memory
from mnistlab.config import TrainConfig
from mnistlab.data import load_dataset
from mnistlab.data.tensors import prepare_data, to_input
from mnistlab.optim import build_optimizer, build_schedule
from mnistlab.recipes import RECIPES
from mnistlab.stem import FusedStem
from mnistlab.training.ema import WeightAverage
from mnistlab.training.graphs import GraphedStep
from mnistlab.training.single import ModelLearner


def unfused(module: nn.Module) -> nn.Module:
    """A copy of `module` whose FusedStems are plain nn.Sequentials (same layers, same weights)."""
    copied = copy.deepcopy(module)
    for layer in copied.modules():
        if isinstance(layer, FusedStem):
            layer.__class__ = nn.Sequential
    return copied


def learners(config: TrainConfig, splits) -> tuple[ModelLearner, ModelLearner]:
    """The recipe's learner, and a second one around an unfused copy of its model. Everything
    the learner built around its own model is built again around the copy: the optimizer, the
    weight average, and the step that zeroes the gradients (left wrapping the discarded model,
    it zeroed that one, and the plain side's gradients piled up step after step) and the
    schedule (without it the plain side stepped at 25 times one-cycle's starting rate)."""
    fused = ModelLearner(config, splits, torch.device("cpu"))
    plain = ModelLearner(config, splits, torch.device("cpu"))
    plain.model = unfused(fused.model)
    plain.optimizer = build_optimizer(config, plain.model)
    # the schedule sets the starting learning rate (one-cycle's is lr / 25), stepped or not
    steps = math.ceil(len(splits.train_y) / config.batch_size) * config.epochs
    plain.scheduler = build_schedule(config, plain.optimizer, steps)
    plain.average = WeightAverage(plain.model, config.ema) if config.ema else None
    plain.graphed = GraphedStep(plain.model, enabled=False)  # on the CPU: eager either way
    for learner in (fused, plain):
        learner.constant_lr = True  # the schedule's step is the same either way; skip it
    return fused, plain


def stem_errors(model: nn.Module, x: torch.Tensor) -> tuple[float, float]:
    """Largest absolute error of the first block's output (convolution, batch norm in training,
    max-pooling) against float64, computed fused and as convolution + batch norm."""
    stem = next(m for m in model.modules() if isinstance(m, FusedStem))
    layers = list(stem)[:3]
    with torch.no_grad():
        return _errors(layers, x)


def _errors(layers: list[nn.Module], x: torch.Tensor) -> tuple[float, float]:
    reference = nn.Sequential(*copy.deepcopy(layers)).double().train()(x.double())
    fused = FusedStem(*copy.deepcopy(layers)).train()(x)
    plain = nn.Sequential(*copy.deepcopy(layers)).train()(x)
    return (float((fused.double() - reference).abs().max()),
            float((plain.double() - reference).abs().max()))


def median_ms(learner: ModelLearner, x: torch.Tensor, y: torch.Tensor, steps: int) -> float:
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        learner.step(x, y)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", nargs="*", default=sorted(RECIPES), choices=sorted(RECIPES),
                        metavar="NAME", help="recipes to time: "
                        f"{', '.join(sorted(RECIPES))} (default: all of them)")
    parser.add_argument("--steps", type=at_least(1), default=30,
                        help="timed steps per round (default: 30)")
    parser.add_argument("--rounds", type=at_least(1), default=3, help="alternations (default: 3)")
    args = parser.parse_args()
    keep_freed_memory()
    print(f"machine: {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} torch threads, torch {torch.__version__}")
    for name in args.recipes:
        config = TrainConfig.from_dict(RECIPES[name].settings)
        splits = prepare_data(config, load_dataset(config.dataset), torch.device("cpu"))
        x = to_input(splits.train_x[:config.batch_size], config, splits.mean, splits.std)
        y = splits.train_y[:config.batch_size]
        fused, plain = learners(config, splits)
        errors = stem_errors(fused.model, x)
        for learner in (fused, plain):
            median_ms(learner, x, y, 5)  # warm-up
        times: dict[str, list[float]] = {"fused": [], "plain": []}
        for _ in range(args.rounds):
            times["fused"].append(median_ms(fused, x, y, args.steps))
            times["plain"].append(median_ms(plain, x, y, args.steps))
        f, p = statistics.median(times["fused"]), statistics.median(times["plain"])
        print(f"{name} (batch {config.batch_size}, stem {config.filters[0]} channels): "
              f"fused {f:.1f} ms/step, conv + batch norm {p:.1f} ms/step, ratio {f / p:.2f}; "
              f"first block's largest error against float64: fused {errors[0]:.1e}, "
              f"conv + batch norm {errors[1]:.1e}", flush=True)
    return 0


if __name__ == "__main__":
    run_main(main)
