"""Run an Optuna search over a `TuneSpec`: storage, sampler, pruner, objective, retraining.

The objective is `train()` itself (no test set), reporting each epoch's validation accuracy to
Optuna so that unpromising trials are pruned. The study lives in a storage (an SQLite file in
the output folder by default, or any SQLAlchemy URL such as PostgreSQL), so re-running resumes
and several worker processes can share one study: `trials` counts every finished (complete or
pruned) trial in the study, whoever ran it.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import functools
import hashlib
import io
import json
import logging
import math
import os
import random
import socket
import sqlite3
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import files, interrupt, messages
from ..config import TRACKING_ENTRIES, TrainConfig, read_toml
from ..data.cache import DataCache
from ..errors import MnistlabError, shown_url
from ..held import Held
from ..models import DoesNotFit, check_size
from ..progress import Reporter, SilentReporter
from ..records import RunResult, RunSummary
from ..runs import SEARCH_REPORT_LOCK
from ..training import Hook, Run, train
from .space import TuneSpec

PRUNERS = ("median", "hyperband", "none")
INSTALL_HINT = 'pip install "mnistlab[tune]" (or: pip install optuna scikit-learn)'
IMPORTANCE_REPEATS = 5  # fANOVA fits random forests: its importances vary from call to call
HEARTBEAT_SECONDS = 60  # a trial silent for 3 heartbeats is a dead worker's: marked failed
STORE_FILE = "tune.db"
START_LOCK = ".start.lock"  # held while a worker checks the folder's search and opens it
# What a search writes into its folder; anything else there means the folder is someone else's.
TUNE_ENTRIES = {STORE_FILE, f"{STORE_FILE}-wal", f"{STORE_FILE}-shm", f"{STORE_FILE}-journal",
                "space.toml", "search.json", "trials.csv", "best.toml", "report.md",
                "report.html", "plots", "retrain", SEARCH_REPORT_LOCK, START_LOCK,
                *TRACKING_ENTRIES}
# which study in which storage the folder's report, trials.csv and best.toml describe
SEARCH_FILE = "search.json"
OWN_STORAGE = "the folder's tune.db"  # recorded so for default_storage: the folder may move

try:  # optional extra: only `mnistlab tune` needs it
    import optuna
    from optuna.trial import TrialState
except ImportError:  # pragma: no cover - exercised without the extra only
    optuna = None  # type: ignore[assignment]

FINISHED = ("COMPLETE", "PRUNED")


def require_optuna() -> Any:
    if optuna is None:
        raise MnistlabError(f"tune: Optuna is not installed; {INSTALL_HINT}")
    return optuna


@contextlib.contextmanager
def optuna_quiet() -> Iterator[None]:
    """Optuna's own lines (a line per trial, "Using an existing study") left out while
    mnistlab's calls run, its level put back after (held.Held): set for good, the user's own
    studies in the same notebook stopped logging their trials."""
    require_optuna()
    with _OPTUNA_QUIET():
        yield


_OPTUNA_QUIET = Held(lambda: optuna.logging.get_verbosity(),
                     lambda level: optuna.logging.set_verbosity(level),
                     optuna.logging.WARNING if optuna is not None else None)


# --- sampler and pruner ----------------------------------------------------------------------
SEED_STRIDE = 100_003  # trial k of a search with seed s is sampled by TPE seeded s * STRIDE + k
# TPE seeds numpy's RandomState, which takes seeds below 2**32: the largest search seed leaves
# room for ten million trial numbers above it.
MAX_TUNE_SEED = (2**32 - 10**7) // SEED_STRIDE


def check_tune_seed(seed: int) -> None:
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= MAX_TUNE_SEED:
        raise MnistlabError(f"seed: must be a whole number from 0 to {MAX_TUNE_SEED:,} (trial k "
                            f"is sampled with numpy seed seed × {SEED_STRIDE:,} + k, which must "
                            f"stay below 2**32), got {seed!r}")


def _seeded_tpe_class() -> type:
    class TrialSeededTPE(optuna.samplers.BaseSampler):
        """TPE whose random numbers for trial k come from (seed, k) alone.

        One seeded TPE per process would repeat its first random trials in every worker (and
        again after each resume); seeding per trial number keeps a single worker reproducible
        and makes concurrent workers explore different points.
        """

        def __init__(self, seed: int) -> None:
            self.seed = seed
            self._by_trial: dict[int, Any] = {}

        def _for(self, study: Any, trial: Any) -> Any:
            sampler = self._by_trial.get(trial.number)
            if sampler is None:
                sampler = optuna.samplers.TPESampler(seed=self.seed * SEED_STRIDE
                                                     + drawn_index(study, trial.number))
                self._by_trial[trial.number] = sampler
            return sampler

        def infer_relative_search_space(self, study: Any, trial: Any) -> dict[str, Any]:
            return self._for(study, trial).infer_relative_search_space(study, trial)

        def sample_relative(self, study: Any, trial: Any, search_space: dict) -> dict[str, Any]:
            return self._for(study, trial).sample_relative(study, trial, search_space)

        def sample_independent(self, study: Any, trial: Any, param_name: str,
                               param_distribution: Any) -> Any:
            return self._for(study, trial).sample_independent(study, trial, param_name,
                                                              param_distribution)

        def before_trial(self, study: Any, trial: Any) -> None:
            self._for(study, trial).before_trial(study, trial)

        def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
            self._for(study, trial).after_trial(study, trial, state, values)
            self._by_trial.pop(trial.number, None)

    return TrialSeededTPE


CUT = "cut"  # user attribute of a trial stopped by Ctrl-C/SIGTERM before its end


def cut_trial(trial: Any) -> None:
    """A trial stopped before its end (Ctrl-C, SIGTERM, a cancelled task): marked, and its
    values queued again, so that the resumed search trains that point first instead of
    drawing past it, and goes on as the search would have without the stop."""
    trial.set_user_attr(CUT, True)
    if trial.params:
        trial.study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number})


def was_cut(trial: Any) -> bool:
    """A failed trial that was stopped (Ctrl-C, SIGTERM), not one that crashed: trials.csv
    and the report call it interrupted. This version names a crash's error on its trial; a
    failed trial with neither mark (nothing, or only its worker) was left by an older
    version, which marked neither: read as cut (a crash there is queued again once)."""
    return trial.state.name == "FAIL" and (bool(trial.user_attrs.get(CUT))
                                           or _unmarked(trial))


def lost_retry(trial: Any, trials: list[Any]) -> int | None:
    """The trial that trains a failed trial's values again because its worker went silent
    (killed, its machine gone: failed by the heartbeat and queued once); None for a trial that
    failed any other way. Such a trial read as "failed", beside the retry that completed it."""
    if trial.state.name != "FAIL" or was_cut(trial):
        return None
    return next((t.number for t in trials
                 if t.system_attrs.get("failed_trial") == trial.number), None)


MARKED = "mnistlab_marks"  # user attribute of every trial this version starts


def mark(trial: Any) -> None:
    """Mark a trial as this version's as it starts (locally, or asked for a cluster)."""
    trial.set_user_attr(MARKED, 1)


