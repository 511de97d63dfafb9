"""The `mnistlab` command: parse flags -> config -> call the API -> print.

Every `TrainConfig` field is a flag of the same name (`batch_size` -> `--batch-size`), so the
CLI, TOML files and the Python API can never drift apart. A user mistake becomes one line on
stderr and a non-zero exit code; tracebacks are kept for bugs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from . import __version__, files, interrupt
from .config import TrainConfig, read_toml
from .errors import MnistlabError

if TYPE_CHECKING:
    from .records import RunSummary

stdout = Console(highlight=False)
stderr = Console(stderr=True, highlight=False, soft_wrap=True)  # lines stay whole in logs

# Help for each TrainConfig field; the default is appended from the dataclass itself.
FIELD_HELP: dict[str, str] = {
    "dataset": "mnist, fashion-mnist, or a folder holding the four IDX files",
    "data_dir": "folder with <name>/*.gz datasets (also: MNISTLAB_DATA)",
    "val_size": "training images held out for validation, stratified by class",
    "val_from": "train, or test to validate on the test set as the original study did",
    "train_subset": "train on this many images only (0 = all); for quick looks",
    "eval_train_size": "training images scored in eval mode each epoch (dropout off)",
    "input_scaling": "standardize | unit ([0,1]) | raw (0..255, a teaching aid)",
    "shuffle_labels": "teaching aid: shuffle the training labels so they carry no signal",
    "model": "mlp | lenet5 | cnn",
    "variant": "lenet5: classic (tanh, avg-pool, 1998) or modern (ReLU, max-pool)",
    "hidden": "mlp hidden layer sizes, comma-separated",
    "filters": "cnn conv filters per block, comma-separated",
    "dense": "cnn dense layer sizes, comma-separated",
    "activation": "relu | tanh | sigmoid | gelu; empty = the model's own",
    "dropout": "dropout probability before each dense layer, in [0, 1)",
    "batchnorm": "batch normalisation after each conv layer",
    "loss": "ce (right) | bce, ce-on-softmax (teaching aids: classic mistakes)",
    "metric": "accuracy | binary-accuracy (teaching aid: Keras' per-output accuracy)",
    "label_smoothing": "cross-entropy label smoothing, in [0, 1)",
    "optimizer": "sgd | adam | adamw",
    "lr": "learning rate (peak rate for onecycle)",
    "momentum": "SGD momentum",
    "nesterov": "SGD Nesterov momentum (needs --momentum)",
    "weight_decay": "L2 penalty (decoupled for adamw)",
    "schedule": "learning-rate schedule: constant | step | cosine | onecycle",
    "batch_size": "images per optimisation step",
    "epochs": "passes over the training set",
    "early_stopping": "stop after N epochs without a better val accuracy (0 = off)",
    "augment": "random affine per image, e.g. rotate=10,scale=0.1,shift=0.1",
    "seed": "seed for initialisation and dropout masks",
    "data_seed": "seed for the validation split, the training subset and the batch order; kept "
                 "apart from --seed so that runs differing only in seed see the same data",
    "device": "auto | cpu | cuda | mps",
}


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field; defaults shown, but only given flags override."""
    group = parser.add_argument_group("training settings (also TOML keys of --config)")
    for f in dataclasses.fields(TrainConfig):
        default = f.default if f.default is not dataclasses.MISSING else None
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
        shown = '""' if shown == "" else shown
        help_text = f"{FIELD_HELP.get(f.name, f.name)} (default: {shown})"
        if isinstance(default, bool):
            group.add_argument(_flag(f.name), dest=f.name, default=None,
                               action=argparse.BooleanOptionalAction, help=help_text)
        else:
            group.add_argument(_flag(f.name), dest=f.name, default=None, metavar="X",
                               help=help_text)


