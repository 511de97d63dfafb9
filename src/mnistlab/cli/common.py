"""What the commands share: the consoles, the training-settings flags (read off TrainConfig's
fields), where the work runs, and how results and findings are printed."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel

from ..columns import across_widths, one_row_each
from ..config import TrainConfig, read_settings
from ..errors import MnistlabError
from ..files import StderrConsole
from ..messages import LANGS, after_colon, number, t
from ..progress import status_text

if TYPE_CHECKING:
    from ..records import Finding, RunSummary

class _Console(Console):
    """rich's Console, but a closed pipe (`mnistlab evaluate RUN | head -1`) is raised as
    BrokenPipeError, which the CLI turns into a quiet exit 141 (rich exits 1: "a problem")."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        raise BrokenPipeError


stdout = _Console(highlight=False)
stderr = StderrConsole(highlight=False, soft_wrap=True)  # lines stay whole in logs


def as_output(text: str, is_json: bool) -> str:
    """JSON as standard output can carry it: its characters as they are where the output is
    UTF-8, else as \\u escapes (PYTHONIOENCODING=ascii, a Latin-1 terminal): the output's own
    \\xe9 replacement was no JSON escape, and no reader took it (hunt)."""
    encoding = (getattr(sys.stdout, "encoding", None) or "").lower().replace("-", "")
    if not is_json or encoding.startswith("utf"):
        return text
    return json.dumps(json.loads(text), indent=2, ensure_ascii=True)


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def shown_default(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return '""' if value == "" else str(value)


# --- training settings -------------------------------------------------------------------------
def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field, its help and choices from the field itself; only the
    flags given override the defaults (and --config, and --recipe)."""
    group = parser.add_argument_group("training settings (also the keys of --config files)")
    for f in dataclasses.fields(TrainConfig):
        meta = f.metadata
        help_text = (meta["help"] if "(default: " in meta["help"]  # says more than "None"
                     else f"{meta['help']} (default: {shown_default(f.default)})")
        if isinstance(f.default, bool):
            group.add_argument(flag(f.name), dest=f.name, default=None,
                               action=argparse.BooleanOptionalAction, help=help_text)
            continue
        choices = meta.get("choices")
        group.add_argument(flag(f.name), dest=f.name, default=None, help=help_text,
                           type=path_text if f.name == "data_dir" else None,  # '' refused
                           metavar=("{" + ",".join(c or '""' for c in choices) + "}"
                                    if choices else meta.get("metavar")))


def config_from_args(args: argparse.Namespace, base: dict[str, Any] | None = None) -> TrainConfig:
    """The defaults, then `base` (a recipe), then --config, then the flags given. A setting
    the recipe gave that the others make wrong (its flip with --dataset mnist, say) is named
    as the recipe's, with the flag that overrides it."""

    data = dict(base or {})
    from_file = file_settings(args)
    data.update(from_file)
    for f in dataclasses.fields(TrainConfig):
        value = getattr(args, f.name, None)
        if value is not None:
            data[f.name] = value
    try:
        return TrainConfig.from_dict(data, where=getattr(args, "config", None) or "settings",
                                     typed=False)  # the flags given are text
    except MnistlabError as exc:
        setting = _setting_of(str(exc))
        in_file = setting in {k.replace("-", "_") for k in from_file}
        if setting in (base or {}) and not in_file and data.get(setting) == base[setting]:
            raise MnistlabError(f"{exc}{recipe_note(args, setting, base[setting])}") from None
        if in_file and getattr(args, setting, None) is None:  # the file's value, not a flag's
            named, colon, rest = str(exc).partition(":")
            if named.replace("-", "_") == setting:  # the key as files spell it, not as a flag
                named = setting
            raise MnistlabError(f"{args.config}: {named}{colon}{rest}") from None
        raise


def file_settings(args: argparse.Namespace) -> dict[str, Any]:
    """What --config gives, as the file writes it ({} without one)."""
    if not getattr(args, "config", None):
        return {}
    settings = read_settings(args.config)
    if not settings:  # an unsaved or cut file trained the defaults without a word
        raise MnistlabError(f"{args.config}: holds no settings; write one `name = value` per "
                            "line (e.g. epochs = 3; `mnistlab train --help` lists them), or "
                            "leave --config out")
    return settings


def _setting_of(message: str) -> str:
    """The setting a message is about: "val-size: ..." and "train-subset 40,000: ..." name
    theirs first."""
    return (message.split(":")[0].strip().split(" ") or [""])[0].replace("-", "_")


def recipe_note(args: argparse.Namespace, setting: str, value: Any) -> str:
    """" (--val-size 2000 comes from --recipe fashion-best: give --val-size to change it)"."""
    return (f" ({flag(setting)} {shown_default(value)} comes from --recipe {args.recipe}: "
            f"give {flag(setting)} to change it)")


@contextlib.contextmanager
def recipe_named(args: argparse.Namespace, base: dict[str, Any] | None) -> Iterator[None]:
    """Errors and warnings raised meanwhile about a setting the recipe or the --config file
    gave (and no flag overrode) name where it came from, as config_from_args does for those
    found building the config: a recipe's val-size of 2,000 refused for a dataset of 1,500
    images read as the user's, a file's dataset not found read as a flag's."""
    from_file = {k.replace("-", "_"): v for k, v in file_settings(args).items()}

    def source_note(message: str) -> str:
        setting = _setting_of(message)
        if getattr(args, setting, None) is not None:  # a flag's own value
            return ""
        if setting in from_file:
            return (f" ({flag(setting)} {shown_default(from_file[setting])} comes from "
                    f"--config {args.config}: change it there, or give {flag(setting)})")
        return recipe_note(args, setting, base[setting]) if base and setting in base else ""

    formatted = warnings.formatwarning

    def named(message: Any, *rest: Any, **kw: Any) -> str:
        text = formatted(message, *rest, **kw)
        note = source_note(str(message))
        return text[:-1] + note + "\n" if note and text.endswith("\n") else text

    warnings.formatwarning = named
    try:
        yield
    except MnistlabError as exc:
        note = source_note(str(exc))
        if not note:
            raise
        raise MnistlabError(f"{exc}{note}") from None
    finally:
        warnings.formatwarning = formatted


def as_flag(name: str, value: Any) -> str:
    """A setting as the flag that gives it: ('batchnorm', True) -> '--batchnorm'."""
    text = flag(name)
    if isinstance(value, bool):
        return text if value else "--no-" + text[2:]
    return f"{text} {','.join(map(str, value)) if isinstance(value, list) else value}"


def add_lang(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--lang", choices=LANGS, default="en",
                        help=f"{what} language (default: en)")


def add_data_and_device(parser: argparse.ArgumentParser, whose: str) -> None:
    from ..config import DATA_DIR_HELP, DEVICES

    parser.add_argument("--data-dir", metavar="DIR", type=path_text, help=DATA_DIR_HELP)
    parser.add_argument("--device", choices=DEVICES,
                        help=f"training device (default: the {whose}'s, usually auto)")


# --- where the work runs ---------------------------------------------------------------------
def add_placement_flags(parser: argparse.ArgumentParser, unit: str) -> None:
    from ..raycluster import BACKENDS, TaskResources

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


def placement_from_args(args: argparse.Namespace) -> Any:
    from ..raycluster import Placement

    return Placement(args.backend, args.address, args.task_cpus, args.task_gpus,
                     args.task_retries)


# --- tracking ---------------------------------------------------------------------------------
def add_log_flags(parser: argparse.ArgumentParser, what: str) -> None:
    from ..config import LOGGERS

    group = parser.add_argument_group(
        "tracking (docs/tracking.md)",
        f"also log {what} where you already look. Needs the extra: "
        "pip install \"mnistlab[tracking]\".")
    group.add_argument("--log", metavar=",".join(LOGGERS), default="",
                       help="one or both: TensorBoard event files in DIR/tensorboard; MLflow "
                       "runs in the store of --mlflow-uri (default: none)")
    group.add_argument("--mlflow-uri", metavar="URI",
                       help="MLflow tracking URI, e.g. http://127.0.0.1:5000 (default: "
                       "MLFLOW_TRACKING_URI, else an SQLite store in DIR/mlflow.db)")


def unread_data_dir(data_dir: str | None, dataset: str, named: str = "--dataset ") -> list[str]:
    """The warning where --data-dir is given beside a dataset named by its folder, which is
    read where it is: the flag was passed over without a word."""
    from ..data.sources import KNOWN_DATASETS, given_folder

    if not data_dir or given_folder(dataset) is None:
        return []  # a known name; or neither a name nor a folder: its own error follows
    return [f"warning: --data-dir {data_dir} does nothing with {named}{dataset}: a folder given "
            f"by its path is read where it is (--data-dir says where "
            f"{' and '.join(KNOWN_DATASETS)} are)"]


def warn_line(line: str) -> None:
    """A tracking server that stopped answering: one line on stderr, the work goes on."""

    stderr.print(f"[yellow]{escape(line)}[/]")


def error_line(message: str, code: int) -> int:
    """`error: message` on stderr (one line, never wrapped), and `code` to exit with."""
    from rich.text import Text

    stderr.print(Text.assemble(("error: ", "bold red"), message), soft_wrap=True)
    return code


# --- printing --------------------------------------------------------------------------------
COLOURS = {"problem": "red", "warning": "yellow", "info": "cyan"}


def print_findings(findings: Sequence[Finding], lang: str = "en",
                   console: Console = stdout) -> None:
    """The doctor's panel: each finding's severity, title, evidence, explanation and fix."""
    if not findings:
        return
    lines = []
    for f in findings:
        text = {part: escape(words) for part, words in f.text(lang).items()}  # names, paths
        severity = t(lang, f"severity.{f.severity}")
        lines.append(f"[bold {COLOURS.get(f.severity, 'white')}]{severity}[/] "
                     f"[bold]{text['title']}[/] [dim]({f.code})[/]\n  [italic]{text['evidence']}"
                     f"[/]\n  {text['explanation']}\n  [bold]{t(lang, 'cli.fix')}[/] "
                     f"{after_colon(text['fix'], lang)}")
    console.print(Panel("\n\n".join(lines), title=t(lang, "cli.doctor"),
                        border_style="magenta"))


def print_summary(summary: RunSummary, out: Path | None, lang: str = "en") -> None:
    """The run's results table, its ensemble's members and the doctor's findings, in `lang`."""
    from rich.table import Table

    def pct(value: Any) -> str:
        return "—" if value is None else number(value, ".4f", lang)

    extras = t(lang, "live.tta", n=summary.tta_views) if summary.tta_views else ""
    extras += t(lang, "live.bf16") if summary.precision == "bf16" else ""
    if summary.cuda_graphs is not None:
        extras += t(lang, "live.cuda_graphs" if summary.cuda_graphs else
                    "live.cuda_graphs_failed")
    kind = (t(lang, "live.ensemble_of", n=len(summary.members)) if summary.members
            else t(lang, "live.single_run"))
    table = Table(title=t(lang, "live.summary", dataset=escape(summary.dataset),
                          model=summary.model, parameters=summary.parameters, kind=kind,
                          extras=extras))
    # the epoch that is scored, where it is not the last
    best = t(lang, "live.best_epoch", epoch=summary.best_epoch) if summary.best_epoch else ""
    cells = {t(lang, "col.status"): status_text(summary.status, lang),
             t(lang, "live.col.epochs"): f"{summary.epochs}/{summary.epochs_planned}{best}",
             t(lang, "live.col.seconds"): number(summary.seconds, ".1f", lang),
             t(lang, "live.col.train_eval"): pct(summary.train_accuracy_eval),
             t(lang, "live.col.train_running"): pct(summary.train_accuracy_running),
             t(lang, "live.col.val"): pct(summary.val_accuracy),
             t(lang, "live.col.test"): pct(summary.test_accuracy)}
    one_line = {heading.replace("\n", " "): cell for heading, cell in cells.items()}
    widths = across_widths(one_line, stdout.width)  # a heading on two lines (Spanish's
    if widths:  # "exact.\nval.") where the terminal has room for it on one (hunt)
        cells = one_line
    else:
        widths = across_widths(cells, stdout.width)
    if widths:  # rich's own sizing cut "early-stopped" to "early-st…" at 80 columns
        for column, width in zip(cells, widths):
            table.add_column(column, justify="right", width=width)
        table.add_row(*cells.values())
    else:  # a narrow terminal cut every figure to "0.…": one row per figure instead
        one_row_each(table, cells.items())
    stdout.print(table)
    if summary.metric == "binary-accuracy":
        stdout.print(t(lang, "live.binary_metric", metric=pct(summary.val_metric),
                       acc=pct(summary.val_accuracy)))
    if summary.members:
        print_members(summary.members, lang)
    print_findings(summary.diagnoses, lang)
    if out is not None:  # whole: copied
        stdout.print(t(lang, "live.run_folder", out=f"[bold]{escape(str(out))}[/]"),
                     soft_wrap=True)


def print_members(members: list[dict[str, Any]], lang: str = "en") -> None:
    """Each member's accuracy alone, beside the ensemble's in the table above."""
    key = "test_accuracy" if members[0].get("test_accuracy") is not None else "val_accuracy"
    values = [m[key] for m in members if m.get(key) is not None]
    if not values:
        return
    each = "  ".join(f"{m['seed']}: {number(m[key], '.4f', lang)}" for m in members
                     if m.get(key) is not None)
    stdout.print(t(lang, "live.members_alone", split=t(lang, f"live.split.{key.split('_')[0]}"),
                   each=each, mean=sum(values) / len(values), best=max(values)))


def check_run_usable(run_dir: str | Path, *, scores_diverged: bool = False) -> None:
    """A run cut short by Ctrl-C still has a model: the weights at that moment. Commands that
    use it say so, in one line, and how to finish the run. A diverged run's model answers
    nothing (its outputs may be finite, just huge): predict and export refuse it; evaluate
    (`scores_diverged`) scores it, saying whose figures they are."""

    from ..runs import load_summary

    folder = Path(run_dir)
    if not (folder / "summary.json").is_file():
        if all((folder / name).is_file() for name in ("model.pt", "config.toml")):
            # a run killed between its model and its summary (doctor refused it; these used
            # it without a word); a model.pt alone is a model handed on, not a run
            stderr.print(f"[yellow]warning:[/] {escape(str(folder))} has not finished (no "
                         "summary.json: stopped, killed or out of memory): this is its model "
                         "as last saved; run the command that made it again to finish it",
                         highlight=False)
        return  # a model file given directly, or no run here (the command itself says so)
    try:
        summary = load_summary(folder)
    except MnistlabError:
        return  # a damaged summary: the command's own reading of the folder names it
    if summary.status == "interrupted":
        stderr.print(f"[yellow]warning:[/] {escape(str(folder))} was interrupted after "
                     f"{summary.epochs} of {summary.epochs_planned} epochs: this is its model "
                     "at that moment; run the command that made it again to finish it",
                     highlight=False)
    elif summary.status == "diverged" and not scores_diverged:
        raise MnistlabError(f"{folder}: the run diverged (its summary.json says so), so its "
                            "model answers nothing; train it again with a lower --lr")
    elif summary.status == "diverged":
        stderr.print(f"[yellow]warning:[/] {escape(str(folder))} diverged in training: these "
                     "are a diverged model's figures; train it again with a lower --lr",
                     highlight=False)


def _non_empty(fix: str, what: str = "path") -> Callable[[str], str]:
    """An argparse type for a path or name: an empty one (an unset variable in a script, say)
    is refused, not taken as 'no --out' (which writes to a default place) or no --recipe. A
    path's leading ~ is the home folder, as the shell makes it: `--out=~/runs/x` (which no
    shell expands) wrote into a folder named "~" here, printed as if it were home (hunt)."""
    def check(value: str) -> str:
        if not value.strip():
            raise argparse.ArgumentTypeError(f"an empty {what}; {fix}")
        return os.path.expanduser(value) if what == "path" else value
    return check


path_text = _non_empty("give a folder or file name, or leave the flag out for the default")
needed_path_text = _non_empty("give a file name")  # a flag with no default to fall back on
name_text = _non_empty("give a name, or leave the flag out", "name")
RUN_DIR_HELP = ("a run folder: what `mnistlab train --out` wrote, an ensemble's too (a study's "
                "runs/<key>/ and a search's retrain/<name>/ are run folders)")
