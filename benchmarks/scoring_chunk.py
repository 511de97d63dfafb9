"""How many images to score per forward pass: each recipe's network, and an ensemble of them.

    MNISTLAB_DATA=../shared/datasets python benchmarks/scoring_chunk.py [--chunks 2000 256]

For each recipe's network (freshly built: scoring time does not depend on what the weights
learned) and a lockstep ensemble of four mnist-fast networks, `evaluate()` scores the 10,000
test images once per chunk size, in rounds that alternate the sizes. Printed: the best seconds
per chunk size of `--rounds` rounds and each size's ratio to the first. Evaluation runs in
float32 (no autocast) and without TTA, as every epoch's scoring does; a run's final TTA scoring
is the same passes once per view. `EVAL_CHUNK` (models.py) is the size the package uses.
"""

from __future__ import annotations

import argparse
import platform
import time

import torch
from _cli import at_least, run_main  # benchmarks/ is the script's folder, so on sys.path

from mnistlab.allocator import keep_freed_memory
from mnistlab.config import TrainConfig
from mnistlab.data import load_dataset
from mnistlab.device import to_fast_layout
from mnistlab.models import EVAL_CHUNK, build_model
from mnistlab.recipes import RECIPES
from mnistlab.training.evaluation import evaluate

NETWORKS = (("mnist-fast", 1), ("mnist-fast", 4), ("mnist-best", 1), ("fashion-best", 1))


def seconds(model, data, count: int, config: TrainConfig, chunk: int) -> float:
    images, labels = data.test_images[:count].unsqueeze(1), data.test_labels[:count]
    start = time.perf_counter()
    evaluate(model, images, labels, config, data.mean, data.std, 10, batch_size=chunk)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=at_least(1), nargs="+",
                        default=[2000, 500, EVAL_CHUNK, 128],
                        help=f"images per pass to compare (default: 2000 500 {EVAL_CHUNK} 128)")
    parser.add_argument("--rounds", type=at_least(1), default=2, help="alternations (default: 2)")
    args = parser.parse_args()
    keep_freed_memory()
    print(f"machine: {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} torch threads, torch {torch.__version__}; "
          f"EVAL_CHUNK = {EVAL_CHUNK}")
    cpu = torch.device("cpu")
    for recipe, members in NETWORKS:
        config = TrainConfig.from_dict(RECIPES[recipe].settings).replace(ensemble=members)
        data = load_dataset(config.dataset)
        model = to_fast_layout(build_model(config, (1, 28, 28), 10), cpu)
        seconds(model, data, 1000, config, args.chunks[-1])  # warm-up
        best = {chunk: float("inf") for chunk in args.chunks}
        for _ in range(args.rounds):
            for chunk in args.chunks:
                taken = seconds(model, data, len(data.test_labels), config, chunk)
                best[chunk] = min(best[chunk], taken)
        first = best[args.chunks[0]]
        name = recipe if members == 1 else f"{recipe} --ensemble {members}"
        print(f"{name}: " + ", ".join(f"{chunk}: {s:.3f} s ({s / first:.2f})"
                                      for chunk, s in best.items()), flush=True)
    return 0


if __name__ == "__main__":
    run_main(main)