def config_from_args(args: argparse.Namespace, base: dict[str, Any] | None = None) -> TrainConfig:
    data = dict(base or {})
    if getattr(args, "config", None):
        data.update(read_toml(args.config))
    for f in dataclasses.fields(TrainConfig):
        value = getattr(args, f.name, None)
        if value is not None:
            data[f.name] = value
    return TrainConfig.from_dict(data, where=getattr(args, "config", None) or "settings")


def _as_flag(name: str, value: Any) -> str:
    """A setting as the flag that gives it: ('batchnorm', True) -> '--batchnorm'."""
    flag = _flag(name)
    if isinstance(value, bool):
        return flag if value else "--no-" + flag[2:]
    return f"{flag} {','.join(map(str, value)) if isinstance(value, list) else value}"


def _default_out(config: TrainConfig) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    dataset = Path(config.dataset).name if Path(config.dataset).exists() else config.dataset
    return Path("runs") / f"{stamp}-{dataset}-{config.model}"


# --- printing --------------------------------------------------------------------------------
def print_findings(findings: Sequence[dict[str, Any]], console: Console = stdout) -> None:
    if not findings:
        return
    colours = {"problem": "red", "warning": "yellow", "info": "cyan"}
    lines = []
    for f in findings:
        colour = colours.get(f["severity"], "white")
        lines.append(f"[bold {colour}]{f['severity'].upper()}[/] [bold]{f['title']}[/] "
                     f"[dim]({f['code']})[/]\n  [italic]{f['evidence']}[/]\n"
                     f"  {f['explanation']}\n  [bold]Fix:[/] {f['fix']}")
    console.print(Panel("\n\n".join(lines), title="doctor", border_style="magenta"))


def print_summary(summary: RunSummary, out: Path | None) -> None:
    def pct(value: Any) -> str:
        return "—" if value is None else f"{value:.4f}"

    table = Table(title=f"{summary.dataset} · {summary.model} · "
                        f"{summary.parameters:,} parameters · single run")
    for column in ("status", "epochs", "seconds", "train acc (eval)", "train acc (running)",
                   "val acc", "test acc"):
        table.add_column(column, justify="right")
    table.add_row(summary.status, f"{summary.epochs}/{summary.epochs_planned}",
                  f"{summary.seconds:.1f}", pct(summary.train_accuracy_eval),
                  pct(summary.train_accuracy_running), pct(summary.val_accuracy),
                  pct(summary.test_accuracy))
    stdout.print(table)
    if summary.metric == "binary-accuracy":
        stdout.print(f"reported metric (binary accuracy) on validation: "
                     f"{pct(summary.val_metric)}  ·  true accuracy: "
                     f"{pct(summary.val_accuracy)}")
    print_findings([f.to_dict() for f in summary.diagnoses])
    if out is not None:
        stdout.print(f"run folder: [bold]{out}[/]")


