"""`mnistlab train` and `mnistlab evaluate`."""

from __future__ import annotations

import argparse
import contextlib
import itertools
import shlex
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.markup import escape

from .. import files, interrupt
from ..columns import across_widths, one_row_each
from ..config import SETTINGS, TrainConfig, absolute_dir
from ..errors import MnistlabError
from ..messages import class_names, number, t
from .common import (
    RUN_DIR_HELP,
    add_config_flags,
    add_lang,
    add_log_flags,
    as_flag,
    check_run_usable,
    config_from_args,
    file_settings,
    flag,
    name_text,
    needed_path_text,
    path_text,
    print_members,
    print_summary,
    recipe_named,
    stderr,
    stdout,
    unread_data_dir,
    warn_line,
)

if TYPE_CHECKING:
    from rich.table import Table

    from ..training.evaluation import ClassificationReport, ClassScores


def add_train(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=needed_path_text, metavar="FILE",
                   help="TOML file of settings (flags override it)")
    p.add_argument("--recipe", type=name_text, metavar="NAME",
                   help="start from a tuned recipe, e.g. mnist-fast; --config and flags "
                   "override it; `--recipe list` shows them all")
    p.add_argument("--out", type=path_text, metavar="DIR",
                   help="run folder (default: runs/<time>-<dataset>-<model>); the same settings "
                   "resume it, a finished run is read back")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the run already in --out (by default the same settings resume "
                   "it and other settings are refused)")
    p.add_argument("--quiet", action="store_true", help="no progress bar; one line at the end")
    add_lang(p, "the progress lines', the results table's, the figures' (curves.png, "
                "confusion.png) and the doctor's")
    add_log_flags(p, "the run, epoch by epoch,")
    add_config_flags(p)


def unread_flags(args: argparse.Namespace, config: TrainConfig) -> list[str]:
    """A warning per flag given that the model, optimizer or validation chosen does not read
    (--hidden with a cnn, --momentum with adam): said, where it was dropped without a word."""
    from ..models import LAYER_FLAGS, shape_settings, unread_settings

    lines = []
    for name, readers in unread_settings(config.model).items():
        value = getattr(args, name, None)
        if value is not None:
            shown = as_flag(name, value)
            sized = LAYER_FLAGS.get(config.model) if name in shape_settings(readers[0]) else ""
            lines.append(f"warning: {shown} does nothing with --model {config.model}: only "
                         f"{' and '.join(readers)} read{'s' if len(readers) == 1 else ''} it"
                         + (f" ({config.model} is sized by {sized})" if sized else ""))
    momentum = _momentum_given(args, config)
    if momentum and config.momentum > 0 and config.optimizer != "sgd":
        lines.append(f"warning: {momentum} does nothing with --optimizer "
                     f"{config.optimizer}: it is SGD's ({config.optimizer} keeps its own "
                     "running averages of the gradient)")
    if momentum and config.optimizer == "sgd" and config.schedule == "onecycle":
        lines.append(f"warning: {momentum} does nothing with --schedule "
                     "onecycle: it cycles SGD's momentum from 0.95 to 0.85 and back itself")
    if config.early_stopping and config.early_stopping >= config.epochs:
        lines.append(f"warning: --early-stopping {config.early_stopping} never stops a run of "
                     f"{config.epochs} epoch{'s' * (config.epochs != 1)}: it stops after "
                     f"{config.early_stopping} epochs without a better validation accuracy, "
                     "after the best one")
    if getattr(args, "label_smoothing", None) and config.loss == "bce":  # (hunt: silent)
        lines.append(f"warning: --label-smoothing {args.label_smoothing} does nothing with "
                     "--loss bce: only ce and ce-on-softmax smooth their labels")
    if args.val_size is not None and config.val_from == "test":
        lines.append(f"warning: --val-size {args.val_size} does nothing with --val-from test: "
                     "the whole test set is the validation set, and every training image "
                     "trains")
    return lines + unread_data_dir(args.data_dir, config.dataset) + _recipe_set_again(args,
                                                                                       config)


