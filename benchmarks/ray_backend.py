"""What `--backend ray` costs against the local backend, measured side by side in one run.

    MNISTLAB_DATA=../shared/datasets python benchmarks/ray_backend.py --seeds 1
    MNISTLAB_DATA=../shared/datasets python benchmarks/ray_backend.py --seeds 3 --full

Starts a real two-node Ray cluster on loopback (one CPU per node, so both backends have this
machine's two cores), then runs the same fashion-hparams study (quick form unless --full) with
the local backend (two one-thread workers) and with the Ray backend, alternating, `--repeats`
times each. Prints each wall time, the time inside training loops, the ratio Ray/local, and
whether the two gave the same results.csv rows (seconds aside).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _cli import at_least, run_main  # benchmarks/ is the script's folder, so on sys.path

from mnistlab.testing import loopback_cluster, run_child


def run(argv: list[str], out: Path, env: dict[str, str]) -> tuple[float, float]:
    start = time.perf_counter()
    run_child([sys.executable, "-m", "mnistlab", *argv, "--out", str(out), "--quiet"],
              env={**os.environ, **env})
    wall = time.perf_counter() - start
    inside = sum(json.loads(p.read_text())["seconds"] for p in out.glob("runs/*/summary.json"))
    return wall, inside


def rows(path: Path) -> list[dict]:
    return sorted(({k: v for k, v in r.items() if k != "seconds"}
                   for r in csv.DictReader(path.open())), key=lambda r: (r["run"], r["experiment"]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=at_least(1), default=1,
                        help="seeds per configuration (default: 1)")
    parser.add_argument("--full", action="store_true",
                        help="the full study, not the quick form (default: off)")
    parser.add_argument("--repeats", type=at_least(1), default=2,
                        help="runs of each backend (default: 2)")
    args = parser.parse_args()
    study = ["study", "fashion-hparams", "--seeds", str(args.seeds)]
    study += [] if args.full else ["--quick"]
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
          f"study: {' '.join(study[1:])}")
    times: dict[str, list[tuple[float, float]]] = {"local": [], "ray": []}
    same = True
    with loopback_cluster(nodes=2, cpus_per_node=1) as cluster, \
            tempfile.TemporaryDirectory() as tmp:
        print(f"cluster: 2 nodes x 1 CPU at {cluster.address}")
        for i in range(args.repeats):
            local, ray = Path(tmp) / f"local{i}", Path(tmp) / f"ray{i}"
            times["local"].append(run(study + ["--workers", "2"], local, {}))
            times["ray"].append(run(study + ["--backend", "ray", "--address", cluster.address],
                                    ray, cluster.env))
            same = same and rows(local / "results.csv") == rows(ray / "results.csv")
    for name, measured in times.items():
        walls = ", ".join(f"{w:.1f}" for w, _ in measured)
        inside = ", ".join(f"{s:.1f}" for _, s in measured)
        print(f"{name:5s}: wall {walls} s; inside training loops {inside} s")
    ratios = [r[0] / loc[0] for r, loc in zip(times["ray"], times["local"])]
    print(f"ray / local wall time, pair by pair: {', '.join(f'{r:.2f}' for r in ratios)} "
          f"(median {statistics.median(ratios):.2f})")
    print(f"same results.csv rows: {'yes' if same else 'NO'}")
    return 0 if same else 1


if __name__ == "__main__":
    run_main(main)