# --- commands --------------------------------------------------------------------------------
def cmd_train(args: argparse.Namespace) -> int:
    from .progress import RichReporter, SilentReporter
    from .recipes import RECIPES, get_recipe
    from .training import train

    if args.recipe == "list":
        table = Table(title="recipes (mnistlab train --recipe NAME; flags still override)")
        for column in ("recipe", "tuned for", "settings"):
            table.add_column(column)
        for recipe in RECIPES.values():
            table.add_row(recipe.name, recipe.goal,
                          " ".join(_as_flag(k, v) for k, v in recipe.settings.items()))
        stdout.print(table)
        return 0
    config = config_from_args(args, get_recipe(args.recipe).settings if args.recipe else None)
    out = Path(args.out) if args.out else _default_out(config)
    reporter = SilentReporter() if args.quiet else RichReporter(stderr)
    result = train(config, out=out, reporter=reporter, overwrite=args.overwrite)
    if result.reused:
        stderr.print(f"{out}: already holds this run, finished; nothing to train (add "
                     "--overwrite to train it again)")
    if not args.quiet:
        print_summary(result.summary, out)
    else:
        print(f"{out}  val_accuracy={result.summary.val_accuracy}  "
              f"test_accuracy={result.summary.test_accuracy}  "
              f"status={result.summary.status}")
    if result.summary.status == "diverged":
        stderr.print("[red]error:[/] training diverged (loss became NaN/inf or kept rising) and "
                     "was stopped early; lower the learning rate (see the doctor's panel)")
        return 1
    if result.summary.status == "interrupted":
        stderr.print(f"interrupted; the run resumes from its last whole epoch when this command "
                     f"is run again: {out}")
        return interrupt.exit_code()
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .config import load_config
    from .data.tensors import prepare_data
    from .runs import load_model
    from .training import evaluate

    run_dir = Path(args.run_dir)
    config = load_config(run_dir / "config.toml")
    if args.data_dir:
        config = config.replace(data_dir=args.data_dir)
    model, payload = load_model(run_dir)
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
    for name, acc in per_class.items():
        table.add_row(name, "—" if acc is None else f"{acc:.4f}")
    stdout.print(table)
    stdout.print(f"accuracy [bold]{result.accuracy:.4f}[/]  loss {result.loss:.4f}")
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    from . import data

    if args.data_command == "fetch":
        if args.source:
            path = data.import_folder(args.name, args.source)
        else:
            path = data.fetch(args.name, progress=not args.quiet)
        stdout.print(f"{args.name}: ready in {path}")
    elif args.data_command == "path":
        print(data.dataset_folder(args.name, data_dir=args.data_dir))
    else:
        info = data.dataset_info(args.name, data_dir=args.data_dir)
        if args.json:
            print(json.dumps(info, indent=2, default=str))
        else:
            table = Table(title=f"dataset {args.name}", show_header=False)
            for key, value in info.items():
                table.add_row(str(key), str(value))
            stdout.print(table)
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from .doctor import problems
    from .runs import examine

    report = examine(args.path)
    if args.json:
        print(json.dumps({run: [f.to_dict(args.lang) for f in found]
                          for run, found in report.items()}, indent=2, ensure_ascii=False))
    else:
        for run, found in report.items():
            if found:
                stdout.print(f"[bold]{run}[/]")
                print_findings([f.to_dict(args.lang) for f in found])
            else:
                stdout.print(f"[bold]{run}[/]: [green]nothing wrong found[/]")
    return 1 if any(problems(found) for found in report.values()) else 0


def cmd_study(args: argparse.Namespace) -> int:
    from .progress import StudyProgress
    from .study import list_presets, load_study, run_study

    if args.list or not args.study:
        table = Table(title="built-in studies (mnistlab study NAME [--quick] [--seeds N])")
        for column in ("preset", "what", "runs"):
            table.add_column(column)
        for name in list_presets():
            spec = load_study(name)
            cells = sum(len(e.variants) for e in spec.experiments)
            table.add_row(name, spec.title, f"{cells} settings × {spec.seeds} seeds")
        stdout.print(table)
        return 0 if args.list else 2
    spec = load_study(args.study)
    if args.quick:
        spec = spec.with_quick()
    changes: dict[str, Any] = {}
    if args.seeds is not None:
        if args.seeds < 1:
            raise MnistlabError(f"seeds: must be a whole number >= 1, got {args.seeds}")
        changes["seeds"] = args.seeds
    base_changes = {k: v for k, v in (("data_dir", args.data_dir), ("device", args.device))
                    if v is not None}
    if base_changes:
        changes["base"] = spec.base.replace(**base_changes)
    if changes:
        spec = dataclasses.replace(spec, **changes)
    out = Path(args.out) if args.out else Path("studies") / spec.name  # a checked folder name
    from .study.run import LocalBackend

    progress = StudyProgress(stderr, silent=args.quiet)
    if args.workers is not None and args.workers < 1:
        raise MnistlabError(f"workers: must be a whole number >= 1, got {args.workers}")
    address, resources = ray_target(args)
    if args.backend == "ray":
        if args.workers is not None:
            raise MnistlabError("workers: --workers is for --backend local; on Ray each unit "
                                "of work is a task asking for --task-cpus CPUs")
        from .study.ray_backend import RayBackend

        backend = RayBackend(address=address, cohorts=not args.one_by_one,
                             resources=resources)
    else:
        backend = LocalBackend(cohorts=not args.one_by_one, workers=args.workers)
    result = run_study(spec, out, backend=backend,
                       study_reporter=progress, report_lang=args.lang)
    stdout.print(f"study folder: [bold]{out}[/] · {len(result.distinct_rows())} runs · "
                 f"report: {out / 'report.md'}")
    return 0