def _unmarked(trial: Any) -> bool:
    """Left by an older version: this one marks each trial it starts (a killed worker's trial,
    failed by its heartbeat, keeps the mark and reads as failed, not cut; review). Older
    versions named the worker only, or nothing."""
    return not set(trial.user_attrs) - {"worker"}


def queue_older_cuts(study: Any) -> None:
    """The trials an older version left failed with no mark (stopped by Ctrl-C: it neither
    marked nor queued them), queued again once, as a cut trial is: resumed by this version,
    their point was never trained, and the search's best was lost with it (hunt). With the
    start of a search held: one worker queues them."""
    trials = study.get_trials(deepcopy=False)
    retried = {t.user_attrs.get("retry_of") for t in trials} | {
        t.system_attrs.get("failed_trial") for t in trials}
    for t in trials:
        if t.state.name == "FAIL" and _unmarked(t) and t.number not in retried and t.params:
            study.enqueue_trial(t.params, user_attrs={"retry_of": t.number})


def drawn_index(study: Any, number: int) -> int:
    """Trial `number`'s place among the trials that were not cut and queued again: what seeds
    its draw, so that a search stopped and resumed draws what one run straight through draws.
    A killed worker's trial counts once the heartbeat has queued it again. A trial that failed
    any other way (a crash) keeps its place: the next draw must not propose its point again."""
    trials = study.get_trials(deepcopy=False)
    retried = {t.system_attrs.get("failed_trial") for t in trials}
    cut = sum(1 for t in trials if t.number < number
              and (was_cut(t) or t.number in retried))
    return number - cut


def make_sampler(seed: int) -> Any:
    require_optuna()
    check_tune_seed(seed)
    return _seeded_tpe_class()(seed)


def max_epochs(spec: TuneSpec) -> int:
    """The longest run the space allows: Hyperband's largest budget."""
    for p in spec.params:
        if p.name == "epochs":
            return int(max(p.choices) if p.type == "categorical" else p.high)
    return spec.base.epochs


def make_pruner(name: str, spec: TuneSpec) -> Any:
    require_optuna()
    if name == "median":  # prune below the median of earlier trials at the same epoch
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=0)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max_epochs(spec),
                                              reduction_factor=3)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise MnistlabError(f"pruner: unknown value {name!r}; choose one of {', '.join(PRUNERS)}")


# --- storage ---------------------------------------------------------------------------------
def default_storage(out: Path) -> str:
    return files.sqlite_url(out / STORE_FILE)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def open_study(spec: TuneSpec, storage_url: str, *, study_name: str, sampler: Any = None,
               pruner: Any = None, attempts: int = 6) -> Any:
    """Create the study or load it (`load_if_exists`), checking it was made from this space.

    Workers that start together race to create the tables and the study; the loser of such a
    race sees an integrity or operational error, so opening is retried a few times.
    """
    require_optuna()
    check_storage(storage_url)
    storage_url = with_driver(storage_url)
    engine_kwargs = _sqlite_engine(storage_url) if storage_url.startswith("sqlite") else {}
    last: BaseException | None = None
    for attempt in range(attempts):
        try:
            with warnings.catch_warnings():  # heartbeats are "experimental" but long-standing
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                storage = optuna.storages.RDBStorage(
                    storage_url, engine_kwargs=engine_kwargs,
                    heartbeat_interval=HEARTBEAT_SECONDS, grace_period=3 * HEARTBEAT_SECONDS,
                    **_retry_stale_trials())
            study = optuna.create_study(storage=storage, study_name=study_name,
                                        direction="maximize", load_if_exists=True,
                                        sampler=sampler, pruner=pruner)
            break
        except (ImportError, ModuleNotFoundError) as exc:
            raise MnistlabError(f"storage: {shown_url(storage_url)} needs a database driver "
                                f"({_first_line(exc)}); {_driver_advice(storage_url)}") from None
        except Exception as exc:  # noqa: BLE001 - SQLAlchemy's errors share no useful base
            if any(c.__name__ == "ArgumentError" for c in type(exc).__mro__):  # no such
                # dialect (http://, a typo) is NoSuchModuleError, a kind of ArgumentError
                raise _not_a_database_url(storage_url) from None
            if _damaged_file(exc):  # no retry makes a damaged file whole
                raise MnistlabError(f"storage: {shown_url(storage_url)} is not a database, or a "
                                    "damaged one; move the file aside, or use another --out or "
                                    "--storage") from None
            last = exc
            time.sleep(0.2 + random.random() * 0.5 * (attempt + 1))
    else:
        raise MnistlabError(f"storage: cannot open {shown_url(storage_url)}: "
                            f"{_first_line(last)}{_sqlite_advice(storage_url)}") from None
    stored = study.user_attrs.get("mnistlab_space")
    if stored is None or (stored != spec.fingerprint() and not study.get_trials(deepcopy=False)):
        # new, or made by a search that stopped before its first trial (data not there on a
        # cluster, say): nothing to mix, so the mended space file takes it over
        study.set_user_attr("mnistlab_space", spec.fingerprint())
        study.set_user_attr("mnistlab_spec_name", spec.name)
    elif stored in _placed_fingerprints(spec) and stored != spec.fingerprint():
        study.set_user_attr("mnistlab_space", spec.fingerprint())  # from now on, anywhere
    elif stored != spec.fingerprint():
        raise MnistlabError(
            f"tune: study {study_name!r} in {shown_url(storage_url)} was made from a different "
            f"search space or base config; resuming would mix two searches. Give this one "
            f"another --study-name (in a shared --storage, where the name is what tells "
            f"searches apart) or another --out (a search's folder holds one search)")
    # a killed worker's trial is failed (and queued again) only where a new trial starts: a
    # finished search said it was running, on every rerun (hunt)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    return study


def _placed_fingerprints(spec: TuneSpec) -> set[str]:
    """The fingerprints earlier versions recorded for `spec`: before placement was left out of
    them, with its base's data_dir and device, the data_dir as given then (relative to here,
    where --data-dir is now kept absolute: review); and the first release's, without the
    settings added since (hunt: a 0.1.0 search was refused as "a different search space", its
    space file the same)."""
    prints = {spec.fingerprint(first_release=True)}
    for first in (False, True):
        prints.add(spec.fingerprint(placed=True, first_release=first))
        if spec.base.data_dir and os.path.isabs(spec.base.data_dir):
            here = os.path.relpath(spec.base.data_dir)
            for typed in (here, f"{here}/", f"./{here}", f"./{here}/"):  # as a shell gives it
                relative = dataclasses.replace(spec, base=spec.base.replace(data_dir=typed))
                prints.add(relative.fingerprint(placed=True, first_release=first))
    return prints


