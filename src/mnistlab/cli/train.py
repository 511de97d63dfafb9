"""`mnistlab train` and `mnistlab evaluate`."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from .. import interrupt
from ..config import TrainConfig
from .common import add_config_flags, as_flag, config_from_args, print_summary, stderr, stdout


def add_train(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", help="TOML file of settings (flags override it)")
    p.add_argument("--recipe", metavar="NAME",
                   help="start from a tuned recipe, e.g. mnist-fast; --config and flags "
                   "override it; `--recipe list` shows them all")
    p.add_argument("--out", metavar="DIR",
                   help="run folder (default: runs/<time>-<dataset>-<model>); the same settings "
                   "resume it, a finished run is read back")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the run already in --out (by default the same settings resume "
                   "it and other settings are refused)")
    p.add_argument("--quiet", action="store_true", help="no progress bar; one line at the end")
    add_config_flags(p)


def run_train(args: argparse.Namespace) -> int:
    from ..progress import RichReporter, SilentReporter
    from ..recipes import RECIPES, get_recipe
    from ..training import train

    if args.recipe == "list":
        from rich.table import Table

        table = Table(title="recipes (mnistlab train --recipe NAME; flags still override)")
        for column in ("recipe", "tuned for", "settings"):
            table.add_column(column)
        for recipe in RECIPES.values():
            table.add_row(recipe.name, recipe.goal,
                          " ".join(as_flag(k, v) for k, v in recipe.settings.items()))
        stdout.print(table)
        return 0
    config = config_from_args(args, get_recipe(args.recipe).settings if args.recipe else None)
    out = Path(args.out) if args.out else default_out(config)
    reporter = SilentReporter() if args.quiet else RichReporter(stderr)
    result = train(config, out=out, reporter=reporter, overwrite=args.overwrite)
    summary = result.summary
    if result.reused:
        stderr.print(f"{out}: already holds this run, finished; nothing to train (add "
                     "--overwrite to train it again)")
    if not args.quiet:
        print_summary(summary, out)
    else:
        print(f"{out}  val_accuracy={summary.val_accuracy}  "
              f"test_accuracy={summary.test_accuracy}  status={summary.status}")
    if summary.status == "diverged":
        stderr.print("[red]error:[/] training diverged (loss became NaN/inf or kept rising) and "
                     "was stopped early; lower the learning rate (see the doctor's panel)")
        return 1
    if summary.status == "interrupted":
        stderr.print(f"interrupted; the run resumes from its last whole epoch when this command "
                     f"is run again: {out}")
        return interrupt.exit_code()
    return 0


def default_out(config: TrainConfig) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    dataset = Path(config.dataset).name if Path(config.dataset).exists() else config.dataset
    return Path("runs") / f"{stamp}-{dataset}-{config.model}"


def add_evaluate(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--split", choices=("val", "test"), default="test",
                   help="which split to score (default: test)")
    p.add_argument("--data-dir", metavar="DIR", help="where datasets live (default: as when "
                   "trained)")
    p.add_argument("--json", action="store_true", help="print JSON")


def run_evaluate(args: argparse.Namespace) -> int:
    from rich.table import Table

    from ..config import load_config
    from ..data.tensors import prepare_data
    from ..runs import load_model
    from ..training import evaluate

    run_dir = Path(args.run_dir)
    config = load_config(run_dir / "config.toml")
    if args.data_dir:
        config = config.replace(data_dir=args.data_dir)
    model, _ = load_model(run_dir)
    splits = prepare_data(config.replace(device="cpu"))
    x, y = (splits.test_x, splits.test_y) if args.split == "test" else (splits.val_x, splits.val_y)
    result = evaluate(model, x, y, config, splits.mean, splits.std, splits.num_classes)
    per_class = result.per_class_accuracy(y, splits.class_names)
    if args.json:
        print(json.dumps({"split": args.split, "accuracy": result.accuracy, "loss": result.loss,
                          "n": len(y), "per_class_accuracy": per_class}, indent=2))
        return 0
    table = Table(title=f"{run_dir} on the {args.split} split ({len(y):,} images)")
    table.add_column("class")
    table.add_column("accuracy", justify="right")
    for name, accuracy in per_class.items():
        table.add_row(name, "—" if accuracy is None else f"{accuracy:.4f}")
    stdout.print(table)
    stdout.print(f"accuracy [bold]{result.accuracy:.4f}[/]  loss {result.loss:.4f}")
    return 0