def ray_target(args: argparse.Namespace) -> tuple[str, Any]:
    """The Ray address and task requests (defaults for flags not given: "auto" and
    TaskResources'); with --backend local, Ray-only flags are a mistake, not a no-op."""
    from .raycluster import TaskResources

    given = {name: getattr(args, name) for name in ("address", "task_cpus", "task_gpus",
                                                      "task_retries")
             if getattr(args, name) is not None}
    if args.backend == "local" and given:
        flag = _flag(next(iter(given)))
        raise MnistlabError(f"{flag.lstrip('-')}: {flag} is for --backend ray; add --backend "
                            "ray, or drop it to train on this machine")
    address = given.pop("address", "auto")
    return address, TaskResources(**{name.removeprefix("task_"): value
                                     for name, value in given.items()})


def cmd_tune(args: argparse.Namespace) -> int:
    from .tune import list_presets, load_space, run_tune
    from .tune.display import TrialTable

    if args.list or not args.space:
        table = Table(title="built-in search spaces (mnistlab tune NAME --trials N [--quick])")
        for column in ("preset", "what", "searches"):
            table.add_column(column)
        for name in list_presets():
            spec = load_space(name)
            table.add_row(name, spec.title, ", ".join(p.name for p in spec.params))
        stdout.print(table)
        if not args.list:
            stderr.print("error: give a search space: a preset above or a .toml file")
        return 0 if args.list else 2
    spec = load_space(args.space)
    if args.quick:
        spec = spec.with_quick()
    base_changes = {k: v for k, v in (("data_dir", args.data_dir), ("device", args.device))
                    if v is not None}
    if base_changes:
        spec = dataclasses.replace(spec, base=spec.base.replace(**base_changes))
    out = Path(args.out) if args.out else Path("tunes") / spec.name
    address, resources = ray_target(args)
    display = None if args.quiet else TrialTable(spec, stderr)
    try:
        result = run_tune(
            spec, out, trials=args.trials, storage=args.storage, seed=args.seed,
            pruner=args.pruner, study_name=args.study_name, retrain_seeds=args.retrain_seeds,
            report=not args.no_report, report_lang=args.lang,
            on_start=display.start if display else None,
            on_trial=display.on_trial if display else None,
            reporter_for=display.reporter_for if display else None,
            retrain_reporter=display.retrain_reporter if display else None,
            backend=args.backend, address=address, resources=resources)
    finally:
        if display is not None:
            display.stop()
    best = result.best
    line = (f"tune folder: {out} · {len(result.trials)} trials in the study "
            f"({len(result.by_state('COMPLETE'))} complete, {len(result.by_state('PRUNED'))} "
            f"pruned, {result.ran_here} run here)")
    if best is not None:
        line += f" · best: trial {best.number}, val {best.value:.4f}"
    if result.retrained:
        tests = [r.summary.test_accuracy for r in result.retrained]
        line += f" · retrained test acc {sum(tests) / len(tests):.4f} (n={len(tests)})"
    if not args.no_report:
        line += f" · report: {out / 'report.md'}"
    stdout.print(line + f" · {result.seconds:.0f} s", soft_wrap=True)
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from .predict import exit_code, format_predictions, predict, show_sheet

    if args.show:
        files.check_output_file(args.show, "--show")  # before the work, not after it
    predictions = predict(args.run_dir, args.images, top=args.top, style=args.style)
    print(format_predictions(predictions, as_json=args.json))
    if args.show:
        stderr.print(f"sheet: {show_sheet(predictions, args.show)}")
    return exit_code(predictions)