def _retry_stale_trials() -> dict[str, Any]:
    """A killed worker's trial, once its heartbeat is stale, is queued again (once: a point
    that kills its worker twice is not tried a third time). Optuna 4.9 renamed the hook."""
    storages = optuna.storages
    if hasattr(storages, "RetryHeartbeatStaleTrialCallback"):
        return {"heartbeat_stale_trial_callback":
                storages.RetryHeartbeatStaleTrialCallback(max_retry=1)}
    return {"failed_trial_callback": storages.RetryFailedTrialCallback(max_retry=1)}


# SQLAlchemy's driver names and the packages that bring them (where they differ, the name is
# no package at all)
DRIVER_PACKAGES = {"psycopg": "psycopg[binary]", "psycopg2": "psycopg2-binary",
                   "pg8000": "pg8000", "asyncpg": "asyncpg", "pymysql": "pymysql",
                   "mysqldb": "mysqlclient", "mysqlconnector": "mysql-connector-python",
                   "mariadbconnector": "mariadb"}


def _driver_advice(storage_url: str) -> str:
    """How to install the driver a URL's database needs: PostgreSQL's comes with the tune extra,
    another's (MySQL, say) is the user's to pick; naming psycopg2 there sent them wrong (hunt)."""
    dialect, _, driver = storage_url.split("://")[0].partition("+")
    if dialect in ("postgresql", "postgres") and driver in ("", "psycopg2"):
        return "for PostgreSQL: pip install \"mnistlab[tune]\" (psycopg2-binary)"
    if driver:  # what the URL names (review: psycopg2 was advised; mysqldb is no package)
        package = DRIVER_PACKAGES.get(driver)
        return (f"install {driver}, the driver the URL names"
                + (f" (pip install \"{package}\")" if package else ""))
    return ("install the driver the URL names (for MySQL: pip install pymysql and write "
            "mysql+pymysql://...)")


def _damaged_file(exc: BaseException | None) -> bool:
    """Whether SQLite, somewhere under `exc` (SQLAlchemy's and Optuna's wrappers), found the
    file itself damaged: not a database, or a malformed one (a lock or a full disk is not)."""
    while exc is not None:
        if isinstance(exc, sqlite3.DatabaseError) and not isinstance(
                exc, (sqlite3.OperationalError, sqlite3.IntegrityError)):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def check_storage(url: str) -> None:
    """Refuse a storage URL no search can use, when it is given rather than when the search
    opens it (from Python, `TuneOptions(storage=...)` was taken and failed at `run_tune`)."""
    if url.rstrip("/") == "sqlite:" or ":memory:" in url \
            or "mode=memory" in url:  # its trials would vanish when the command ends
        raise MnistlabError(f"storage: {shown_url(url)!r} is an in-memory database, lost when "
                            "the command ends; give a file, e.g. sqlite:///DIR/tune.db")
    try:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError
    except ImportError:  # no tune extra: require_optuna says so where the search starts
        return
    encode = ("a user or password holding @ : / # ? is written percent-encoded (%40 %3A %2F "
              "%23 %3F: urllib.parse.quote(password, safe=''))")
    # it was "could not translate host name" (hunt); the @s of the part before the path (a
    # SQLite file's name may hold them: review), of a URL naming a server
    if not url.startswith("sqlite") and url.partition("://")[2].split("/")[0].count("@") > 1:
        raise MnistlabError(f"storage: {shown_url(url)!r} holds @ more than once; {encode}")
    try:  # the dialect names a database; its driver is imported only when the storage opens
        make_url(with_driver(url)).get_dialect()
    except ArgumentError:  # no such dialect (http://, a typo) is a kind of ArgumentError
        raise _not_a_database_url(url) from None
    except ValueError:  # a port that is no number: a traceback (hunt); what SQLAlchemy says
        # of it may quote a piece of the password
        raise MnistlabError(f"storage: {shown_url(url)!r} cannot be read as a URL: a port is a "
                            f"number, and {encode}") from None


def with_driver(url: str) -> str:
    """postgresql://... names no driver, and SQLAlchemy 2.1 then wants psycopg 3; the tune
    extra installs psycopg2, so a URL without a driver uses whichever of the two is here."""
    scheme, sep, rest = url.partition("://")
    if scheme not in ("postgresql", "postgres") or not sep:
        return url
    import importlib.util

    for module, driver in (("psycopg2", "psycopg2"), ("psycopg", "psycopg")):
        if importlib.util.find_spec(module) is not None:
            return f"postgresql+{driver}://{rest}"
    return url


def _not_a_database_url(url: str) -> MnistlabError:
    return MnistlabError(f"storage: {shown_url(url)!r} is not a database URL; use e.g. "
                         "sqlite:///tune.db (three slashes, then the path) or "
                         "postgresql://user:pass@host/db")


def _sqlite_engine(url: str) -> dict[str, Any]:
    """SQLite for a few workers on one machine: WAL journal (readers never block the writer),
    a long busy timeout (a worker waits for the lock instead of failing), and no fsync per
    commit (an OS crash may lose the last trials; a killed worker loses nothing)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        path = make_url(url).database
    except ArgumentError:  # sqlite:/x.db, sqlite:x.db: one slash short
        raise _not_a_database_url(url) from None
    if not path or path == ":memory:":
        return {}

    def connect() -> sqlite3.Connection:
        connection = sqlite3.connect(path, timeout=120, check_same_thread=False)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        return connection

    return {"creator": connect}


def finished_trials(study: Any) -> list[Any]:
    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))


def finished_and_best(study: Any) -> tuple[int, Any]:
    """How many trials the study holds finished, and its best trial so far, every worker's
    counted (a worker's own best was starred as the study's): the first to reach the best
    value, as `collect` chooses it."""
    done = finished_trials(study)
    return len(done), _best_of(done)


def _best_of(trials: list[Any]) -> Any:
    """The best complete trial; never a diverged one (scored 0: a search where every trial
    diverged named one its best, and retrained it to diverge again; review)."""
    complete = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None
                and not diverged(t)]
    return max(complete, key=lambda t: (t.value, -t.number)) if complete else None


# --- the objective ---------------------------------------------------------------------------
def suggest(spec: TuneSpec, trial: Any) -> dict[str, Any]:
    """Ask the trial for every active parameter; returns decoded values (lists for hidden)."""
    encoded: dict[str, Any] = {}
    values: dict[str, Any] = {}
    for p in spec.params:
        if not p.active(encoded):
            continue  # a conditional parameter whose condition does not hold: base value
        if p.type == "float":
            stored = trial.suggest_float(p.name, p.low, p.high, log=p.log, step=p.step)
        elif p.type == "int":
            stored = trial.suggest_int(p.name, p.low, p.high, step=p.step or 1, log=p.log)
        else:
            stored = trial.suggest_categorical(p.name, list(p.encoded_choices))
        encoded[p.name] = stored
        values[p.name] = p.decode(stored)
    return values


def trial_config(spec: TuneSpec, trial: Any) -> TrainConfig:
    """The TrainConfig a stored (frozen) trial trained."""
    by_name = {p.name: p for p in spec.params}
    values = {k: by_name[k].decode(v) for k, v in trial.params.items() if k in by_name}
    return spec.config_for(values, where=f"trial {trial.number}")


ReportEpoch = Callable[[int, float, bool], bool]  # (epoch, val acc, may prune) -> prune?


class PruneOnValidation(Hook):
    """A training hook: report each epoch's validation accuracy and stop the run when the
    pruner says so (never after the last epoch: there is nothing left to save). `report` is
    the trial's own (local objective) or a message to the driver (Ray tasks)."""

    def __init__(self, report: ReportEpoch, epochs: int) -> None:
        self.report = report
        self.epochs = epochs
        self.seconds = 0.0
        self.pruned: dict[str, Any] = {}  # user attributes of a pruned trial

    def on_epoch_end(self, run: Run) -> None:
        record = run.histories[0][-1]
        self.seconds += record.seconds
        value = record.val_accuracy
        if not math.isfinite(value):
            return  # a diverged epoch: training stops the run itself
        epoch = record.epoch
        if self.report(epoch, value, epoch < self.epochs):
            self.pruned = {"status": "pruned", "epochs": epoch,
                           "seconds": round(self.seconds, 3)}
            raise optuna.TrialPruned(f"pruned at epoch {epoch} (val {value:.4f})")


