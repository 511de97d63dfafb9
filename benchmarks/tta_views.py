"""Which test-time views pay: trained runs re-scored with sets of views, on validation and test.

    MNISTLAB_DATA=../shared/datasets python benchmarks/tta_views.py RUN_DIR [RUN_DIR ...]

Each view (the image, 1- and 2-pixel moves, diagonal moves, mirrors where the run trained
with flip; for digits also small turns and zooms) is scored once per run; a set's score
averages its views' softmax. Printed per run and set: validation and test accuracy; then each
set's means over the runs. Choose by validation: test is printed beside it, not to choose by.
The set marked "(--tta)" is what `--tta` scores today (`mnistlab evaluate RUN --tta` agrees).
"""

from __future__ import annotations

import argparse
import math
import statistics
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from _cli import at_least, run_main  # benchmarks/ is the script's folder, so on sys.path

from mnistlab.config import load_config
from mnistlab.data.tensors import prepare_data, to_input
from mnistlab.runs import load_model
from mnistlab.training.evaluation import config_views, moved, tta_flips

View = Callable[[torch.Tensor], torch.Tensor]
AXIS = ((-1, 0), (1, 0), (0, -1), (0, 1))


def shifted(dy: int, dx: int) -> View:
    return lambda x: moved(x, dy, dx)


def mirrored(view: View) -> View:
    return lambda x: view(x).flip(3)


def affine(degrees: float = 0.0, scale: float = 1.0) -> View:
    def view(x: torch.Tensor) -> torch.Tensor:
        t = math.radians(degrees)
        c, s = math.cos(t) / scale, math.sin(t) / scale
        theta = torch.tensor([[c, -s, 0.0], [s, c, 0.0]]).expand(len(x), 2, 3)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        out = F.grid_sample(x.float(), grid, align_corners=False)
        return out.round().clamp(0, 255).to(torch.uint8)
    return view


def view_sets(flip: bool) -> tuple[dict[str, View], dict[str, list[str]]]:
    views: dict[str, View] = {"o": lambda x: x}
    for r in (1, 2):
        views |= {f"m{dy * r},{dx * r}": shifted(dy * r, dx * r) for dy, dx in AXIS}
    views |= {f"m{dy},{dx}": shifted(dy, dx) for dy in (-1, 1) for dx in (-1, 1)}
    one, two = [f"m{dy},{dx}" for dy, dx in AXIS], [f"m{2 * dy},{2 * dx}" for dy, dx in AXIS]
    diagonal = [f"m{dy},{dx}" for dy in (-1, 1) for dx in (-1, 1)]
    sets = {"the image": ["o"], "1-pixel moves": ["o", *one],
            "1-pixel and diagonal moves": ["o", *one, *diagonal],
            "1- and 2-pixel moves": ["o", *one, *two]}
    if flip:
        views |= {"f" + k: mirrored(v) for k, v in list(views.items())}
        moves = {name: keys for name, keys in sets.items() if name != "the image"}
        sets = {"the image": ["o"], "the image and its mirror": ["o", "fo"],
                **{f"{name}, the image mirrored": [*keys, "fo"] for name, keys in moves.items()},
                **{f"{name}, each mirrored": keys + ["f" + k for k in keys]
                   for name, keys in moves.items()}}
    else:
        views |= {f"r{d}": affine(degrees=d) for d in (-8, -4, 4, 8)}
        views |= {f"z{z}": affine(scale=z) for z in (0.92, 1.08)}
        sets |= {"1-pixel moves, turns of 4 degrees": ["o", *one, "r-4", "r4"],
                 "1-pixel moves, turns of 4 and 8 degrees": ["o", *one, "r-4", "r4", "r-8", "r8"],
                 "1-pixel moves, zoom 8%": ["o", *one, "z0.92", "z1.08"]}
    return views, sets


@torch.no_grad()
def softmax_of(model, x: torch.Tensor, config, mean: float, std: float, view: View,
               batch: int = 2000) -> torch.Tensor:
    """Softmax per image of `view` of each image in `x`."""
    parts = [model(to_input(view(x[i:i + batch]), config, mean, std)).softmax(-1)
             for i in range(0, len(x), batch)]
    return torch.cat(parts, dim=-2)


def score_run(run: Path) -> dict[str, tuple[float, float]]:
    """{set name: (validation accuracy, test accuracy)} for one run folder."""
    config = load_config(run / "config.toml")
    model, _ = load_model(run)
    splits = prepare_data(config.replace(device="cpu"))
    views, sets = view_sets(tta_flips(config))
    shape = splits.image_shape
    labels = {name: f"{name} ({len(keys)})" + (" (--tta)" if _is_tta(views, keys, config, shape)
                                               else "")
              for name, keys in sets.items()}
    scores: dict[str, list[float]] = {}
    for split in ("val", "test"):
        x, y = getattr(splits, f"{split}_x"), getattr(splits, f"{split}_y")
        probs = {k: softmax_of(model, x, config, splits.mean, splits.std, v)
                 for k, v in views.items()}
        for name, keys in sets.items():
            p = sum(probs[k] for k in keys) / len(keys)
            scores.setdefault(labels[name], []).append(float((p.argmax(-1) == y).double().mean()))
    return {name: (val, test) for name, (val, test) in scores.items()}


def _is_tta(views: dict[str, View], keys: list[str], config, shape: tuple[int, ...]) -> bool:
    """Whether these views are the ones --tta scores for this run (compared on a probe of
    the run's image shape: how far the views reach can depend on its size)."""
    probe = torch.randint(0, 256, (1, *shape), dtype=torch.uint8,
                          generator=torch.Generator().manual_seed(0))
    ours = sorted(views[k](probe).flatten().tolist() for k in keys)
    return ours == sorted(v.flatten().tolist() for v in config_views(probe, config))


def parse_runs(description: str) -> argparse.Namespace:
    """The command line of a benchmark that scores run folders: the folders, and the torch
    threads to score with (set here)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("runs", nargs="+", type=Path, help="run folders (model.pt, config.toml)")
    parser.add_argument("--threads", type=at_least(0), default=0,
                        help="torch threads (default: 0, torch's own choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    return args


def main() -> None:
    args = parse_runs(__doc__.split("\n")[0])
    table: dict[str, list[tuple[float, float]]] = {}
    for run in args.runs:
        print(run, flush=True)
        for name, (val, test) in score_run(run).items():
            print(f"  {name:54s} val {val:.4f}  test {test:.4f}", flush=True)
            table.setdefault(name, []).append((val, test))
    if len(args.runs) > 1:
        print(f"means over {len(args.runs)} runs (test sd across runs)")
        for name, rows in table.items():
            if len(rows) < len(args.runs):
                continue  # a set some runs do not have (digits and clothes differ)
            vals, tests = zip(*rows, strict=True)
            print(f"  {name:54s} val {statistics.mean(vals):.4f}  test "
                  f"{statistics.mean(tests):.4f} ± {statistics.stdev(tests):.4f}")


if __name__ == "__main__":
    run_main(main)
