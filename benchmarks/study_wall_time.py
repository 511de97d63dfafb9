"""Wall time of a whole study, end to end (plan, training, final model, report).

    MNISTLAB_DATA=../shared/datasets python benchmarks/study_wall_time.py fashion-hparams --seeds 1
    MNISTLAB_DATA=../shared/datasets python benchmarks/study_wall_time.py fashion-hparams --seeds 3

Prints the wall time, the number of distinct runs and epochs trained, and the slowest runs.
Each call starts from an empty study folder (nothing is resumed).
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import tempfile
import time

import torch
from _cli import at_least, run_main  # benchmarks/ is the script's folder, so on sys.path

from mnistlab.study import load_study, train_study


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study", help="preset name or study file")
    parser.add_argument("--seeds", type=at_least(1), default=1,
                        help="seeds per configuration (default: 1)")
    parser.add_argument("--quick", action="store_true", help="the quick form (default: off)")
    args = parser.parse_args()
    spec = load_study(args.study)
    if args.quick:
        spec = spec.with_quick()
    spec = dataclasses.replace(spec, seeds=args.seeds)
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        result = train_study(spec, out)
        wall = time.perf_counter() - start
    trained = [s for s in result.summaries.values()]
    epochs = sum(s.epochs for s in trained)
    train_seconds = sum(s.seconds for s in trained)
    print(f"machine: {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} torch threads, torch {torch.__version__}")
    print(f"study {spec.name} seeds={args.seeds}: wall {wall:.1f} s; {len(trained)} runs "
          f"trained ({len(result.plan.snapshots)} more read off longer runs), {epochs} epochs, "
          f"{train_seconds:.1f} s inside training loops")
    slowest = sorted(((result.summaries[r.key].seconds if r.key in result.summaries else 0.0,
                       r.experiment, r.value) for r in result.distinct_rows()), reverse=True)[:5]
    for seconds, experiment, value in slowest:
        print(f"  {seconds:7.1f} s  {experiment} = {value}")
    return 0


if __name__ == "__main__":
    run_main(main)