def worker_label() -> str:
    """Which process trained a trial (host:pid), kept as the trial's `worker` attribute."""
    return f"{socket.gethostname()}:{os.getpid()}"


def trial_outcome(summary: RunSummary) -> tuple[float, dict[str, Any]]:
    """A finished trial's value and user attributes from its training summary."""
    if summary.status == "interrupted":
        raise KeyboardInterrupt
    attrs = {"status": summary.status, "epochs": summary.epochs, "seconds": summary.seconds,
             "train_acc_eval": summary.train_accuracy_eval}
    value = summary.val_accuracy
    # a diverged run learned nothing usable: it scores 0 rather than failing the trial (its
    # last finite epoch's accuracy made an all-diverged search's best, retrained to diverge)
    if summary.status == "diverged" or value is None or not math.isfinite(value):
        return 0.0, attrs
    return float(value), attrs


def diverged(trial: Any) -> bool:
    """A complete trial whose training diverged (scored 0): trials.csv, the live table and
    the report say so, where it read as an ordinary complete trial."""
    return trial.state.name == "COMPLETE" and trial.user_attrs.get("status") == "diverged"


class InvalidTrial(MnistlabError):
    """A trial whose drawn values cannot go together (each is valid alone): that trial fails,
    with its reason as its `error` attribute, and the search goes on."""


INVALID_IN_A_ROW = 10  # then the space, not the draw, is the problem: the search stops


def trial_settings(spec: TuneSpec, trial: Any, invalid: list[int]) -> TrainConfig:
    """The trial's config from its drawn values. Values that cannot go together fail the
    trial (InvalidTrial); `invalid` counts such trials in a row, and too many stop the search
    with one line (MnistlabError) instead of drawing on for ever."""
    try:
        config = spec.config_for(suggest(spec, trial), where=f"trial {trial.number}")
    except MnistlabError as exc:
        raise invalid_trial(trial, exc, invalid) from None
    invalid[0] = 0
    return config


def invalid_trial(trial: Any, exc: MnistlabError, invalid: list[int]) -> MnistlabError:
    """What a trial whose values cannot go together (or with the data: a model drawn too deep
    for the images) raises: InvalidTrial, or past INVALID_IN_A_ROW such trials (`invalid`
    counts them) the error that stops the search."""
    trial.set_user_attr("error", str(exc))
    return count_invalid(exc, invalid, does_not_fit=isinstance(exc, DoesNotFit))


def count_invalid(exc: MnistlabError, invalid: list[int], *, does_not_fit: bool = False
                  ) -> MnistlabError:
    """One more trial in a row that could not train (`does_not_fit`: its model did not fit
    the data): InvalidTrial, or the error that stops the search where they are too many."""
    invalid[0] += 1
    if invalid[0] >= INVALID_IN_A_ROW:
        drew = ("a model the data does not fit" if does_not_fit else
                "settings that cannot go together")
        return MnistlabError(f"tune: {invalid[0]} trials in a row drew {drew} (last: {exc}); "
                             "narrow the space (a changed space is another search: give it "
                             "another --out)")
    return InvalidTrial(str(exc))


def make_objective(spec: TuneSpec, cache: Any,
                   reporter_for: Callable[[Any, TrainConfig], Reporter] | None = None
                   ) -> Callable[[Any], float]:
    invalid = [0]  # drawn values that cannot go together, in a row
    unfit = [0]  # trials whose model did not fit the data, in a row (until one trains)

    def objective(trial: Any) -> float:
        try:
            return _objective(trial)
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM: its point is trained first on resume
            cut_trial(trial)
            raise
        except optuna.TrialPruned:
            raise
        except Exception as exc:  # a crash, named (its row in the live table says it)
            if "error" not in trial.user_attrs:
                trial.set_user_attr("error", f"{type(exc).__name__}: {exc}"[:300])
            raise

    def _objective(trial: Any) -> float:
        if interrupt.requested():  # asked to stop between trials: this one never starts
            raise KeyboardInterrupt
        trial.set_user_attr("worker", worker_label())
        mark(trial)  # a failed trial without it is an older version's
        config = trial_settings(spec, trial, invalid)
        reporter = reporter_for(trial, config) if reporter_for else SilentReporter()

        def report(epoch: int, value: float, may_prune: bool) -> bool:
            trial.report(value, epoch)
            return may_prune and trial.should_prune()

        pruning = PruneOnValidation(report, config.epochs)
        splits = cache.splits(config)  # data not there: every trial alike, the search stops
        try:
            result = train(config, splits=splits, evaluate_test=False,
                           write_plots=False, reporter=reporter, hooks=[pruning])
        except optuna.TrialPruned:
            unfit[0] = 0
            for name, value in pruning.pruned.items():
                trial.set_user_attr(name, value)
            raise
        except DoesNotFit as exc:  # a cnn's filters drawn too deep for the images: this
            raise invalid_trial(trial, exc, unfit) from None  # trial, not the search
        unfit[0] = 0
        value, attrs = trial_outcome(result.summary)
        for name, attr in attrs.items():
            trial.set_user_attr(name, attr)
        return value

    return objective