def _momentum_given(args: argparse.Namespace, config: TrainConfig) -> str:
    """The momentum the user gave, as given: a flag, or a line of the --config file (a file's
    0.9 under Adam was dropped without the warning the flag gets); "" if neither did."""
    if args.momentum is not None:
        return f"--momentum {args.momentum}"
    if file_settings(args).get("momentum"):  # a run's config.toml lists it, at 0 unless SGD used it
        return f"momentum = {config.momentum} ({args.config})"
    return ""


def _recipe_set_again(args: argparse.Namespace, config: TrainConfig) -> list[str]:
    """A warning where --config (a run's config.toml lists every setting) and the flags set
    again every setting the recipe gives, to other values: the recipe then changes nothing."""
    from ..data import KNOWN_DATASETS
    from ..models import unread_settings
    from ..recipes import get_recipe

    if not args.recipe:
        return []
    given = get_recipe(args.recipe).settings
    in_file = set(file_settings(args))
    flags = {name for name in given if getattr(args, name, None) is not None}
    lines = []
    unread = [name for name in unread_settings(config.model)
              if name in given and name not in in_file | flags]  # the recipe's own values
    if unread:  # the model chosen by the flag, or by the --config file
        chosen = (f"--model {config.model}" if args.model else
                  f"the {config.model} that {args.config} chooses" if "model" in in_file else
                  f"model {config.model}")
        lines.append(f"warning: --recipe {args.recipe} gives {', '.join(unread)} for its "
                     f"{given.get('model', 'model')}, which {chosen} does not read; they do "
                     "nothing")
    tuned_for = given.get("dataset")  # the other known dataset (a folder may be a copy of
    if tuned_for and config.dataset in KNOWN_DATASETS and config.dataset != tuned_for:  # it)
        lines.append(f"warning: --recipe {args.recipe} was tuned and measured on {tuned_for}; "
                     f"on {config.dataset} its settings are a starting point, and its figures "
                     "in `--recipe list` do not apply")
    recipe = TrainConfig.from_dict(given, typed=False)
    if set(given) <= in_file | flags and any(getattr(config, k) != getattr(recipe, k)
                                             for k in given):
        who = (f"{args.config} and the flags set" if in_file and flags else
               f"{args.config} sets" if in_file else "the flags set")
        lines.append(f"warning: --recipe {args.recipe} changes nothing: {who} every setting "
                     f"it gives ({', '.join(given)}) again; leave the recipe out, or those "
                     "settings")
    return lines


def _list_recipes(args: argparse.Namespace) -> int:
    """`--recipe list`: the recipes as a table; other flags are refused (nothing trains)."""
    from rich.table import Table

    from ..recipes import RECIPES

    asked = [as_flag(k, v) if isinstance(v, bool) else flag(k)
             for k, v in vars(args).items() if k not in ("command", "func", "recipe")
             and (v is not None if k in SETTINGS else bool(v))  # a setting: None unless given
             and (k, v) != ("lang", "en")]  # --lang's default
    if asked:
        raise MnistlabError(f"--recipe list shows the recipes and trains nothing; leave "
                            f"out {', '.join(asked)} (or give a recipe's name)")
    title = "recipes (mnistlab train --recipe NAME; flags still override)"
    rows = [(recipe.name, recipe.goal, recipe.measured,
             [as_flag(k, v) for k, v in recipe.settings.items()]) for recipe in RECIPES.values()]
    headings = ("recipe", "tuned for", "measured", "settings")
    columns = {h: [row[i] if i < 3 else " ".join(row[3]) for row in rows]
               for i, h in enumerate(headings)}  # a name never breaks, text at its spaces,
    widths = across_widths(columns, stdout.width, breaks={  # settings between flags only
        "recipe": "\n", "tuned for": " ", "measured": " ", "settings": " (?=--)"})
    if not widths:  # each recipe a paragraph: rich folded "--filters 32,64,128,2" / "56"
        stdout.print(f"[bold]{title}[/]")
        for name, goal, measured, settings in rows:
            stdout.print(f"\n[bold]{name}[/]\ntuned for: {escape(goal)}\n"
                         f"measured: {escape(measured)}\n"
                         f"settings:\n{_packed(settings, stdout.width)}")
        return 0
    table = Table(title=title)
    for heading, width in zip(headings, widths):
        table.add_column(heading, width=width, overflow="fold")
    for name, goal, measured, settings in rows:
        table.add_row(name, goal, measured, _packed(settings, widths[3]))
    stdout.print(table)
    return 0


