"""The whole jobs, as the CLI runs them and Python users call them: a study or a search from
its file to its report. Each is a few lines over the layers below (study/ or tune/ to train,
report/ to write up), which is why they live up here.

    import mnistlab
    result = mnistlab.run_study("fashion-hparams", options=StudyOptions(quick=True, seeds=1))
    search = mnistlab.run_tune("fashion-mlp", options=TuneOptions(trials=40, lang="es"))
"""

from __future__ import annotations

import contextlib
import functools
import os
import shlex
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from . import files, interrupt, runs
from .config import folder_given
from .device import public_call
from .errors import MnistlabError
from .messages import t
from .study.options import StudyOptions
from .study.run import StudyResult, train_study
from .study.spec import StudySpec, load_study, parse_study
from .tune.options import TuneOptions
from .tune.search import TuneResult, analyse, refresh, search
from .tune.space import TuneSpec, load_space, parse_space


@public_call("run_study")
@interrupt.scoped
def run_study(spec: str | os.PathLike | StudySpec | dict, out: str | Path | None = None, *,
          options: StudyOptions | None = None, progress: Any = None,
          warn: Callable[[str], None] | None = None) -> StudyResult:
    """Run a study (a preset name, a study file, a StudySpec or a dict of a study file's
    keys) into `out` (default:
    studies/<name>): train what is missing, write results.csv, plots/, report.md and
    report.html. Running it again on the same folder resumes. `progress=True` draws the
    study's bars on standard error, as the command does (or give a progress.StudyProgress).
    With `options.log`, this process also logs each run as it is recorded, and the study
    with its report at the end (tracking/; `warn` gets the one line said if a tracking server
    stops answering)."""
    from .progress import StudyProgress
    from .report.study import write_study_report

    options = _checked(options or StudyOptions(), StudyOptions)
    progress = _shown_as(progress, "progress", StudyProgress,
                         lambda: StudyProgress(lang=options.lang))
    source, spec, out = _job(spec, out, options, "studies", StudySpec, load_study, parse_study,
                             "a study: a preset's name, a study file")
    command = _command("study", source, out, options.flags())
    log = _study_log(options, spec, out, command, warn)  # a missing extra: said before training
    def report(result: StudyResult) -> None:
        # under the study's lock (train_study's `then`): a second command on this folder
        # waits, rather than clearing the report's temporaries as stale while they are
        # written, or writing its results.csv under this report; a first Ctrl-C while the
        # report is written (seconds) lets it finish whole, then stops the command (130):
        # raised anywhere in it, it could land in a garbage-collector callback and print a
        # traceback instead
        with interrupt.listening():
            write_study_report(result, lang=options.lang, command=command)

    with _ended_if_stopped(log):
        result = train_study(spec, out, backend=options.backend(), progress=progress,
                             on_run=log.run_finished if log else None, then=report,
                             lang=options.lang)
        if log is not None:
            log.finish(result.trained_runs())
    return result


def _shown_as(given: Any, name: str, kind: type, made: Callable[[], Any]) -> Any:
    """What shows a job as it runs: True, the command's own display (`made`); False or None,
    nothing; else what was given, an object of `kind`'s methods ("'bool' object has no
    attribute 'start'", seven frames down: hunt)."""
    if given is None or isinstance(given, (bool, np.bool_)):  # numpy's truths too (review)
        return made() if given else None
    if not hasattr(given, "start"):
        raise MnistlabError(f"{name}: give True (the command's display), False, or a "
                            f"{kind.__module__.removeprefix('mnistlab.')}.{kind.__name__}; "
                            f"got {type(given).__name__} {given!r:.40}")
    return given


@contextlib.contextmanager
def _ended_if_stopped(log: Any) -> Iterator[None]:
    """A study's or search's MLflow parent run ended KILLED or FAILED where the command stops
    before its end (it stayed RUNNING for good)."""
    try:
        yield
    except BaseException as exc:
        if log is not None:
            log.stopped(exc)
        raise


def _study_log(options: StudyOptions, spec: StudySpec, out: Path, command: str,
               warn: Callable[[str], None] | None) -> Any:
    if not options.log:
        return None
    from .tracking import StudyLog, Tracking

    tracking = Tracking(options.log, out, mlflow_uri=options.mlflow_uri, lang=options.lang,
                        warn=warn)
    params = {"study": spec.name, "title": spec.title, "seeds": spec.seeds,
              "quick": options.quick, "backend": options.placement.backend, "command": command,
              **{f"base.{k}": v for k, v in spec.base.to_dict().items()}}
    return StudyLog(tracking, spec.name, params)