# --- the search ------------------------------------------------------------------------------
@dataclass
class TuneResult:
    spec: TuneSpec
    out: Path
    storage: str  # shown form (no password)
    study_name: str
    seed: int
    pruner: str
    target: int  # finished trials asked for
    trials: list[Any]  # every FrozenTrial of the study
    best: Any | None  # the best complete FrozenTrial
    best_config: TrainConfig | None
    retrained: list[RunResult] = field(default_factory=list)  # the best config, one per seed
    compared: list[RunResult] = field(default_factory=list)
    importances: dict[str, list[float]] = field(default_factory=dict)
    importance_note: str = ""
    ran_here: int = 0  # trials this process ran
    seconds: float = 0.0
    url: str = field(default="", repr=False)  # the storage, password included

    def __repr__(self) -> str:  # every FrozenTrial and retrained run in a notebook (hunt)
        best = (f", best_trial={self.best.number}, best_val={self.best.value:.4f}"
                if self.best is not None else "")
        return (f"TuneResult(name={self.spec.name!r}, out={str(self.out)!r}, "
                f"trials={len(self.trials)}{best}, retrained={len(self.retrained)})")

    def by_state(self, state: str) -> list[Any]:
        return [t for t in self.trials if t.state.name == state]


# (finished FrozenTrial, finished trials in the study, the study's best trial so far or None)
OnTrial = Callable[[Any, int, Any], None]
ReporterFor = Callable[[Any, TrainConfig], Reporter]  # (trial, its config) -> its progress


class LocalTrials:
    """Trials trained in this process, one after another (several such processes can share
    one search through its storage)."""

    name = "local"

    @interrupt.scoped  # a loop of runs: a stop in one ends the loop (see interrupt.scoped)
    def optimize(self, spec: TuneSpec, study: Any, *, trials: int, cache: DataCache,
                 on_trial: OnTrial | None, reporter_for: ReporterFor | None) -> int:
        """Run trials until the study holds `trials` finished ones; returns how many ran here."""
        cache.splits(spec.base)  # data not found, no such device: one line, no failed trial
        ran = 0

        def finished(study: Any, trial: Any) -> None:
            nonlocal ran
            ran += 1
            if on_trial is not None:
                on_trial(trial, *finished_and_best(study))
            if interrupt.requested():
                study.stop()

        # listening: a Ctrl-C only asks the running trial to stop, which it does from inside
        # the trial, so Optuna's bookkeeping (and its heartbeat thread) is never cut mid-way
        with interrupt.listening():
            # Optuna's own stopping rule: every worker stops once the study holds enough
            # finished trials, whoever ran them (failed ones, such as settings that cannot go
            # together, do not count)
            study.optimize(make_objective(spec, cache, reporter_for), n_trials=None,
                           callbacks=[optuna.study.MaxTrialsCallback(
                               trials, states=(TrialState.COMPLETE, TrialState.PRUNED)),
                               finished], gc_after_trial=False, catch=(InvalidTrial,))
        return ran

    @interrupt.scoped
    def retrain(self, jobs: list[tuple[TrainConfig, Path]], cache: DataCache,
                reporter: Callable[[TrainConfig], Reporter] | None,
                lang: str = "en") -> list[RunResult]:
        """Train each (config, folder), scoring the test set; each a whole run folder, with
        its curves and confusion matrix (their words in `lang`), as the Ray backend writes
        it."""
        results = []
        for config, folder in jobs:
            run = train(config, out=folder, splits=cache.splits(config), evaluate_test=True,
                        write_plots=True, named_by_settings=True, lang=lang,
                        reporter=reporter(config) if reporter else SilentReporter())
            # a stop asked for after the run's last step (while it was scored or written)
            # leaves it complete: the next seed does not start
            if run.summary.status == "interrupted" or interrupt.requested():
                raise KeyboardInterrupt
            results.append(run)
        return results


def _sqlite_advice(url: str) -> str:
    """What to do about an SQLite file that cannot be opened: its folder missing, a folder
    where the file goes; "" for other storages and other reasons."""
    path = files.sqlite_path(url)
    if path is None:
        return ""
    if path.is_dir():
        return f"; {path} is a folder: give a file in it, e.g. sqlite:///{path / 'tune.db'}"
    if not path.parent.is_dir():
        return (f"; the folder {path.parent} does not exist: make it (mkdir -p "
                f"{path.parent}) or give a file in a folder that does")
    return ""


def check_same_search(out: Path, spec: TuneSpec, url: str, name: str) -> None:
    """Refuse a tune folder that holds another search: its space.toml names another space, or
    its search.json another study or storage (another --study-name or --storage replaced the
    report, trials.csv and best.toml with another search's, the folder's tune.db kept). A
    damaged space.toml is not another search: tune.db's own check decides, and it is
    written again."""
    recorded = out / "space.toml"
    try:
        theirs = read_toml(recorded).get("name") if recorded.is_file() else spec.name
    except MnistlabError:
        theirs = spec.name
    if isinstance(theirs, str) and theirs != spec.name:
        raise MnistlabError(f"--out {out}: holds the search {theirs!r}, not {spec.name!r}; use "
                            "another --out (each search keeps its own folder)")
    ours = _search_record(out, url, name)
    held = _recorded_search(out) or _held_in_own_store(out, ours)
    if held != ours and not _moved_file(out, held, ours):
        raise MnistlabError(
            f"--out {out}: holds the study {held['study']!r} in {held['storage']}, not "
            f"{ours['study']!r} in {ours['storage']}; use another --out (each search keeps its "
            "own folder)")


def _search_record(out: Path, url: str, name: str) -> dict[str, str]:
    """The study and its storage as search.json records them: an SQLite file by its resolved
    path (the folder's own tune.db as such: the folder may move), a server without its
    driver (`postgresql+psycopg2://` and `postgres://` are `postgresql://`) or password."""
    scheme, sep, rest = url.partition("://")
    if scheme == "sqlite" and rest.startswith("/"):
        own = files.sqlite_path(url).resolve()  # relative to the working directory, as SQLite's
        # another file: its URL's text resolved, as folders made before recorded it
        storage = (OWN_STORAGE if own == (out / STORE_FILE).resolve()
                   else f"sqlite:///{Path(rest[1:]).resolve()}")
    else:
        base = scheme.split("+")[0]
        storage = shown_url(("postgresql" if base == "postgres" else base) + sep + rest)
    return {"study": name, "storage": storage}


def _moved_file(out: Path, held: dict[str, str], ours: dict[str, str]) -> bool:
    """Whether `ours` is the search `held` records in an SQLite file moved since, with its
    folder: the recorded file is gone, ours lies where it lay beside the folder, and holds
    the study. A search with `--storage sqlite:///shared.db` in a folder moved with its file
    was refused as "another study", the command that had made it included (hunt); another
    file holding a study of the same name is not taken for it (review)."""
    before, now = held["storage"], ours["storage"]
    if not (held["study"] == ours["study"] and before != now
            and before.startswith("sqlite:///") and now.startswith("sqlite:///")):
        return False
    path, first = Path(now.removeprefix("sqlite:///")), Path(before.removeprefix("sqlite:///"))
    kept = _search_json(out).get("file_from_out")  # None: recorded before it was (review)
    return ((kept == _file_from_out(out, now) if kept is not None else first.name == path.name)
            and not first.exists() and ours["study"] in _studies_in(path))


