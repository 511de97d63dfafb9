"""The GPU check of issue 16: five figures in under 5 minutes on one GPU.

    MNISTLAB_DATA=../shared/datasets python benchmarks/gpu_check.py            # on the GPU box
    MNISTLAB_DATA=../shared/datasets python benchmarks/gpu_check.py --smoke    # a minute, any CPU

Prints, one line each, on the device `--device` picks (auto: the GPU when there is one):

1. mnist-fast: training time and test accuracy of the recipe (`--recipe mnist-fast`), and
   whether it reached 99%; run twice, the first run's time (device start) shown beside;
2. fashion-hparams: the wall time of the whole study (plan, every run, the final model; one
   seed, no report), how many runs it trained, its longest run's training time and the sum of
   every run's (a cohort's members each count their share of its time);
3. fashion-best: `--recipe fashion-best`, one seed: its time and test accuracy;
4. cohort against one-by-one: COHORT_SIZE small MLPs differing in learning rate and seed,
   trained in one cohort and then one after another on the same data: both times;
5. ensemble in lockstep against one-by-one: ENSEMBLE_SIZE mnist-fast members as one
   `--ensemble` run, then as single runs: both training times, the ensemble's accuracy and
   its members' mean (on a CPU the lockstep saves little: see BENCHMARKS.md).

`--smoke` shrinks everything to a tiny subset (a few hundred images to train on and score, one
or two epochs, small networks, no test-time augmentation) so the script itself can be tested on
a CPU; its figures mean nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from typing import Any

import torch
from _cli import at_least, run_main  # benchmarks/ is the script's folder, so on sys.path
from time_to_accuracy import speedup

from mnistlab import TrainConfig, train
from mnistlab.data import Dataset, load_dataset
from mnistlab.data.tensors import prepare_data
from mnistlab.device import resolve_device
from mnistlab.errors import MnistlabError
from mnistlab.recipes import get_recipe
from mnistlab.study import load_study, train_study
from mnistlab.study.backends import LocalBackend
from mnistlab.training import train_cohort

CHECKS = ("mnist-fast", "study", "fashion-best", "cohort", "ensemble")
COHORT_SIZE = 8
ENSEMBLE_SIZE = 4
COHORT_BASE = dict(dataset="fashion-mnist", model="mlp", hidden=[128, 64], optimizer="adam",
                   schedule="constant", batch_size=100, epochs=3)
# --smoke: the same code paths on a few hundred images
SMOKE = dict(train_subset=600, val_size=300, eval_train_size=300)
SMOKE_STUDY = dict(SMOKE, max_epochs=2)
# --smoke scores this many test images: the full 10,000 (18 views of them under fashion-best's
# TTA) took much of the smoke form's minutes
SMOKE_TEST = 500


def smoke_sized(data: Dataset) -> Dataset:
    """`data` with the first SMOKE_TEST test images only (roughly every class in each set)."""
    return dataclasses.replace(data, test_images=data.test_images[:SMOKE_TEST],
                               test_labels=data.test_labels[:SMOKE_TEST])


def check_mnist_fast(data: Any, extra: dict[str, Any]) -> str:
    """Twice: the first run pays for starting the device (CUDA context, kernel choice)."""
    config = TrainConfig.from_dict({**get_recipe("mnist-fast").settings, **extra})
    cold, warm = (train(config, dataset=data, write_plots=False).summary for _ in range(2))
    reached = "reached" if warm.test_accuracy >= 0.99 else "NOT reached"
    return (f"mnist-fast: {warm.seconds:.2f} s of training ({cold.seconds:.2f} s in the first "
            f"run, device start included), test accuracy {warm.test_accuracy:.4f} "
            f"(99% {reached}; single run)")


def check_fashion_study(smoke: bool, device: str, workers: int | None) -> str:
    spec = load_study("fashion-hparams")
    if smoke:
        spec = dataclasses.replace(spec, quick=SMOKE_STUDY).with_quick()
    spec = dataclasses.replace(spec, seeds=1, base=spec.base.placed(device=device))
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        result = train_study(spec, out, backend=LocalBackend(workers=workers))
        wall = time.perf_counter() - start
    # where the wall time goes: against the longest single run (the final model) and the sum
    # of every run's training time (a cohort member counts its share of the cohort's)
    labels = {key: label for key, label, _ in result.trained_runs()}
    seconds = {key: result.summaries[key].seconds or 0.0 for key in labels}
    longest = max(seconds, key=seconds.__getitem__)
    return (f"fashion-hparams study (1 seed{', smoke' if smoke else ''}): wall {wall:.1f} s, "
            f"{len(result.summaries)} runs trained; longest run {labels[longest]}, "
            f"{seconds[longest]:.1f} s, all runs' training {sum(seconds.values()):.1f} s")


def check_fashion_best(data: Any, extra: dict[str, Any], smoke: bool) -> str:
    settings = {**get_recipe("fashion-best").settings, **extra}
    if smoke:
        settings.update(filters=[8, 16], dense=[16], epochs=1, tta=False)
    summary = train(TrainConfig.from_dict(settings), dataset=data, write_plots=False).summary
    reached = "reached" if summary.test_accuracy >= 0.94 else "NOT reached"
    return (f"fashion-best: {summary.seconds:.1f} s of training, test accuracy "
            f"{summary.test_accuracy:.4f} (94% {reached}; single run)")


def check_cohort(data: Any, extra: dict[str, Any], smoke: bool) -> str:
    base = TrainConfig.from_dict({**COHORT_BASE, **extra, **({"epochs": 1} if smoke else {})})
    configs = [base.replace(lr=0.0005 * (1 + i % 4), seed=i) for i in range(COHORT_SIZE)]
    splits = prepare_data(base, data, resolve_device(base.device))
    start = time.perf_counter()
    train_cohort(configs, splits=splits, outs=[None] * len(configs),
                 tests=[False] * len(configs))
    together = time.perf_counter() - start
    start = time.perf_counter()
    for config in configs:
        train(config, splits=splits, evaluate_test=False, write_plots=False)
    alone = time.perf_counter() - start
    return (f"cohort of {COHORT_SIZE} MLPs: {together:.1f} s; one by one: {alone:.1f} s "
            f"({speedup(alone, together, 'together')})")


def check_ensemble(data: Any, extra: dict[str, Any]) -> str:
    config = TrainConfig.from_dict({**get_recipe("mnist-fast").settings, **extra})
    fused = train(config.replace(ensemble=ENSEMBLE_SIZE), dataset=data, write_plots=False)
    alone = sum(train(config.replace(seed=config.seed + m), dataset=data,
                      write_plots=False).summary.seconds for m in range(ENSEMBLE_SIZE))
    members = [m["test_accuracy"] for m in fused.summary.members]
    return (f"ensemble of {ENSEMBLE_SIZE} mnist-fast: {fused.summary.seconds:.1f} s in "
            f"lockstep; one by one: {alone:.1f} s ({fused.summary.seconds / alone:.2f}x their "
            "cost); test "
            f"accuracy {fused.summary.test_accuracy:.4f}, members' mean "
            f"{sum(members) / len(members):.4f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true",
                        help="a tiny subset, a minute on a CPU: checks the script, not the GPU "
                        "(default: off)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"),
                        help="where to train (default: auto)")
    parser.add_argument("--workers", type=at_least(1), default=None,
                        help="study worker processes (default: one per CPU core, one on a GPU; "
                        "a number shares the GPU between that many)")
    parser.add_argument("--checks", nargs="+", metavar="NAME", help="only these checks: "
                        f"{', '.join(CHECKS)} (default: all, in that order)", choices=CHECKS)
    args = parser.parse_args(argv)
    try:
        device = resolve_device(args.device)
    except MnistlabError as error:  # --device cuda without one: a line, not a traceback
        parser.exit(2, f"gpu_check: {error}\n")
    if device.type == "cpu" and not args.smoke:
        print("note: no GPU here, so the full checks run on the CPU (many minutes); --smoke "
              "checks the script in seconds", file=sys.stderr, flush=True)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else (
        platform.processor() or platform.machine())
    print(f"device: {device.type} ({name}), torch {torch.__version__}", flush=True)
    extra: dict[str, Any] = {"device": args.device, **(SMOKE if args.smoke else {})}
    started = time.perf_counter()
    mnist, fashion = load_dataset("mnist"), load_dataset("fashion-mnist")
    if args.smoke:
        mnist, fashion = smoke_sized(mnist), smoke_sized(fashion)
    checks: dict[str, Callable[[], str]] = {
        "mnist-fast": lambda: check_mnist_fast(mnist, extra),
        "study": lambda: check_fashion_study(args.smoke, args.device, args.workers),
        "fashion-best": lambda: check_fashion_best(fashion, extra, args.smoke),
        "cohort": lambda: check_cohort(fashion, extra, args.smoke),
        "ensemble": lambda: check_ensemble(mnist, extra)}
    failed = 0
    for name in args.checks or checks:  # device time is scarce: a failing check costs no other
        check = checks[name]
        try:
            print(check(), flush=True)
        except MnistlabError as error:  # a mistake to fix, said as the package says it
            failed += 1
            print(f"FAILED: {error}", flush=True)
        except Exception as error:  # noqa: BLE001 - reported, counted, and the exit code says so
            failed += 1
            print(f"FAILED: {type(error).__name__}: {error}", flush=True)
            traceback.print_exc()
    print(f"total: {time.perf_counter() - started:.1f} s", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    run_main(main)