def cmd_export(args: argparse.Namespace) -> int:
    from .export import export_onnx

    r = export_onnx(args.run_dir, args.out, check=not args.no_check)
    print(json.dumps(r, indent=2, default=str) if args.json else
          f"{r['path']}  opset {r['opset']}  max |logit diff| {r['max_abs_diff']:.2e}  "
          f"sidecar {r['sidecar']}")
    return 0


def add_backend_flags(parser: argparse.ArgumentParser, unit: str) -> None:
    from .raycluster import BACKENDS, TaskResources

    default = TaskResources()
    group = parser.add_argument_group(
        "where the work runs (docs/scale-out.md)",
        f"--backend ray sends each {unit} to a Ray cluster as a task; results come back here, "
        "where they are recorded. Needs the extra: pip install \"mnistlab[ray]\".")
    group.add_argument("--backend", choices=BACKENDS, default="local",
                       help="local: this machine; ray: a Ray cluster (default: local)")
    group.add_argument("--address", metavar="auto|HOST:PORT|local",
                       help="with --backend ray: the cluster's head node (auto: the cluster this "
                       "machine joined with `ray start`; local: a one-machine Ray started for "
                       "this command) (default: auto)")
    group.add_argument("--task-cpus", type=float, metavar="N",
                       help="CPUs each Ray task asks for, also its torch threads "
                       f"(default: {default.cpus:g})")
    group.add_argument("--task-gpus", type=float, metavar="N",
                       help="GPUs each Ray task asks for, fractions allowed "
                       f"(default: {default.gpus:g})")
    group.add_argument("--task-retries", type=int, metavar="N",
                       help="times Ray re-runs a task whose worker or node died "
                       f"(default: {default.retries})")


