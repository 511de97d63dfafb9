"""`mnistlab study` and `mnistlab tune`: the flags become StudyOptions / TuneOptions (checked
there, once), the API runs the job, and one line says where the results are."""

from __future__ import annotations

import argparse
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.markup import escape

from ..errors import MnistlabError
from ..messages import number, t
from .common import (
    add_data_and_device,
    add_lang,
    add_log_flags,
    add_placement_flags,
    path_text,
    placement_from_args,
    stderr,
    stdout,
    warn_line,
)

if TYPE_CHECKING:
    from ..tune.search import TuneResult

STUDY = ("Run every configuration of a study with several seeds, compare each with the base "
         "(mean ± sd, 95% interval seed by seed, 'within noise' marks), train the final model, and "
         "write results.csv, plots/, report.md and report.html. Re-running on the same folder "
         "resumes: finished runs are skipped, an interrupted run continues from its last epoch.")


def add_study(p: argparse.ArgumentParser) -> None:
    p.add_argument("study", nargs="?", metavar="PRESET|FILE",
                   help="a preset name (see --list) or a study .toml file (its keys: "
                   "docs/studies.md)")
    p.add_argument("--list", action="store_true", help="list the built-in presets and exit")
    p.add_argument("--out", type=path_text, metavar="DIR",
                   help="study folder (default: studies/<name>, with --quick "
                   "studies/<name>-quick)")
    p.add_argument("--seeds", type=int, metavar="N",
                   help="seeds per configuration (default: the study's, usually 3)")
    p.add_argument("--quick", action="store_true",
                   help="the study's quick form: a data subset, and fewer epochs where the "
                   "study caps them (minutes)")
    add_lang(p, "the report's, the progress bars', the final model's figures', --list's and "
                "the closing line's")
    add_data_and_device(p, "study")
    p.add_argument("--workers", type=int, metavar="N",
                   help="processes training side by side, one thread each (default: one per CPU "
                   "core, one on a GPU; small networks train faster this way than with "
                   "threads; 1 = all in this process; a number also shares a GPU)")
    p.add_argument("--one-by-one", action="store_true",
                   help="train every run alone instead of in cohorts (runs of the mlp that "
                   "differ only in lr, momentum, weight decay, dropout or seed train together by "
                   "default: on a CPU the same numbers to float rounding, a run that diverges "
                   "excepted, several times faster)")
    add_placement_flags(p, "unit of work (a cohort of runs, or a single run)")
    add_log_flags(p, "the study (a parent run) and each run it trains (its children)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def run_study(args: argparse.Namespace) -> int:
    from ..api import run_study as study
    from ..progress import StudyProgress
    from ..study import StudyOptions, list_presets, load_study

    if args.list and args.study:  # (hunt: the study given was passed over without a word)
        raise MnistlabError(f"--list shows the presets and runs nothing; leave out "
                            f"{args.study!r} to list them, or --list to run it")
    if args.list or not args.study:
        _list_studies(list_presets(), load_study, args.lang)
        if args.list:
            return 0
        stderr.print(f"error: {t(args.lang, 'cli.list.give_study')}")
        return 2
    options = StudyOptions(seeds=args.seeds, quick=args.quick, lang=args.lang,
                           data_dir=args.data_dir, device=args.device, workers=args.workers,
                           cohorts=not args.one_by_one, placement=placement_from_args(args),
                           log=args.log, mlflow_uri=args.mlflow_uri)
    progress = StudyProgress(stderr, silent=args.quiet, lang=args.lang)
    result = study(args.study, args.out, options=options, progress=progress, warn=warn_line)
    rows = result.distinct_rows()  # a final may be a variant: one run
    runs = len({row.read_from or row.key for row in rows})  # the run folders
    read_off = len({row.key for row in rows if row.read_from})  # shorter runs, not trained
    lang = args.lang  # the report's language, and its command's last words
    more = t(lang, "cli.read_off", k=read_off) if read_off else ""
    stdout.print(t(lang, "cli.study_done", out=f"[bold]{escape(str(result.out))}[/]", n=runs,
                   more=more, report=escape(str(result.out / "report.md"))), soft_wrap=True)
    if result.seeds_stored:
        stderr.print(t(lang, "cli.seeds_stored", n=result.seeds_stored))
    if any(r.status == "diverged" for r in result.final_rows):
        stderr.print(f"[red]error:[/] {t(lang, 'cli.final_diverged')}")
        return 1
    return 0


def _list_studies(names: list[str], load: Callable[[str], Any], lang: str) -> None:
    from rich.table import Table

    table = Table(title=t(lang, "cli.list.studies"))
    for column in ("preset", "what", "runs"):  # a name is typed: whole, never cut (hunt)
        table.add_column(t(lang, f"cli.list.{column}"), overflow="fold",
                         no_wrap=column == "preset")
    for name in names:
        spec = load(name)
        cells = sum(len(e.variants) for e in spec.experiments)
        table.add_row(name, spec.text("title", lang),
                      t(lang, "cli.list.settings_seeds", cells=cells, seeds=spec.seeds))
    stdout.print(table)


TUNE = """\
Search a space of settings with Optuna. Each trial is one training run on the training
split, judged by its validation accuracy; after every epoch the pruner may stop a trial
that is doing worse than earlier ones (pruned trials are marked in the table printed as
trials finish). The study lives in a storage (default: DIR/tune.db, SQLite), so running
the same command again resumes it, and several workers can share one search (see
docs/tune.md). At the end the best configuration is retrained with fresh seeds and scored
once on the test set, and DIR gets report.md, report.html, trials.csv, best.toml and
space.toml."""

TUNE_EXAMPLES = """\
examples:
  mnistlab tune --list
  mnistlab tune fashion-mlp --quick --trials 6 --out tunes/try
  mnistlab tune fashion-mlp --trials 40 --out tunes/fashion-mlp --lang es
  mnistlab tune my-space.toml --trials 100 --pruner hyperband --out tunes/mine
many workers, one search (each adds trials until the study holds N):
  mnistlab tune fashion-mlp --trials 200 --out tunes/w1 --no-report \\
      --storage postgresql://USER:PASS@HOST/DB

SQLite (the default) serves a few workers on one machine that share DIR; use
PostgreSQL for more workers or several machines (docs/tune.md)."""


def add_tune(p: argparse.ArgumentParser) -> None:
    from ..tune.search import PRUNERS

    p.add_argument("space", nargs="?", metavar="SPACE.toml|PRESET",
                   help="a search-space file ([base] + [space.NAME] tables, see docs/tune.md) "
                   "or a preset name (see --list)")
    p.add_argument("--list", action="store_true", help="list the built-in search spaces")
    p.add_argument("--trials", type=int, default=20, metavar="N",
                   help="finished (complete or pruned) trials the study should hold, counting "
                   "those of earlier runs and other workers; with several workers a few more "
                   "may finish, one per worker at most (default: 20)")
    p.add_argument("--out", type=path_text, metavar="DIR",
                   help="tune folder (default: tunes/<name>, with --quick "
                   "tunes/<name>-quick)")
    p.add_argument("--storage", metavar="URL",
                   help="SQLAlchemy database URL shared by workers, e.g. "
                   "postgresql://user:pass@host:5432/db (default: sqlite:///DIR/tune.db)")
    p.add_argument("--study-name", metavar="NAME",
                   help="study name inside the storage (default: the space's name)")
    p.add_argument("--seed", type=int, default=0, metavar="N",
                   help="TPE sampler seed; trial k draws its random numbers from (seed, k), so "
                   "one worker is reproducible (default: 0)")
    p.add_argument("--pruner", choices=PRUNERS, default="median",
                   help="stop poor trials early: median (below the median of earlier trials at "
                   "the same epoch), hyperband, or none (default: median)")
    p.add_argument("--retrain-seeds", type=int, default=None, metavar="K",
                   help="retrain the best configuration with K fresh seeds and score it on the "
                   "test set; 0 skips it (default: 3)")
    p.add_argument("--quick", action="store_true",
                   help="the quick form: a data subset and at most a few epochs (seconds to "
                   "minutes; for trying the pipeline, not for results)")
    p.add_argument("--no-report", action="store_true",
                   help="search only: no retraining and no report (extra workers)")
    add_lang(p, "the report's, the trials table's, the retrained runs' figures', --list's "
                "and the closing line's")
    add_data_and_device(p, "space")
    add_placement_flags(p, "trial")
    add_log_flags(p, "the search (a parent run) and each trial (its children)")
    p.add_argument("--quiet", action="store_true", help="no trial table; one line at the end")


def run_tune(args: argparse.Namespace) -> int:
    from ..api import run_tune as tune
    from ..tune import TuneOptions, list_presets, load_space
    from ..tune.display import TrialTable

    if args.list and args.space:
        raise MnistlabError(f"--list shows the search spaces and searches nothing; leave out "
                            f"{args.space!r} to list them, or --list to search it")
    if args.list or not args.space:
        _list_spaces(list_presets(), load_space, args.lang)
        if not args.list:
            stderr.print(f"error: {t(args.lang, 'cli.list.give_space')}")
        return 0 if args.list else 2
    if args.no_report and args.retrain_seeds is not None:  # (hunt: dropped without a word)
        warn_line(f"warning: --retrain-seeds {args.retrain_seeds} does nothing with "
                  "--no-report: nothing is retrained (the worker without it retrains)")
    seeds = 3 if args.retrain_seeds is None else args.retrain_seeds
    options = TuneOptions(trials=args.trials, storage=args.storage, study_name=args.study_name,
                          seed=args.seed, pruner=args.pruner, retrain_seeds=seeds,
                          report=not args.no_report, lang=args.lang, quick=args.quick,
                          data_dir=args.data_dir, device=args.device,
                          placement=placement_from_args(args), log=args.log,
                          mlflow_uri=args.mlflow_uri)
    with warnings.catch_warnings():  # said once, by the search itself (they were said twice)
        warnings.simplefilter("ignore")
        spec = options.apply(load_space(args.space))  # what the table names
    display = None if args.quiet else TrialTable(spec, stderr, args.lang)
    try:
        # the name or file as given, so the report can say the command that remakes it
        result = tune(args.space, args.out, options=options, display=display, warn=warn_line)
    finally:
        if display is not None:
            display.stop()
    stdout.print(_tune_line(result, Path(result.out), options.report, options.lang),
                 soft_wrap=True)
    return 0


def _tune_line(result: TuneResult, out: Path, report: bool, lang: str = "en") -> str:
    from ..report.tune import complete_count, other_counts  # the report's counts

    line = t(lang, "cli.tune_done", out=escape(str(out)), n=len(result.trials),
             complete=complete_count(result), pruned=len(result.by_state("PRUNED")),
             others=other_counts(result, lang), here=result.ran_here)  # 7 in all: 6 + 0 named
    if result.best is not None:
        line += t(lang, "cli.tune_best", number=result.best.number, value=result.best.value)
    tests = [run.summary.test_accuracy for run in result.retrained]
    scored = [v for v in tests if v is not None]  # a diverged run has no test score
    if scored:
        line += t(lang, "cli.tune_retrained", acc=sum(scored) / len(scored), n=len(scored))
    if len(scored) < len(tests):
        line += t(lang, "cli.tune_diverged", k=len(tests) - len(scored))
    if report:
        line += t(lang, "cli.report_at", report=escape(str(out / "report.md")))
    return line + f" · {number(result.seconds, '.0f', lang)} s"


def _list_spaces(names: list[str], load: Callable[[str], Any], lang: str) -> None:
    from rich.table import Table

    table = Table(title=t(lang, "cli.list.spaces"))
    for column in ("preset", "what", "searches"):
        table.add_column(t(lang, f"cli.list.{column}"), overflow="fold",
                         no_wrap=column == "preset")
    for name in names:
        spec = load(name)
        table.add_row(name, spec.text("title", lang), ", ".join(p.name for p in spec.params))
    stdout.print(table)