@public_call("run_tune")
@interrupt.scoped
def run_tune(space: str | os.PathLike | TuneSpec | dict, out: str | Path | None = None, *,
         options: TuneOptions | None = None, display: Any = None,
         warn: Callable[[str], None] | None = None) -> TuneResult:
    """Search a space (a preset name, a space file, a TuneSpec or a dict of a space file's
    keys) into `out` (default:
    tunes/<name>) until the study holds `options.trials` finished trials; then, unless
    `options.report` is off, retrain the best configuration and write the report.
    `display=True` prints the trials as they finish on standard error, as the command does
    (or give a tune.display.TrialTable). With `options.log`, this process also logs each
    trial as it finishes, and the search at the end (tracking/)."""

    from .report.tune import write_tune_report
    from .tune.display import TrialTable

    started = time.perf_counter()
    options = _checked(options or TuneOptions(), TuneOptions)
    source, spec, out = _job(space, out, options, "tunes", TuneSpec, load_space, parse_space,
                             "a search space: a preset's name, a space file")
    backend = options.backend()
    console = files.StderrConsole(highlight=False, soft_wrap=True)  # as the command's
    shown = _shown_as(display, "display", TrialTable,
                      lambda: TrialTable(spec, console, options.lang)) or _Quiet()
    command = _command("tune", source, out, options.flags())
    log = _search_log(options, spec, out, command, warn)  # a missing extra: said before training
    with _ended_if_stopped(log), contextlib.ExitStack() as made:
        if isinstance(shown, TrialTable) and shown is not display:  # made here: its
            # spinner stops with the search, as the command's
            made.callback(shown.stop)
        result = search(spec, out, trials=options.trials, storage=options.storage,
                        seed=options.seed, pruner=options.pruner,
                        study_name=options.study_name, backend=backend,
                        on_start=shown.start, on_trial=_both(shown.on_trial, log),
                        reporter_for=shown.reporter_for, on_wait=shown.waiting,
                        lang=options.lang)
        if not options.report:
            if log is not None:
                log.finish(result)
            return result
        # workers sharing a folder retrain and write the report one at a time; the second
        # finds the retrained runs finished and reads them back
        with files.exclusive(out / runs.SEARCH_REPORT_LOCK, "the report", wait=True,
                             waiting=_saying(shown.waiting,
                                             t(options.lang, "tune.wait.report", out=out))):
            result = analyse(refresh(result), retrain_seeds=options.retrain_seeds,
                             backend=backend, reporter=shown.retrain_reporter,
                             lang=options.lang)
            with interrupt.listening():  # as the study's report (see run_study)
                write_tune_report(result, lang=options.lang, command=command)
            if log is not None:
                log.finish(result)
    result.seconds = time.perf_counter() - started
    return result


def _job(given: Any, out: Any, options: Any, folder: str, kind: type,
         load: Callable[[str], Any], parse: Callable[[dict], Any],
         what: str) -> tuple[str | None, Any, Path]:
    """(source, the spec as `options` run it, its folder) of a run_study or run_tune call:
    `out`, else `folder`/<name>, never inside a run, study or search folder (a study given
    one trained there, and that folder was then refused as "holding files mnistlab did not
    write"; hunt)."""
    source, spec = _spec_of(given, kind, load, parse, what)
    chosen = folder_given("out", out)
    spec = options.apply(spec)
    out_dir = chosen or default_out(folder, spec.name)
    files.check_not_inside_ours(out_dir, "--out" if chosen else "the default folder")
    return source, spec, out_dir


def _spec_of(given: Any, kind: type, load: Callable[[str], Any], parse: Callable[[dict], Any],
             what: str) -> tuple[str | None, Any]:
    """(the preset's name or the file's path, as the report's command names it; the spec) of
    what run_study or run_tune was given: a name or path (a pathlib.Path too: it was
    "'PosixPath' object has no attribute 'base'"), a spec object, or a dict of its file's keys
    (read as the file would be)."""
    if isinstance(given, kind):
        return None, given
    if isinstance(given, dict):
        return None, parse(given)
    if isinstance(given, (str, os.PathLike)):
        return os.fspath(given), load(os.fspath(given))
    raise MnistlabError(f"give {what}, a {kind.__name__} or a dict of its keys, not "
                        f"{type(given).__name__} "
                        f"{given!r}")


def _checked(options: Any, kind: type) -> Any:
    if not isinstance(options, kind):  # options={"workers": 1}: "'dict' has no 'apply'"
        raise MnistlabError(f"options: give {kind.__name__}(...), e.g. {kind.__name__}(quick="
                            f"True), not {type(options).__name__}")
    return options


def _search_log(options: TuneOptions, spec: TuneSpec, out: Path, command: str,
                warn: Callable[[str], None] | None) -> Any:
    if not options.log:
        return None
    from .tracking import SearchLog, Tracking

    tracking = Tracking(options.log, out, mlflow_uri=options.mlflow_uri, lang=options.lang,
                        warn=warn)
    params = {"space": spec.name, "title": spec.title, "trials": options.trials,
              "pruner": options.pruner, "seed": options.seed, "quick": options.quick,
              "backend": options.placement.backend, "command": command,  # as a study's
              **{f"base.{k}": v for k, v in spec.base.to_dict().items()},
              **{f"space.{p.name}": p.type for p in spec.params}}
    return SearchLog(tracking, options.study_name or spec.name, spec, params)


def _both(on_trial: Any, log: Any) -> Any:
    """The trial table's callback and the search log's, as one on_trial."""
    if log is None:
        return on_trial

    def both(trial: Any, finished: int, best: Any = None) -> None:
        if on_trial is not None:
            on_trial(trial, finished, best)
        log.trial_finished(trial)

    return both


def _command(job: str, source: str | None, out: Path, flags: list[str]) -> str:
    """The command line that remakes a report ('' for a spec built in Python: no file to
    name)."""
    if source is None:
        return ""
    return shlex.join(["mnistlab", job, source, "--out", str(out), *flags])


def default_out(kind: str, name: str) -> Path:
    """studies/<name> or tunes/<name> (names are checked folder names, see config)."""
    return Path(kind) / name


def _saying(say: Callable[[str], None] | None, line: str) -> Callable[[], None] | None:
    return None if say is None else functools.partial(say, line)


class _Quiet:
    """A search shown nowhere."""

    start = on_trial = reporter_for = retrain_reporter = waiting = None