def _packed(pairs: list[str], width: int) -> str:
    """`--flag value` pairs on lines of at most `width`, each pair whole (rich broke lines at
    any space: "--label-smo" / "othing 0.1" with fold, "--dense" / "256" without)."""
    lines = [""]
    for pair in pairs:
        if lines[-1] and len(lines[-1]) + 1 + len(pair) > width:
            lines.append("")
        lines[-1] = f"{lines[-1]} {pair}".lstrip()
    return "\n".join(lines)


def run_train(args: argparse.Namespace) -> int:
    from ..progress import RichReporter, SilentReporter
    from ..recipes import get_recipe
    from ..runs import ReplacementStopped
    from ..training import train

    if args.recipe == "list":
        return _list_recipes(args)
    recipe = get_recipe(args.recipe).settings if args.recipe else None
    config = _absolute_paths(config_from_args(args, recipe))
    for line in unread_flags(args, config):
        warn_line(line)
    if args.out:
        files.check_not_inside_ours(Path(args.out))
    made = [] if args.out or Path("runs").is_dir() else [Path("runs")]
    out = Path(args.out) if args.out else default_out(config)
    if args.out:  # a new --out, and its parents, are made by the command too
        made = [p for p in (out, *out.parents) if not p.exists()]
    else:
        made.insert(0, out)
    reporter = SilentReporter() if args.quiet else RichReporter(stderr, lang=args.lang)
    try:
        with _taken_back_if_left_empty(out, made), \
                recipe_named(args, recipe):  # the data's refusals of its settings
            tracking = _tracking(args, out)  # a missing extra, a silent server: before training
            result = train(config, out=out, reporter=reporter, overwrite=args.overwrite,
                           refuse_damaged=True,  # a finished run's damaged summary: kept
                           hooks=tracking.train_hooks() if tracking else None, lang=args.lang)
    except ReplacementStopped as stop:  # the replaced run is back: a stop, not an error
        stderr.print(f"\n{escape(str(stop))}")
        return stop.exit_code
    except KeyboardInterrupt:  # outside the epochs (the final scoring, writing the files)
        if not out.is_dir():
            raise
        # before any epoch (reading the data, say) there is no checkpoint
        stderr.print(f"\n{escape(_resume_line(args, out, (out / 'checkpoint.pt').is_file()))}")
        return interrupt.exit_code()
    summary = result.summary
    if result.reused and tracking is not None:
        tracking.finished_folder()
    if result.reused:
        stderr.print(escape(t(args.lang, "live.reused", out=out)))
    if not args.quiet:
        print_summary(summary, out, args.lang)
    else:
        # the doctor's problems stay on the one line, as codes (`mnistlab doctor` explains)
        problems = ",".join(f.code for f in summary.diagnoses if f.severity == "problem")
        figures = {"val_accuracy": summary.val_accuracy, "test_accuracy": summary.test_accuracy,
                   "status": summary.status, "problems": problems or None}
        print("  ".join([str(out), *(  # a figure not measured: left out; 4 places, as the
            f"{key}={value:.4f}" if isinstance(value, float) else f"{key}={value}"  # summary
            for key, value in figures.items() if value is not None)]))  # (0.19945514691574237)
    if summary.status == "diverged":
        more = (t(args.lang, "live.diverged.doctor", out=shlex.quote(str(out))) if args.quiet
                else t(args.lang, "live.diverged.panel"))
        stderr.print(f"[red]error:[/] {escape(t(args.lang, 'live.diverged', more=more))}")
        return 1
    if summary.status == "interrupted":
        below_bar = "" if args.quiet else "\n"  # the progress bar's line may be unfinished
        stderr.print(below_bar + escape(_resume_line(args, out, summary.epochs > 0)))
        return interrupt.exit_code()
    return 0


def _data_dir_for(args: argparse.Namespace, config: TrainConfig) -> TrainConfig:
    """`evaluate`'s --data-dir, else the run's own where it is still a folder. A run's that is
    gone is said as the run's (it was blamed on a --data-dir not given), and passed over."""
    from ..data.sources import KNOWN_DATASETS

    if args.data_dir:
        return config.replace(data_dir=args.data_dir)
    if config.data_dir and not Path(config.data_dir).expanduser().is_dir():
        if config.dataset in KNOWN_DATASETS:  # a folder given by its path does not read it
            warn_line(f"warning: the run's data_dir {config.data_dir} (in its settings) is no "
                      f"folder now; {config.dataset} is looked for without it (--data-dir DIR "
                      "names one)")
        return config.replace(data_dir=None)
    return config