def _file_from_out(out: Path, storage: str) -> str | None:
    """Where a search's own SQLite file (not the folder's tune.db) lies from its folder."""
    if not storage.startswith("sqlite:///"):
        return None
    return os.path.relpath(storage.removeprefix("sqlite:///"), out.resolve())


def _held_in_own_store(out: Path, ours: dict[str, str]) -> dict[str, str]:
    """What a folder made before search.json holds, by the studies its own tune.db has (none,
    or ours among them: ours)."""
    names = _studies_in(out / STORE_FILE)
    if not names or (ours["storage"] == OWN_STORAGE and ours["study"] in names):
        return ours
    return {"study": names[0], "storage": OWN_STORAGE}


def _studies_in(path: Path) -> list[str]:
    """The study names an Optuna SQLite file holds ([] where it is missing, unreadable or
    damaged: opening it as storage says what is wrong, which matters more)."""
    if not path.is_file():
        return []
    try:
        with files.read_only_sqlite(path) as db:
            if db.execute("PRAGMA quick_check").fetchone() != ("ok",):
                return []
            return [row[0] for row in db.execute("SELECT study_name FROM studies")]
    except sqlite3.Error:
        return []


def _recorded_search(out: Path) -> dict[str, str] | None:
    """search.json's study and storage; None where it is missing or damaged (a folder made
    before it, or cut while writing: the space.toml and tune.db checks still hold)."""
    try:
        held = json.loads((out / SEARCH_FILE).read_text())
    except (OSError, ValueError):
        return None
    if not (isinstance(held, dict) and all(isinstance(held.get(k), str)
                                           for k in ("study", "storage"))):
        return None
    # as _search_record writes it now: a folder that recorded postgres:// holds that server
    storage = held["storage"]
    if storage.startswith("postgres://"):
        storage = "postgresql://" + storage.removeprefix("postgres://")
    return {"study": held["study"], "storage": storage}


def _data_folders(out: Path, spec: TuneSpec) -> dict[str, str]:
    """The folders the search's relative dataset paths name, as search.json is to record
    them: run again from another folder, where "digits" was other data, its trials joined the
    first ones (hunt); refused (data.dataset.relative_folders). Each worker's folder keeps its
    own: a worker on another machine reads its own copy."""
    from ..data.dataset import relative_folders

    before = _search_json(out).get("dataset_folders")
    return relative_folders(_datasets(spec), before if isinstance(before, dict) else {},
                            "search")


def _data_digests(out: Path, spec: TuneSpec) -> dict[str, str]:
    """The digest of each dataset the search reads from a folder, as search.json is to record
    it: its files replaced between sessions, new trials joined the first ones, without a
    word (hunt); refused (data.dataset.unchanged_data)."""
    from ..data.dataset import unchanged_data

    before = _search_json(out).get("data_digests")
    return unchanged_data(_datasets(spec), before if isinstance(before, dict) else {},
                          "search")


def _datasets(spec: TuneSpec) -> list[str]:
    """The datasets a search reads: its base's, and the compared configuration's."""
    compare = spec.compare_config()
    return [spec.base.dataset, *([compare.dataset] if compare is not None else [])]


