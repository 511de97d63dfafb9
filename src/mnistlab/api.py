"""The whole jobs, as the CLI runs them and Python users call them: a study or a search from
its file to its report. Each is a few lines over the layers below (study/ or tune/ to train,
report/ to write up), which is why they live up here.

    import mnistlab
    result = mnistlab.run_study("fashion-hparams", options=StudyOptions(quick=True, seeds=1))
    search = mnistlab.run_tune("fashion-mlp", options=TuneOptions(trials=40, lang="es"))
"""

from __future__ import annotations

import shlex
import time
from pathlib import Path
from typing import Any

from . import files
from .study.options import StudyOptions
from .study.run import StudyResult, train_study
from .study.spec import StudySpec, load_study
from .tune.options import TuneOptions
from .tune.search import TuneResult, analyse, refresh, search
from .tune.space import TuneSpec, load_space


def run_study(spec: str | StudySpec, out: str | Path | None = None, *,
          options: StudyOptions | None = None, progress: Any = None) -> StudyResult:
    """Run a study (a preset name, a study file, or a StudySpec) into `out` (default:
    studies/<name>): train what is missing, write results.csv, plots/, report.md and
    report.html. Running it again on the same folder resumes."""
    from .report.study import write_study_report

    options = options or StudyOptions()
    source = spec if isinstance(spec, str) else None
    spec = options.apply(load_study(spec) if isinstance(spec, str) else spec)
    out = Path(out) if out is not None else default_out("studies", spec.name)
    result = train_study(spec, out, backend=options.backend(), progress=progress)
    write_study_report(result, lang=options.lang,
                       command=_command("study", source, out, options.flags()))
    return result


def run_tune(space: str | TuneSpec, out: str | Path | None = None, *,
         options: TuneOptions | None = None, display: Any = None) -> TuneResult:
    """Search a space (a preset name, a space file, or a TuneSpec) into `out` (default:
    tunes/<name>) until the study holds `options.trials` finished trials; then, unless
    `options.report` is off, retrain the best configuration and write the report. `display`
    (tune.display.TrialTable) shows the trials as they finish."""
    from .report.tune import write_tune_report

    started = time.perf_counter()
    options = options or TuneOptions()
    source = space if isinstance(space, str) else None
    spec = options.apply(load_space(space) if isinstance(space, str) else space)
    out = Path(out) if out is not None else default_out("tunes", spec.name)
    backend = options.backend()
    shown = display or _Quiet()
    result = search(spec, out, trials=options.trials, storage=options.storage,
                      seed=options.seed, pruner=options.pruner,
                      study_name=options.study_name, backend=backend,
                      on_start=shown.start, on_trial=shown.on_trial,
                      reporter_for=shown.reporter_for)
    if not options.report:
        return result
    # workers sharing a folder retrain and write the report one at a time; the second finds
    # the retrained runs finished and reads them back
    with files.exclusive(out / ".report.lock", "the report", wait=True):
        result = analyse(refresh(result), retrain_seeds=options.retrain_seeds,
                         backend=backend, reporter=shown.retrain_reporter)
        write_tune_report(result, lang=options.lang,
                          command=_command("tune", source, out, options.flags()))
    result.seconds = time.perf_counter() - started
    return result


def _command(job: str, source: str | None, out: Path, flags: list[str]) -> str:
    """The command line that remakes a report ('' for a spec built in Python: no file to
    name)."""
    if source is None:
        return ""
    return shlex.join(["mnistlab", job, source, "--out", str(out), *flags])


def default_out(kind: str, name: str) -> Path:
    """studies/<name> or tunes/<name> (names are checked folder names, see config)."""
    return Path(kind) / name


class _Quiet:
    """A search shown nowhere."""

    start = on_trial = reporter_for = retrain_reporter = None
