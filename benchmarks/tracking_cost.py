"""The cost of `--log tensorboard,mlflow` on a quick study, measured side by side.

    MNISTLAB_DATA=../shared/datasets python benchmarks/tracking_cost.py --repeats 2

Runs `mnistlab study fashion-hparams --quick --seeds 1` as a fresh process into an empty
folder, alternating logging off and on (so drifts of a shared machine fall on both), with the
embedded MLflow store (no server) and TensorBoard. Prints each wall time, the medians and
their ratio. The whole command is timed: start-up, imports, training, report, logging.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _cli import at_least, run_main  # benchmarks/ is the script's folder, so on sys.path

from mnistlab.testing import run_child


def one(log: bool, workers: int | None) -> float:
    with tempfile.TemporaryDirectory() as folder:
        argv = [sys.executable, "-m", "mnistlab", "study", "fashion-hparams", "--quick",
                "--seeds", "1", "--quiet", "--out", str(Path(folder) / "study")]
        argv += ["--workers", str(workers)] if workers else []
        argv += ["--log", "tensorboard,mlflow"] if log else []
        env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
        start = time.perf_counter()
        run_child(argv, env=env)
        return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=at_least(1), default=3, help="pairs of runs (default: 3)")
    parser.add_argument("--workers", type=at_least(1),
                        help="--workers for the study (default: the study's)")
    args = parser.parse_args()
    times: dict[bool, list[float]] = {False: [], True: []}
    for i in range(args.repeats):
        for log in ((False, True) if i % 2 == 0 else (True, False)):
            seconds = one(log, args.workers)
            times[log].append(seconds)
            print(f"pair {i + 1}: logging {'on ' if log else 'off'} {seconds:6.1f} s", flush=True)
    off, on = statistics.median(times[False]), statistics.median(times[True])
    print(f"median wall time: off {off:.1f} s, on {on:.1f} s; on/off = {on / off:.3f} "
          f"({(on / off - 1) * 100:+.1f}%), {args.repeats} pairs")
    return 0


if __name__ == "__main__":
    run_main(main)