def _search_json(out: Path) -> dict[str, Any]:
    """search.json as it is, {} where it is missing or damaged."""
    try:
        record = json.loads((out / SEARCH_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def _storage_error(exc: BaseException) -> BaseException | None:
    """The storage's own error behind `exc` (Optuna reports a storage that stopped taking
    writes as an internal error or a failed assertion), or None."""
    seen: BaseException | None = exc
    while seen is not None and type(seen).__name__ not in ("StorageInternalError",
                                                           "OperationalError"):
        seen = seen.__cause__ or seen.__context__
    return seen


def storage_failure(exc: BaseException, url: str) -> MnistlabError | None:
    """The one line for a search whose storage stopped taking writes (a full disk, a file
    made read-only, a database gone); None when `exc` is something else."""
    found = _storage_error(exc)
    if found is None:
        return None
    reason = _first_line(found.__cause__ or found.__context__ or found)
    fix = ("free space or fix the permissions" if url.startswith("sqlite") else  # a server's:
           "check that the database server is running and reachable")  # (hunt) said disk
    return MnistlabError(f"storage {shown_url(url)}: cannot write the search ({reason[:160]}); "
                         f"{fix} and run the same command again (finished trials are kept)",
                         exit_code=1)


def _start(spec: TuneSpec, out: Path, url: str, name: str, seed: int, pruner: str,
           on_wait: Callable[[str], None] | None = None, lang: str = "en") -> Any:
    """The folder's study, opened (made where new), with the folder's space.toml and
    search.json written: one worker at a time, so that two searches started together on one
    new folder are one refused, as one after the other are (both were taken, each file then
    naming another study, and neither could be resumed)."""
    made = not out.exists()
    files.check_output_folder(out)
    lock = out / START_LOCK
    try:
        waiting = None if on_wait is None else functools.partial(
            on_wait, messages.t(lang, "tune.wait.opening", out=out, url=shown_url(url)))
        with files.exclusive(lock, "the start of a search", wait=True, waiting=waiting):
            check_same_search(out, spec, url, name)  # again, now that no other is starting
            folders = _data_folders(out, spec)  # refused before the folder changes (review)
            digests = _data_digests(out, spec)
            study = open_study(spec, url, study_name=name, sampler=make_sampler(seed),
                               pruner=make_pruner(pruner, spec))
            check_same_draws(study, seed, pruner)
            queue_older_cuts(study)
            files.write_text(out / "space.toml", spec_toml(spec))
            ours = _search_record(out, url, name)
            record = {**_search_json(out), **ours, "dataset_folders": folders,
                      "data_digests": digests,
                      "file_from_out": _file_from_out(out, ours["storage"])}
            if _search_json(out) != record:  # new, its SQLite file moved, its data found
                files.write_json(out / SEARCH_FILE, record)
    except MnistlabError:
        # a storage that cannot be opened (.DS_Store beside the lock: review):
        if files.not_litter(out) <= {START_LOCK}:
            lock.unlink(missing_ok=True)  # the lock was all it wrote (a folder given empty is
            if made:  # "not empty" to the next command), and no --out folder of its making
                with contextlib.suppress(OSError):  # (litter in it: kept)
                    out.rmdir()
        raise
    return study


@interrupt.scoped
@optuna_quiet()
def search(spec: TuneSpec, out: str | Path, *, trials: int, storage: str | None = None,
             seed: int = 0, pruner: str = "median", study_name: str | None = None,
             backend: Any = None, cache: DataCache | None = None,
             on_start: Callable[[int, int, float | None, str], None] | None = None,
             on_trial: OnTrial | None = None, reporter_for: ReporterFor | None = None,
             on_wait: Callable[[str], None] | None = None, lang: str = "en") -> TuneResult:
    """Search until the study holds `trials` finished trials (counting other workers'), with
    `backend` (LocalTrials, or tune.ray_backend.RayTrials) training them; `out` gets the
    storage (unless `storage` is a database URL) and space.toml. `analyse` retrains the best
    configuration afterwards, and report.tune writes the report."""
    _quiet_when_stopping()
    check_tune_seed(seed)
    backend = backend or LocalTrials()
    started = time.perf_counter()
    out = Path(out)
    files.check_owned_folder(out, TUNE_ENTRIES, "tune")  # before anything is written into it
    url = storage or default_storage(out)
    name = study_name or spec.name
    check_same_search(out, spec, url, name)  # before the folder is made, where it is refused
    cache = cache or DataCache()
    _check_here(spec, cache, local=isinstance(backend, LocalTrials), new=not out.exists())
    study = _start(spec, out, url, name, seed, pruner, on_wait, lang)
    done = finished_trials(study)
    if on_start is not None:
        values = [t.value for t in done if t.value is not None]
        on_start(trials, len(done), max(values) if values else None, shown_url(url))
    ran = 0
    if len(done) < trials:
        try:
            ran = backend.optimize(spec, study, trials=trials, cache=cache,
                                   on_trial=on_trial, reporter_for=reporter_for)
        except Exception as exc:
            failure = storage_failure(exc, url)
            if failure is None:
                raise
            raise failure from None
    if interrupt.requested():  # stopped between trials: say so, analyse nothing
        raise KeyboardInterrupt
    result = collect(spec, study, out, url, name, seed, pruner, trials)
    result.ran_here = ran
    result.seconds = time.perf_counter() - started
    return result


# the settings a split is made of (DataCache's key): searched, the base's split is not a trial's
DATA_SETTINGS = {"dataset", "data_dir", "val_size", "val_from", "train_subset", "data_seed",
                 "shuffle_labels", "eval_train_size"}


def _check_here(spec: TuneSpec, cache: DataCache, *, local: bool, new: bool) -> None:
    """What would fail every trial, said before the study and its folder are made: a device
    not here (a new folder, trained here: a cluster's workers may have what this lacks, and a
    search begun is asked when it trains), data not there or too small for its validation
    split (the first trial's error left a folder the mended file could not resume), a model
    its images are too small for. The data is read here on a cluster too: its driver reads it
    to ship it."""
    from ..device import resolve_device

    if local and new:
        resolve_device(spec.base.device)
    dataset = cache.dataset(spec.base)
    check_models_fit(spec, dataset.image_shape, dataset.num_classes)
    if local and new and not DATA_SETTINGS & {p.name for p in spec.params}:
        try:
            cache.splits(spec.base)  # made once here: the trials use it
        except MnistlabError as exc:
            raise _said_of_the_file(exc, spec) from None


def _said_of_the_file(exc: MnistlabError, spec: TuneSpec) -> MnistlabError:
    """A split's error in the space file's words: "val-size: 1,000 ...; use 0 (no validation
    set) or ..." named a flag `tune` has not, for a value --quick had set, and advised the
    0 a search refuses."""
    text = str(exc)
    if not text.startswith("val-size: "):
        return exc
    table = "[quick]" if spec.is_quick else "[base]"
    said = text.removeprefix("val-size: ").replace("use 0 (no validation set) or from", "use from")
    return MnistlabError(f"{spec.name} {table} val_size = {said}")


def check_models_fit(spec: TuneSpec, image_shape: tuple[int, ...], num_classes: int) -> None:
    """Refuse a model the search may draw that the data's images are too small for (lenet5
    for 8x8 images), before any trial: TPE, which does not see failed trials, drew it on every
    trial once its start was over. Where a setting that shapes the layers is searched too, a
    trial that does not fit fails alone (DoesNotFit)."""
    from ..models import TooSmall, estimate_size

    searched = {p.name: p for p in spec.params}
    models = searched["model"].choices if "model" in searched else (spec.base.model,)
    where = f"{spec.name} space.model" if "model" in searched else f"{spec.name} [base]"
    for model in models:  # judged where what sets its depth (the filters' count) is not drawn
        if DEPTH_SET_BY.get(str(model)) in searched:
            continue
        config = spec.base.replace(model=str(model))
        try:
            estimate_size(config, image_shape, num_classes)
        except TooSmall:
            try:
                check_size(config, image_shape, num_classes)
            except DoesNotFit as exc:
                leave = ("; leave it out of the choices" if "model" in searched else "")
                text = str(exc).removeprefix("model: ").replace("; use --model ", "; use ")
                raise MnistlabError(f"{where}: {text}{leave}") from None


# a model's depth, and so the smallest image it takes, set by a setting a search may draw
DEPTH_SET_BY = {"cnn": "filters", "resnet": "filters"}


def check_same_draws(study: Any, seed: int, pruner: str) -> None:
    """A search keeps the --seed and --pruner it started with: resumed with others, it would
    mix two ways of drawing and stopping trials, and its report would name the new ones as
    how the whole search ran."""
    ours = {"seed": seed, "pruner": pruner}
    stored = study.user_attrs.get("mnistlab_draws")
    if stored is None:  # a new search (or one made before this was recorded): from now on
        study.set_user_attr("mnistlab_draws", ours)
    elif stored != ours:
        raise MnistlabError(f"tune: this search was started with --seed {stored.get('seed')} "
                            f"--pruner {stored.get('pruner')}; resume it with those, or give "
                            "a new search another --study-name (in a shared --storage) or "
                            "another --out")


@optuna_quiet()
def refresh(result: TuneResult) -> TuneResult:
    """The same search read again from its storage (other workers may have added trials)."""
    study = open_study(result.spec, result.url, study_name=result.study_name)
    fresh = collect(result.spec, study, result.out, result.url, result.study_name, result.seed,
                    result.pruner, result.target)
    fresh.ran_here, fresh.seconds = result.ran_here, result.seconds
    return fresh


class _StopRequested(logging.Filter):
    """Drops Optuna's "trial N failed" warnings (a traceback) where a stop was asked for, or
    a Ctrl-C raised in the trial (the trial cut short is marked failed and does not count, as
    expected), and for mnistlab's own errors, which say their one line themselves: a trial's
    settings that cannot go together (its row in the table), data not found or a device not
    here (the command's error)."""

    def __init__(self) -> None:
        super().__init__()
        self.dropped = ""  # "Trial N failed": Optuna's second line about it goes too

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if self.dropped and text.startswith(f"{self.dropped} with value"):
            self.dropped = ""  # its second line gone: another study's trial of that number
            return False  # fails in its own right
        error = record.exc_info[1] if record.exc_info else None
        ours = isinstance(error, MnistlabError) or (
            error is not None and _storage_error(error) is not None)  # said by search()
        # a Ctrl-C raised in the trial (Python, with no command line to hold it): a stop
        stopped = isinstance(error, KeyboardInterrupt) or interrupt.requested()
        if stopped or ours:
            self.dropped = text.split(" with ")[0]  # "Trial 3 failed"
            return False
        return True


def _quiet_when_stopping() -> None:
    logger = logging.getLogger("optuna.study._optimize")  # where Optuna logs failed trials
    if not any(isinstance(f, _StopRequested) for f in logger.filters):
        logger.addFilter(_StopRequested())


def collect(spec: TuneSpec, study: Any, out: Path, url: str, name: str, seed: int, pruner: str,
            target: int) -> TuneResult:
    all_trials = study.get_trials(deepcopy=False)
    best = _best_of(all_trials)
    return TuneResult(spec=spec, out=out, storage=shown_url(url), study_name=name, seed=seed,
                      pruner=pruner, target=target, trials=all_trials, best=best,
                      best_config=trial_config(spec, best) if best else None, url=url)


def retrain_seed_list(spec: TuneSpec, n: int) -> list[int]:
    """Fresh seeds: the search trained every trial with the base seed, so the best trial's
    own number is optimistically chosen; other seeds measure it without that bias."""
    return [spec.base.seed + 1 + i for i in range(n)]


def retrain_jobs(config: TrainConfig, label: str, seeds: list[int], out: Path, first: int
                 ) -> list[tuple[TrainConfig, Path]]:
    """`config` once per seed, each into out/retrain/<label>-<tag>-seed<s>. An ensemble of
    N steps by N seeds from the search's base seed `first` (the trials'), so no retrain shares
    a member with the trial chosen on validation, nor with another retrain."""
    tag = config_tag(config)
    jobs = [config.replicate(first, s - first) for s in seeds]
    return [(job, out / "retrain" / f"{label}-{tag}-seed{job.seed}") for job in jobs]


def config_tag(config: TrainConfig) -> str:
    """Eight hex digits naming a configuration: a retrain folder per configuration, so a
    better best trial after a resumed search never resumes the old best's checkpoint."""
    return hashlib.sha256(config.to_toml().encode()).hexdigest()[:8]


@interrupt.scoped
@optuna_quiet()
def analyse(result: TuneResult, *, retrain_seeds: int, backend: Any = None,
            cache: DataCache | None = None,
            reporter: Callable[[str, TrainConfig], Reporter] | None = None,
            lang: str = "en") -> TuneResult:
    """After the search: retrain the best configuration (and the comparison) with fresh seeds,
    scoring the test set once (their figures in `lang`); compute importances; write
    trials.csv and best.toml. Workers
    sharing a folder should do this one at a time (the caller holds a lock)."""
    backend = backend or LocalTrials()
    cache = cache or DataCache()
    out = result.out
    seeds = retrain_seed_list(result.spec, retrain_seeds)

    def retrain(config: TrainConfig, label: str) -> list[RunResult]:
        said = (lambda c: reporter(label, c)) if reporter else None
        return backend.retrain(retrain_jobs(config, label, seeds, out, result.spec.base.seed),
                               cache, said, lang)

    files.write_text(out / "trials.csv", trials_csv(result))
    if result.best_config is not None:
        files.write_text(out / "best.toml", result.best_config.to_toml())
        result.retrained = retrain(result.best_config, "best")
        compare = result.spec.compare_config()
        if compare is not None:
            result.compared = retrain(compare, "compare")
    result.importances, result.importance_note = importances(result)
    return result


def importances(result: TuneResult, repeats: int = IMPORTANCE_REPEATS
                ) -> tuple[dict[str, list[float]], str]:
    """fANOVA importances from `repeats` evaluators with different seeds: name -> values."""
    complete = result.by_state("COMPLETE")
    if len(complete) < 2:
        return {}, "too-few"
    study = optuna.create_study(direction="maximize")
    study.add_trials(complete)
    values: dict[str, list[float]] = {}
    try:
        for s in range(repeats):
            evaluator = optuna.importance.FanovaImportanceEvaluator(seed=s)
            for name, value in optuna.importance.get_param_importances(
                    study, evaluator=evaluator).items():
                values.setdefault(name, []).append(float(value))
    except (RuntimeError, ValueError) as exc:  # e.g. no parameter shared by all trials
        return {}, _first_line(exc)
    except ImportError:  # Optuna installed without the tune extra
        return {}, f"fANOVA needs scikit-learn; {INSTALL_HINT}"
    return values, ""


def trials_csv(result: TuneResult) -> str:
    names = [p.name for p in result.spec.params]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["number", "state", "val_acc", "last_val_acc", "epochs_run", "seconds",
                     *names])
    for t in result.trials:
        last = _last_intermediate(t)
        # a trial stopped by Ctrl-C is Optuna's FAIL; the report calls it interrupted
        state = ("interrupted" if was_cut(t) else "diverged" if diverged(t)
                 else "lost" if lost_retry(t, result.trials) is not None
                 else t.state.name.lower())
        writer.writerow([t.number, state,
                         "" if t.value is None else f"{t.value:.6g}",
                         "" if last is None else f"{last:.6g}",
                         # a pruned or cut trial's epochs are those it reported (the report's)
                         t.user_attrs.get("epochs", max(t.intermediate_values, default="")),
                         t.user_attrs.get("seconds", ""),
                         *[t.params.get(n, "") for n in names]])
    return buffer.getvalue()


def _last_intermediate(trial: Any) -> float | None:
    steps = trial.intermediate_values
    return steps[max(steps)] if steps else None


def spec_toml(spec: TuneSpec) -> str:
    """The resolved search space as TOML: what this folder's search was run with (a space file
    `mnistlab tune` reads back)."""
    import tomli_w

    space = {}
    for p in spec.params:
        entry: dict[str, Any] = {"type": p.type}
        if p.type == "categorical":
            entry["choices"] = [list(c) if isinstance(c, tuple) else c for c in p.choices]
        else:
            entry.update(low=p.low, high=p.high, log=p.log)
            if p.step is not None:
                entry["step"] = p.step
        if p.when:
            entry["when"] = {k: list(v) for k, v in p.when.items()}
        space[p.name] = entry
    data: dict[str, Any] = {"name": spec.name, "title": spec.title,
                            "description": spec.description, "base": spec.base.to_dict(),
                            "space": space}
    if spec.is_quick:  # its numbers are not compared with published ones, resumed or not
        data["quick_form"] = True
    if spec.compare is not None:
        c = spec.compare
        data["compare"] = {"label": c.label, "source": c.source, "note": c.note,
                           **({"val": c.val} if c.val is not None else {}),
                           **({"val_from": c.val_from} if c.val_from else {}),
                           "settings": dict(c.settings)}
    # the [es] texts: a Spanish report made from this file read "Frente a the reference"
    data.update({lang: dict(texts) for lang, texts in spec.translations.items() if texts})
    return tomli_w.dumps(data)