def _absolute_paths(config: TrainConfig) -> TrainConfig:
    """A dataset folder and --data-dir as absolute paths, as config.toml keeps them: saved
    relative, `evaluate` from another working folder read them from there (the data "not there
    now", or a --data-dir it was not given)."""
    from ..data.sources import given_folder

    folder = given_folder(config.dataset)
    return config.replace(
        dataset=str(folder.absolute()) if folder is not None else config.dataset,
        data_dir=absolute_dir(config.data_dir))


def _resume_line(args: argparse.Namespace, out: Path, epochs_done: bool) -> str:
    """How an interrupted run goes on: from its last whole epoch (or its start, where none
    was whole); without --out each command makes a new folder, so the line names the --out
    that finds this one. In the run's language, as its other lines."""
    lang = args.lang
    changes = [] if args.out else [t(lang, "live.again.out", out=shlex.quote(str(out)))]
    if args.overwrite and epochs_done:  # run as it was, --overwrite replaces the kept epochs
        changes.append(t(lang, "live.again.no_overwrite"))
    again = " ".join([t(lang, "live.again"), f" {t(lang, 'and')} ".join(changes)]).strip()
    return t(lang, "live.interrupted", whence=t(lang, "live.whence." + ("last" if epochs_done
                                                                       else "start")),
             again=again, out=out)


def _tracking(args: argparse.Namespace, out: Path) -> Any:
    from ..config import check_loggers

    loggers = check_loggers(args.log, args.mlflow_uri)
    if not loggers:
        return None
    from ..runs import check_run_folder
    from ..tracking import Tracking

    check_run_folder(out)  # the embedded store is not made in someone else's folder
    return Tracking(loggers, out, mlflow_uri=args.mlflow_uri, lang=args.lang, warn=warn_line)


@contextlib.contextmanager
def _taken_back_if_left_empty(out: Path, made: list[Path]) -> Any:
    """What this command put into the run folder `out` and the folders it made (`made`,
    innermost first: the default run folder, made before the checks of `train` by
    default_out, `runs/`, or a new --out and its new parents), taken back where one of those
    checks refuses the run, or a Ctrl-C stops it, before anything is computed: config.toml
    and .lock, written when the folder is claimed, before the data and the model are checked,
    are nothing computed (a `--dataset` typo left such a folder in runs/, read as a killed run
    afterwards). A folder that held something before is left as it was."""
    from ..runs import LOCK_FILE

    ours = {"config.toml", LOCK_FILE}
    empty_before = out.is_dir() and not files.not_litter(out)
    try:
        yield
    except (MnistlabError, KeyboardInterrupt):
        with contextlib.suppress(OSError):  # not empty (or gone): kept
            if ((empty_before or out in made)  # .DS_Store beside them: still ours (review)
                    and files.not_litter(out) <= ours
                    and not files.held(out / LOCK_FILE)):  # another process's run: its own
                for name in ours:
                    (out / name).unlink(missing_ok=True)
        for folder in made:
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise


def default_out(config: TrainConfig) -> Path:
    """runs/<time>-<dataset>-<model>, made now: two commands started in the same second took
    one name, and the second was refused ("another process is running a training run in this
    folder") though neither was given --out. The second takes <name>-2, and so on."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    dataset = Path(config.dataset).name if Path(config.dataset).exists() else config.dataset
    base = Path("runs") / f"{stamp}-{dataset}-{config.model}"
    for n in itertools.count(1):
        out = base if n == 1 else base.with_name(f"{base.name}-{n}")
        try:
            out.mkdir(parents=True)  # atomic: of two at once, one makes it
        except FileExistsError:
            continue
        return out
    raise AssertionError("unreachable")  # pragma: no cover


EVALUATE = ("Score a trained run on its val or test split: precision, recall (the accuracy of "
            "each true class), F1 and support per class, their macro and support-weighted "
            "averages, accuracy and loss. A ratio with nothing to divide by is shown as 0, as "
            "scikit-learn does: the precision of a class the model never predicts, the recall "
            "of a class with no image, the F1 of a class with both at 0. A class with neither an "
            "image nor a prediction in the split is left out of the macro average, as "
            "scikit-learn leaves it out.")


def add_evaluate(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", metavar="RUN_DIR", help=RUN_DIR_HELP)
    p.add_argument("--split", choices=("val", "test"), default="test",
                   help="which split to score (default: test)")
    p.add_argument("--data-dir", metavar="DIR", type=path_text,
                   help="where datasets live (default: as when trained)")
    p.add_argument("--dataset", metavar="DIR", type=needed_path_text,
                   help="only for a run trained on a folder of its own (not a dataset named "
                   "mnist or fashion-mnist): where that folder is now, if it has moved "
                   "(default: where it was when trained; the data must be the same)")
    p.add_argument("--json", action="store_true",
                   help="print JSON: accuracy, loss, n, tta_views (null without test-time "
                   "augmentation), per_class_accuracy (null for a class with no image), "
                   "classification_report and members (an ensemble's members scored alone, by "
                   "seed; null for one model)")
    p.add_argument("--tta", action=argparse.BooleanOptionalAction, default=None,
                   help="average the softmax over shifted (and, where trained so, mirrored) "
                   "copies of each image (default: as the run was trained, its --tta)")
    add_lang(p, "the table's (--json keeps its keys and class names)")


def run_evaluate(args: argparse.Namespace) -> int:
    import torch

    from ..data import load_dataset
    from ..data.sources import KNOWN_DATASETS, given_folder
    from ..data.tensors import prepare_data, test_tensors
    from ..errors import MnistlabError
    from ..progress import passes
    from ..runs import check_same_data, load_model, recorded_data_folder
    from ..training import evaluate
    from ..training.evaluation import classification_report, per_class_accuracy, tta_view_count

    run_dir = Path(args.run_dir)
    model, payload = load_model(run_dir)  # first: it says what is wrong with a folder
    run_dir = run_dir.parent if run_dir.is_file() else run_dir  # model.pt given itself
    config = TrainConfig.from_dict(payload["config"])  # the model's own, not an edited copy
    config = _data_dir_for(args, config)
    for line in unread_data_dir(args.data_dir, args.dataset or config.dataset,
                                "--dataset " if args.dataset else "the run's dataset "):
        warn_line(line)
    if args.dataset:
        config = config.replace(dataset=args.dataset)
    elif (found := recorded_data_folder(run_dir, config.dataset)) is not None:
        config = config.replace(dataset=str(found))  # a relative path, read from elsewhere
    elif config.dataset not in KNOWN_DATASETS and given_folder(config.dataset) is None:
        here = "" if Path(config.dataset).expanduser().is_absolute() else f" (in {Path.cwd()})"
        raise MnistlabError(f"{run_dir}: trained on the data in {config.dataset}, which is not "
                            f"there now{here}; give where it is with --dataset DIR")
    check_run_usable(run_dir, scores_diverged=True)
    dataset = load_dataset(config.dataset, data_dir=config.data_dir)
    check_same_data(payload, dataset, config, chosen=bool(args.dataset))
    if args.split == "test":  # not split off the training set: not copied (1M images: 17 s)
        x, y = test_tensors(dataset, torch.device("cpu"))
        if config.val_from == "test":  # as the split's making said it
            warn_line("warning: val-from=test: this run validated on the test set; its test "
                      "accuracy is no longer an unbiased estimate")
    else:
        splits = prepare_data(config.replace(device="cpu"), dataset)
        x, y = splits.val_x, splits.val_y
    k, names = len(dataset.class_names), list(dataset.class_names)
    if len(y) == 0 and args.split == "val":
        raise MnistlabError(f"{run_dir}: the val split holds no images (val-size 0 when it "
                            "was trained); use --split test")
    if len(y) == 0:
        raise MnistlabError(f"{run_dir}: the test set of {config.dataset} holds no images; "
                            "give data with test images (--dataset DIR)")
    tta = config.tta if args.tta is None else args.tta
    views = tta_view_count(config, tuple(x.shape[1:])) if tta else None
    multiplied = passes(views or 1, config.ensemble)  # each a second's pass on a CPU
    with (stderr.status(f"scoring {len(y):,} images with {multiplied}") if multiplied
          else contextlib.nullcontext()):
        result = evaluate(model, x, y, config, dataset.mean, dataset.std, k, tta=tta)
    matrix = result.confusion(y, k)
    report = classification_report(matrix, names)
    # an ensemble's members, each alone, read off the same pass
    members = [{"seed": config.seed + index, f"{args.split}_accuracy": accuracy}
               for index, accuracy in enumerate(result.member_accuracies or [])] or None
    if args.json:
        print(files.json_text({"split": args.split, "accuracy": result.accuracy,
                               "loss": result.loss, "n": len(y), "tta_views": views,
                               "per_class_accuracy": per_class_accuracy(matrix, names),
                               "classification_report": report.to_dict(), "members": members},
                              indent=2))
        return 0
    # the heading is a line of its own: as a table title it wrapped in the table's width
    lang = args.lang
    with_tta = t(lang, "eval.tta", views=views) if views else ""
    stdout.print(t(lang, "eval.heading", run=f"[bold]{escape(str(run_dir))}[/]",
                   split=t(lang, f"live.split.{args.split}"), n=len(y), tta=with_tta),
                 soft_wrap=True)
    stdout.print(report_table(report, stdout.width, lang))
    stdout.print(t(lang, "eval.result", acc=result.accuracy, loss=result.loss))
    if members:
        print_members(members, lang)
    return 0


def report_table(report: ClassificationReport, space: int = 80, lang: str = "en") -> Table:
    """The classification report as scikit-learn prints it: a row per class, then accuracy
    and the two averages. No side borders, so that it fits 50 columns without wrapping. A
    long class name wraps at its spaces; below the width of its figures side by side (about
    45 columns), each class is a few rows of one figure each. Rich cut the figures to "0.9…"
    and "precis…" to keep a class name on one line."""
    from rich import box
    from rich.table import Table

    # no space outside the edge columns: with one there, rich drew a first column of fixed
    # width a character narrower than asked (its padding counted once)
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True,
                  caption=t(lang, "eval.caption"))

    def figures(s: ClassScores) -> list[str]:
        return [number(s.precision, ".4f", lang), number(s.recall, ".4f", lang),
                number(s.f1, ".4f", lang), number(s.support, ",", lang)]

    names = class_names(list(report.classes), lang)  # Fashion-MNIST's clothes in Spanish
    rows = [(escape(name), figures(s)) for name, s in zip(names, report.classes.values())]
    accuracy = ["", "", number(report.accuracy, ".4f", lang),
                number(report.macro_avg.support, ",", lang)]
    said = {key: t(lang, f"eval.{key}") for key in ("class", "precision", "recall", "f1",
                                                     "support", "accuracy", "macro", "weighted")}
    averages = [(said["macro"], figures(report.macro_avg)),
                (said["weighted"], figures(report.weighted_avg))]
    headings = tuple(said[key] for key in ("precision", "recall", "f1", "support"))
    every = [*rows, (said["accuracy"], accuracy), *averages]
    columns = {said["class"]: [name for name, _ in every],
               **{h: [row[i] for _, row in every] for i, h in enumerate(headings)}}
    # between two columns, a space of padding and a space of rule
    widths = across_widths(columns, space, border=2 * len(columns) - 2,
                           breaks={said["class"]: " "})
    if not widths:  # each figure on a row of its own, under its class
        def each(named: list[tuple[str, list[str]]]) -> list[tuple[str, str]]:
            return [pair for name, row in named
                    for pair in ((name, ""), *((f"  {h}", v) for h, v in zip(headings, row)))]

        return one_row_each(table, [*each(rows), (said["accuracy"], accuracy[2]),
                                    (f"  {said['support']}", accuracy[3]), *each(averages)])
    table.add_column(said["class"], width=widths[0], overflow="fold")
    for column, width in zip(headings, widths[1:]):
        table.add_column(column, justify="right", width=width, no_wrap=True)
    for name, row in rows:
        table.add_row(name, *row)
    table.add_section()
    table.add_row(said["accuracy"], *accuracy, style="bold")
    for name, row in averages:
        table.add_row(name, *row)
    return table
