"""Batches gathered and scaled in chunks (training/engine.py `batches`) against batch by batch.

    MNISTLAB_DATA=../shared/datasets python benchmarks/batch_chunks.py [--epochs 3 --rounds 3]

Whole `train()` runs of the same settings, alternating the two ways in one process: chunks of
`engine.CHUNK_IMAGES` images (now), and chunks of one batch, which is each step gathering its
own images and labels and scaling them (before). Prints each way's training seconds (steps
only; the best of the rounds), their ratio, and whether the runs' histories are identical (they
must be: only where the work is done changes). The runs:

- fashion final: the fashion-hparams study's final model, its longest run (MLP 128-64, Adam,
  dropout 0.2, batch 32);
- fashion base: the study's base (SGD, batch 100);
- fashion cohort of 5: five of the study's base variants in lockstep (learning rates, dropouts);
- mnist-fast: the recipe's conv net (batch 128; bf16 where the machine has it natively).

On a CPU the MLPs train on one thread, as each worker of a study does (`--threads`). On a GPU
(automatic) the same runs are timed there; kernel launches are counted by cuda_graphs.py.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import torch
from _cli import at_least, run_main  # benchmarks/ is the script's folder, so on sys.path

from mnistlab import TrainConfig, train
from mnistlab.data import load_dataset
from mnistlab.data.tensors import prepare_data
from mnistlab.device import resolve_device
from mnistlab.recipes import get_recipe
from mnistlab.training import cohort, engine

FINAL = dict(dataset="fashion-mnist", model="mlp", hidden=[128, 64], dropout=0.2,
             optimizer="adam", lr=0.001, schedule="constant", batch_size=32)
BASE = dict(FINAL, optimizer="sgd", batch_size=100)
VARIANTS = [dict(lr=0.0001), dict(lr=0.01), dict(dropout=0.0), dict(dropout=0.4),
            dict(dropout=0.6)]


def timed(run: Callable[[], list[Any]]) -> tuple[float, list[Any]]:
    """(training seconds of the run, their histories without times). A cohort's members each
    record their share of its time: together, they are the cohort's."""
    results = run()
    seconds = sum(r.summary.seconds for r in results)
    return seconds, [[e.replace(seconds=0) for e in r.history] for r in results]


def compare(name: str, run: Callable[[], list[Any]], rounds: int) -> None:
    default = engine.CHUNK_IMAGES
    times: dict[str, list[float]] = {"batch": [], "chunk": []}
    histories: dict[str, list[Any]] = {}
    try:
        for _ in range(rounds):
            for way, images in (("batch", 1), ("chunk", default)):
                engine.CHUNK_IMAGES = images  # 1 image: a chunk of one batch
                seconds, histories[way] = timed(run)
                times[way].append(seconds)
    finally:
        engine.CHUNK_IMAGES = default
    before, after = min(times["batch"]), min(times["chunk"])
    same = "identical" if histories["batch"] == histories["chunk"] else "DIFFERENT"
    print(f"{name}: batch by batch {before:.2f} s, in chunks {after:.2f} s: "
          f"{after / before:.2f}x (best of {rounds}; all rounds: "
          f"{', '.join(f'{t:.2f}' for t in times['batch'])} / "
          f"{', '.join(f'{t:.2f}' for t in times['chunk'])}); histories {same}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=at_least(1), default=3,
                        help="epochs per MLP run (default: 3)")
    parser.add_argument("--rounds", type=at_least(1), default=3,
                        help="alternating rounds (default: 3)")
    parser.add_argument("--threads", type=at_least(1), default=1,
                        help="torch threads on a CPU (default: 1, as a study's worker)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = resolve_device("auto")
    print(f"device: {device}, torch {torch.__version__}, {torch.get_num_threads()} thread(s), "
          f"chunks of {engine.CHUNK_IMAGES} images", flush=True)
    fashion, mnist = load_dataset("fashion-mnist"), load_dataset("mnist")
    final = TrainConfig.from_dict({**FINAL, "epochs": args.epochs})
    base = TrainConfig.from_dict({**BASE, "epochs": args.epochs})
    members = [base.replace(**v) for v in VARIANTS]
    fast = TrainConfig.from_dict(get_recipe("mnist-fast").settings)
    train(fast, dataset=mnist, write_plots=False)  # first-run costs (kernel choices) stay out
    compare("fashion final", lambda: [train(final, dataset=fashion)], args.rounds)
    compare("fashion base", lambda: [train(base, dataset=fashion)], args.rounds)
    splits = prepare_data(base, fashion, device)
    compare(f"fashion cohort of {len(members)}",
            lambda: cohort.train_cohort(members, splits=splits, outs=[None] * len(members),
                                        tests=[False] * len(members)), args.rounds)
    compare("mnist-fast", lambda: [train(fast, dataset=mnist, write_plots=False)], args.rounds)
    return 0


def timed_main() -> int:
    start = time.perf_counter()
    code = main()
    print(f"whole benchmark: {time.perf_counter() - start:.0f} s")
    return code


if __name__ == "__main__":
    run_main(timed_main)