# --- parser ----------------------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line plus where to look, exit 2
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mnistlab", description=(
        "Train, diagnose and tune small image classifiers on MNIST-family data."),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--version", action="version", version=f"mnistlab {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("train", help="train one model and write a run folder", description=(
        "Train one model. Settings come from the defaults, then --recipe, then --config FILE, "
        "then flags. "
        "The run folder gets config.toml (reproduces the run), metrics.csv, summary.json, "
        "model.pt, curves.png and confusion.png."))
    p.add_argument("--config", metavar="FILE", help="TOML file of settings (flags override it)")
    p.add_argument("--recipe", metavar="NAME",
                   help="start from a tuned recipe, e.g. mnist-fast; --config and flags "
                   "override it; `--recipe list` shows them all")
    p.add_argument("--out", metavar="DIR",
                   help="run folder (default: runs/<time>-<dataset>-<model>)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the run already in --out (by default the same settings resume "
                   "it and other settings are refused)")
    p.add_argument("--quiet", action="store_true", help="no progress bar; one line at the end")
    add_config_flags(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="score a trained run on the val or test split")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--split", choices=("val", "test"), default="test",
                   help="which split to score (default: test)")
    p.add_argument("--data-dir", help="where datasets live (default: as when trained)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("data", help="fetch, locate and inspect datasets")
    data_sub = p.add_subparsers(dest="data_command", required=True, parser_class=_Parser)
    q = data_sub.add_parser("fetch", help="download (mirrors, checksums) or import a dataset")
    q.add_argument("name", help="mnist or fashion-mnist")
    q.add_argument("--from", dest="source", metavar="DIR",
                   help="import this folder of IDX files (gzipped or raw) instead of downloading")
    q.add_argument("--quiet", action="store_true", help="no download progress")
    for name, help_text in (("info", "where a dataset is and what it holds"),
                            ("path", "print the folder a dataset is read from")):
        q = data_sub.add_parser(name, help=help_text)
        q.add_argument("name", help="mnist, fashion-mnist or a folder")
        q.add_argument("--data-dir", help="folder with <name>/*.gz (also: MNISTLAB_DATA)")
        if name == "info":
            q.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_data)

    p = sub.add_parser("doctor", help="name what went wrong in a run or study folder",
                       description="Exit 0 when nothing is wrong, 1 when a problem is found.")
    p.add_argument("path", metavar="RUN_DIR|STUDY_DIR")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--lang", choices=("en", "es"), default="en", help="language (default: en)")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("study", help="run a study (preset or TOML file) and write its report",
                       description=(
        "Run every configuration of a study with several seeds, compare each with the base "
        "(mean ± sd, 95%% Welch interval, 'within noise' marks), train the final model, and "
        "write results.csv, plots/, report.md and report.html. Re-running on the same folder "
        "resumes: finished runs are skipped, an interrupted run continues from its last epoch."))
    p.add_argument("study", nargs="?", metavar="PRESET|FILE",
                   help="a preset name (see --list) or a study .toml file")
    p.add_argument("--list", action="store_true", help="list the built-in presets and exit")
    p.add_argument("--out", metavar="DIR", help="study folder (default: studies/<name>)")
    p.add_argument("--seeds", type=int, metavar="N",
                   help="seeds per configuration (default: the study's, usually 3)")
    p.add_argument("--quick", action="store_true",
                   help="the study's quick form: a data subset and fewer epochs (minutes)")
    p.add_argument("--lang", choices=("en", "es"), default="en",
                   help="report language (default: en)")
    p.add_argument("--data-dir", help="folder with <name>/*.gz datasets (also: MNISTLAB_DATA)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"),
                   help="training device (default: the study's, auto)")
    p.add_argument("--workers", type=int, metavar="N",
                   help="processes training side by side, one thread each (default: one per CPU "
                   "core; small networks train faster this way than with threads; 1 = all in "
                   "this process)")
    p.add_argument("--one-by-one", action="store_true",
                   help="train every run alone instead of in cohorts (runs that differ only in "
                   "lr, momentum, weight decay, dropout or seed train together by default: same "
                   "numbers within seed noise, several times faster)")
    add_backend_flags(p, "unit of work (a cohort of runs, or a single run)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_study)

    p = sub.add_parser(
        "tune", help="search hyperparameters with Optuna (pruning, resumable, many workers)",
        formatter_class=argparse.RawDescriptionHelpFormatter, description=(
            "Search a space of settings with Optuna. Each trial is one training run on the\n"
            "training split, judged by its validation accuracy; after every epoch the pruner\n"
            "may stop a trial that is doing worse than earlier ones (pruned trials are marked\n"
            "in the table printed as trials finish). The study lives in a storage (default:\n"
            "DIR/tune.db, SQLite), so running the same command again resumes it, and several\n"
            "workers can share one search (see docs/tune.md). At the end the best\n"
            "configuration is retrained with fresh seeds and scored once on the test set, and\n"
            "DIR gets report.md, report.html, trials.csv, best.toml and space.toml."),
        epilog=(
            "examples:\n"
            "  mnistlab tune --list\n"
            "  mnistlab tune fashion-mlp --quick --trials 6 --out tunes/try\n"
            "  mnistlab tune fashion-mlp --trials 40 --out tunes/fashion-mlp --lang es\n"
            "  mnistlab tune my-space.toml --trials 100 --pruner hyperband --out tunes/mine\n"
            "many workers, one search (each adds trials until the study holds N):\n"
            "  mnistlab tune fashion-mlp --trials 200 --out tunes/w1 --no-report \\\n"
            "      --storage postgresql://USER:PASS@HOST/DB\n\n"
            "SQLite (the default) serves a few workers on one machine that share DIR; use\n"
            "PostgreSQL for more workers or several machines (docs/tune.md)."))
    p.add_argument("space", nargs="?", metavar="SPACE.toml|PRESET",
                   help="a search-space file ([base] + [space.NAME] tables, see docs/tune.md) "
                   "or a preset name (see --list)")
    p.add_argument("--list", action="store_true", help="list the built-in search spaces")
    p.add_argument("--trials", type=int, default=20, metavar="N",
                   help="finished (complete or pruned) trials the study should hold, counting "
                   "those of earlier runs and other workers; with several workers a few more "
                   "may finish, one per worker at most (default: 20)")
    p.add_argument("--out", metavar="DIR", help="tune folder (default: tunes/<name>)")
    p.add_argument("--storage", metavar="URL",
                   help="SQLAlchemy database URL shared by workers, e.g. "
                   "postgresql://user:pass@host:5432/db (default: sqlite:///DIR/tune.db)")
    p.add_argument("--study-name", metavar="NAME",
                   help="study name inside the storage (default: the space's name)")
    p.add_argument("--seed", type=int, default=0,
                   help="TPE sampler seed; trial k draws its random numbers from (seed, k), so "
                   "one worker is reproducible (default: 0)")
    p.add_argument("--pruner", choices=("median", "hyperband", "none"), default="median",
                   help="stop poor trials early: median (below the median of earlier trials at "
                   "the same epoch), hyperband, or none (default: median)")
    p.add_argument("--retrain-seeds", type=int, default=3, metavar="K",
                   help="retrain the best configuration with K fresh seeds and score it on the "
                   "test set; 0 skips it (default: 3)")
    p.add_argument("--quick", action="store_true",
                   help="the quick form: a data subset and at most a few epochs (seconds to "
                   "minutes; for trying the pipeline, not for results)")
    p.add_argument("--no-report", action="store_true",
                   help="search only: no retraining and no report (extra workers)")
    p.add_argument("--lang", choices=("en", "es"), default="en",
                   help="report language (default: en)")
    p.add_argument("--data-dir", help="folder with <name>/*.gz datasets (also: MNISTLAB_DATA)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"),
                   help="training device (default: the space's, auto)")
    add_backend_flags(p, "trial")
    p.add_argument("--quiet", action="store_true", help="no trial table; one line at the end")
    p.set_defaults(func=cmd_tune)

    p = sub.add_parser("predict", help="predict the class of your own images (files or folders)",
                       description="Images are preprocessed the way MNIST was made: grayscale, "
                       "light backgrounds inverted, cropped to the ink, fitted in 20x20 and "
                       "centred by mass in 28x28. Exit 1 if any image could not be read.")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files, or folders of them")
    p.add_argument("--top", type=int, default=3, help="classes shown per image (default: 3)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--show", metavar="OUT.png",
                   help="save a sheet: each input beside what the model saw")
    p.add_argument("--style", choices=("strokes", "objects", "plain"), default=None,
                   help="preprocessing (default: from the run's dataset)")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("export", help="export a trained run to ONNX, checked against PyTorch")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--format", choices=("onnx",), default="onnx", help="(default: onnx)")
    p.add_argument("--out", required=True, metavar="FILE", help="e.g. model.onnx")
    p.add_argument("--no-check", action="store_true", help="skip the onnxruntime parity check")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_export)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    with interrupt.handling():  # Ctrl-C/SIGTERM: training stops after its step, work is kept
        try:
            return int(args.func(args) or 0)
        except MnistlabError as exc:
            return _error(str(exc), exc.exit_code)
        except OSError as exc:  # the disk, not a bug: full, read-only, gone
            where = f"{exc.filename}: " if exc.filename else ""
            return _error(f"{where}{exc.strerror or exc}; free space or fix the permissions, "
                          "then run the same command again (finished work is kept)", 1)
        except KeyboardInterrupt:
            stderr.print("interrupted; what was finished is kept (run the same command again "
                         "to continue)")
            return interrupt.exit_code()


def _error(message: str, code: int) -> int:
    stderr.print(Text.assemble(("error: ", "bold red"), message), soft_wrap=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
