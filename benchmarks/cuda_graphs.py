"""CUDA graphs of the training step (training/graphs.py) against eager steps, side by side.

    MNISTLAB_DATA=../shared/datasets python benchmarks/cuda_graphs.py    # on a GPU machine

For three steps the package takes on a GPU, each eagerly and graphed (training/graphs.py), in
alternating rounds: milliseconds per step, kernel launches per step (torch.profiler), and the
ratio. Then `train()` of the mnist-fast recipe both ways: training seconds and test accuracy.

- mnist-fast: the recipe's conv net (bf16 where the GPU has it), batch 128;
- fashion final: the fashion-hparams study's final model (MLP 128-64, Adam, dropout 0.2,
  batch 32), its longest run;
- fashion cohort: three MLPs of the study's learning-rate factor in one cohort (SGD, batch 100).

Without a CUDA GPU it says so and exits: graphs apply on CUDA only.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import torch
from _cli import at_least, run_main  # benchmarks/ is the script's folder, so on sys.path
from torch.profiler import ProfilerActivity, profile

from mnistlab import TrainConfig, train
from mnistlab.data import load_dataset
from mnistlab.data.tensors import Splits, prepare_data
from mnistlab.recipes import get_recipe
from mnistlab.training import engine, graphs
from mnistlab.training.cohort import CohortLearner
from mnistlab.training.single import ModelLearner

FINAL = dict(dataset="fashion-mnist", model="mlp", hidden=[128, 64], dropout=0.2,
             optimizer="adam", lr=0.001, schedule="constant", batch_size=32, epochs=30)
COHORT = dict(FINAL, optimizer="sgd", batch_size=100, epochs=10)
LAUNCHES = ("cudaLaunchKernel", "cuLaunchKernel", "cudaLaunchKernelExC", "cudaGraphLaunch",
            "cuLaunchKernelEx", "cudaMemcpyAsync", "cudaMemsetAsync")


def stepper(learner: Any, splits: Splits, config: TrainConfig) -> Callable[[int], None]:
    """`run(n)`: n training steps as the engine takes them (its batches, then the step)."""
    def epochs() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        while True:
            order = torch.randperm(len(splits.train_y), device=splits.train_y.device)
            yield from engine.batches(splits, config, order, learner.input_copies)

    stream = epochs()

    def run(n: int) -> None:
        for _ in range(n):
            learner.step(*next(stream))
    return run


def launches_per_step(run: Callable[[int], None], steps: int = 10) -> float:
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        run(steps)
        torch.cuda.synchronize()
    return sum(e.count for e in prof.key_averages() if e.key in LAUNCHES) / steps


def compare(name: str, make: Callable[[], Any], splits: Splits, config: TrainConfig,
            steps: int, rounds: int) -> None:
    runs = {}
    for enabled in (False, True):
        learner = make()
        learner.graphed.enabled = enabled
        runs[enabled] = stepper(learner, splits, config)
        runs[enabled](20)  # warm-up: cuDNN's choices, the graphs' recording
    times: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(rounds):
        for enabled in (False, True):
            torch.cuda.synchronize()
            start = time.perf_counter()
            runs[enabled](steps)
            torch.cuda.synchronize()
            times[enabled].append((time.perf_counter() - start) / steps * 1000)
    eager, graphed = min(times[False]), min(times[True])
    print(f"{name}: eager {eager:.3f} ms/step ({launches_per_step(runs[False]):.0f} launches), "
          f"graphed {graphed:.3f} ms/step ({launches_per_step(runs[True]):.0f} launches): "
          f"{graphed / eager:.2f}x (best of {rounds} rounds of {steps} steps)", flush=True)


def whole_runs(data: Any) -> None:
    config = TrainConfig.from_dict({**get_recipe("mnist-fast").settings, "device": "cuda"})
    train(config, dataset=data, write_plots=False)  # device start, kernel choices
    for setting in ("0", "1", "0", "1"):
        os.environ[graphs.ENV] = setting
        summary = train(config, dataset=data, write_plots=False).summary
        print(f"mnist-fast train(), graphs {'on ' if setting == '1' else 'off'}: "
              f"{summary.seconds:.2f} s of training, test {summary.test_accuracy:.4f}",
              flush=True)
    os.environ.pop(graphs.ENV)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=at_least(1), default=200,
                        help="steps per timed round (default: 200)")
    parser.add_argument("--rounds", type=at_least(1), default=3,
                        help="alternating rounds per step (default: 3)")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("no CUDA GPU here: graphs apply on CUDA only")
        return 0
    device = torch.device("cuda")
    print(f"device: {torch.cuda.get_device_name(device)}, torch {torch.__version__}")
    mnist, fashion = load_dataset("mnist"), load_dataset("fashion-mnist")
    # the recipe over more epochs: its one-cycle schedule must outlast the timed steps
    fast = TrainConfig.from_dict({**get_recipe("mnist-fast").settings, "epochs": 50,
                                  "device": "cuda"})
    splits = prepare_data(fast, mnist, device)
    compare("mnist-fast", lambda: ModelLearner(fast, splits, device), splits, fast,
            args.steps, args.rounds)
    final = TrainConfig.from_dict({**FINAL, "device": "cuda"})
    splits = prepare_data(final, fashion, device)
    compare("fashion final", lambda: ModelLearner(final, splits, device), splits, final,
            args.steps, args.rounds)
    cohort = [TrainConfig.from_dict({**COHORT, "device": "cuda", "lr": lr})
              for lr in (0.0001, 0.001, 0.01)]
    compare("fashion cohort of 3", lambda: CohortLearner(cohort, splits, device), splits,
            cohort[0], args.steps, args.rounds)
    whole_runs(mnist)
    return 0


if __name__ == "__main__":
    run_main(main)
