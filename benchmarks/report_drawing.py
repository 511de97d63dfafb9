"""What a report's figures cost to draw and save, per kind, on made-up data of a study's size.

    python benchmarks/report_drawing.py [--rounds 5] [--against OTHER/src ...]

Each figure kind a study report draws (learning curves of 30 epochs, a 10-class confusion
matrix, experiment curves and points of 5 values, per-class bars, 32 misclassified images) is
built and saved as PNG with `files.save_figure`, `--rounds` times; the median per kind is
printed. With `--against`, the same is measured for each other source tree (another checkout's
`src`, e.g. `git worktree add /tmp/old <commit>` then `--against /tmp/old/src`), rounds taking
turns between the trees in one run, so that the ratio is side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

from _cli import at_least, run_main  # benchmarks/ is the script's folder, so on sys.path

from mnistlab.errors import MnistlabError
from mnistlab.testing import run_child

HERE = Path(__file__).resolve().parents[1] / "src"

CHILD = r"""
import io, json, sys, time
import numpy as np
import mnistlab
from mnistlab import figures, files
from mnistlab.records import EpochRecord

rng = np.random.default_rng(0)
names = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
         "Bag", "Ankle boot"]
history = [EpochRecord(epoch=e, train_loss=1 / e, train_accuracy_running=0.8 + e / 200,
                       train_metric_running=0.8, train_loss_eval=0.9 / e,
                       train_accuracy_eval=0.8 + e / 180, val_loss=1 / e,
                       val_accuracy=0.8 + e / 190, val_metric=0.8, lr=0.001, seconds=1.0)
           for e in range(1, 31)]
curves = {f"{v}": [list(0.8 + np.cumsum(rng.random(10)) / 100) for _ in range(3)]
          for v in (0.0001, 0.001, 0.01, 0.1, 1.0)}
labels = list(curves)
kinds = {
    "learning curves": lambda: figures.learning_curves(history, "final"),
    "confusion matrix": lambda: figures.confusion(rng.integers(0, 900, (10, 10)), names),
    "experiment curves": lambda: figures.experiment_curves(curves, "lr"),
    "experiment points": lambda: figures.point_chart(labels, [0.8, 0.82, 0.85, 0.84, 0.1],
                                                     [0.01] * 5, "lr", base_label="0.001"),
    "per-class bars": lambda: figures.per_class_bars(names, list(rng.random(10)), "per class"),
    "misclassified grid": lambda: figures.misclassified_grid(
        rng.integers(0, 256, (32, 28, 28)).astype(np.uint8), names * 4, names[::-1] * 4, ""),
}
out = sys.argv[1]
figures.learning_curves(history)  # matplotlib's start-up, not a figure's cost
seconds = {}
for kind, draw in kinds.items():
    start = time.perf_counter()
    files.save_figure(out, draw())
    seconds[kind] = time.perf_counter() - start
print(json.dumps({"mnistlab": mnistlab.__file__, "seconds": seconds}))
"""


def measure(src: Path, out: Path) -> dict[str, float]:
    """One round in a fresh process with `src` first on the path."""
    env = {**os.environ, "PYTHONPATH": str(src), "MPLBACKEND": "Agg"}
    done = run_child([sys.executable, "-c", CHILD, str(out)], env=env)
    measured = json.loads(done.stdout.splitlines()[-1])
    # a tree without the package let the child import the installed one: timed, and compared
    # with itself, it made ratios that meant nothing
    imported = Path(measured["mnistlab"]).resolve()
    if not imported.is_relative_to(src.resolve()):
        raise MnistlabError(f"{src}: the child imported mnistlab from {imported.parent}, not "
                            "from this tree")
    return measured["seconds"]


def source_tree(text: str) -> Path:
    """An argparse `type`: a folder holding mnistlab/__init__.py (a checkout's src)."""
    tree = Path(text)
    if not (tree / "mnistlab" / "__init__.py").is_file():
        hint = (f"; did you mean {tree / 'src'}?"
                if (tree / "src" / "mnistlab" / "__init__.py").is_file() else "")
        raise argparse.ArgumentTypeError(f"{text} holds no mnistlab/__init__.py: give another "
                                         f"checkout's src folder{hint}")
    return tree


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=at_least(1), default=5,
                        help="times each figure is drawn and saved; the median is printed "
                        "(default: 5)")
    parser.add_argument("--against", nargs="*", default=[], type=source_tree, metavar="SRC",
                        help="other source trees (another checkout's src) timed in turn with "
                        "this one, for side-by-side ratios (default: none)")
    parser.add_argument("--out", type=Path, default=Path("/tmp/mnistlab-report-drawing.png"),
                        help="the PNG each figure is saved to in turn, overwritten "
                        "(default: %(default)s)")
    args = parser.parse_args()
    trees = [HERE, *args.against]
    rounds: dict[Path, list[dict[str, float]]] = {tree: [] for tree in trees}
    for _ in range(args.rounds):
        for tree in trees:  # taking turns: a machine that slows down slows every tree
            rounds[tree].append(measure(tree, args.out))
    kinds = list(rounds[HERE][0])
    medians = {tree: {kind: statistics.median(r[kind] for r in runs) for kind in kinds}
               for tree, runs in rounds.items()}
    header = f"{'figure':<20}" + "".join(f"{str(tree)[-28:]:>30}" for tree in trees)
    print(header)
    for kind in [*kinds, "all"]:
        cells = []
        for tree in trees:
            value = (sum(medians[tree].values()) if kind == "all" else medians[tree][kind])
            base = (sum(medians[HERE].values()) if kind == "all" else medians[HERE][kind])
            ratio = "" if tree == HERE else f" ({value / base:.2f}x)"
            cells.append(f"{value * 1000:.0f} ms{ratio}")
        print(f"{kind:<20}" + "".join(f"{cell:>30}" for cell in cells))
    print(f"median of {args.rounds} rounds per tree, rounds taking turns; ratios: the other "
          f"tree's time over this tree's ({HERE})")
    return 0


if __name__ == "__main__":
    run_main(main)
