"""The Ray backend for searches: each Optuna trial is a Ray task; only the driver talks to the
Optuna storage.

The driver asks the study for a trial (`study.ask`), samples its settings, and submits one task
per trial, keeping as many in flight as the cluster has task slots. A task trains the trial on
its node; after each epoch it sends the validation accuracy to a `PruneBroker` actor and waits
for the answer. The driver drains the broker, reports each value to the trial, asks the pruner,
and answers. When a task ends the driver tells the study (`study.tell`): complete, pruned, or
failed. So the storage may be the SQLite file in the tune folder even when the trials train on
other machines, and every trial is told exactly once; a task whose worker died is re-run by Ray
(seeded training gives the same values again; epochs already reported are answered from the
broker's memory).
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import ray
from optuna.trial import TrialState

from .. import interrupt, raycluster
from ..config import TrainConfig
from ..errors import MnistlabError
from ..models import DoesNotFit
from ..records import EpochRecord, RunResult, RunSummary
from ..training import train
from .search import (
    InvalidTrial,
    PruneOnValidation,
    count_invalid,
    cut_trial,
    finished_and_best,
    finished_trials,
    mark,
    trial_outcome,
    trial_settings,
    worker_label,
)
from .space import TuneSpec

FAILURES_IN_A_ROW = 3  # trials failing one after another: a bug or a broken cluster, not bad luck


@ray.remote(num_cpus=0)
class PruneBroker:
    """Meeting point of running trials and the driver: a trial's epoch report waits here until
    the driver has decided whether to prune it."""

    def __init__(self) -> None:
        self.reports: list[tuple[int, int, float]] = []
        self.decisions: dict[tuple[int, int], bool] = {}
        self.events: dict[tuple[int, int], asyncio.Event] = {}

    async def report(self, number: int, epoch: int, value: float) -> bool:
        key = (number, epoch)
        if key not in self.decisions:
            if key not in self.events:  # a retried task reports the same epoch again
                self.events[key] = asyncio.Event()
                self.reports.append((number, epoch, value))
            await self.events[key].wait()
        return self.decisions[key]

    async def take_reports(self) -> list[tuple[int, int, float]]:
        reports, self.reports = self.reports, []
        return reports

    async def decide(self, number: int, epoch: int, prune: bool) -> None:
        self.decisions[(number, epoch)] = prune
        self.events.pop((number, epoch)).set()


def trial_task(number: int, config: TrainConfig, datasets: dict, threads: int,
               broker: Any) -> dict[str, Any]:
    """Runs on a Ray worker: train one trial; its state, value and user attributes."""
    cache = raycluster.worker_cache(datasets, threads)

    def report(epoch: int, value: float, may_prune: bool) -> bool:
        return ray.get(broker.report.remote(number, epoch, value)) and may_prune

    pruning = PruneOnValidation(report, config.epochs)
    attrs = {"worker": worker_label()}
    try:
        result = train(config, splits=cache.splits(config), evaluate_test=False,
                       write_plots=False, hooks=[pruning])
    except optuna.TrialPruned:
        return {"state": "pruned", "attrs": {**attrs, **pruning.pruned}}
    value, outcome = trial_outcome(result.summary)
    return {"state": "complete", "value": value, "attrs": {**attrs, **outcome}}


def optimize_on_ray(spec: TuneSpec, study: Any, *, trials: int, address: str | None,
                    resources: raycluster.TaskResources,
                    on_trial: Callable[[Any, int, Any], None] | None = None,
                    cache: Any = None) -> int:
    """Run trials as Ray tasks until the study holds `trials` finished ones (counting other
    workers'); returns how many this driver ran. The datasets are shipped from `cache` (the
    search read the base's before it started: not read twice)."""
    load = cache.dataset if cache is not None else None
    connected = raycluster.connect(address)
    slots = raycluster.task_slots(connected, resources)
    task = ray.remote(trial_task).options(**resources.options())
    head, lost = raycluster.HeadWatch(connected), False
    head.check(now=True)  # making the broker waits on the head
    broker = PruneBroker.remote()
    datasets = raycluster.ship_datasets(connected, [spec.base], load)
    running: dict[Any, tuple[Any, TrainConfig]] = {}  # task ref -> (optuna Trial, config)
    by_number: dict[int, Any] = {}
    ran = failures = 0
    invalid = [0]  # trials in a row whose drawn values could not go together
    unfit = [0]  # trials whose model did not fit the data, in a row of those told
    # heartbeats are for optimize(): with ask/tell the driver itself tells every trial's end
    warnings.filterwarnings("ignore", message="Heartbeat of storage")
    try:
        while True:
            if interrupt.requested():  # Ctrl-C: the running trials are failed, not lost
                raise KeyboardInterrupt
            head.check()
            done = len(finished_trials(study))
            while done + len(running) < trials and len(running) < slots:
                trial = study.ask()
                mark(trial)  # this version's: failed without an error or a cut, it crashed
                try:
                    config = trial_settings(spec, trial, invalid)
                except MnistlabError as exc:  # values that cannot go together: it fails
                    frozen = study.tell(trial, state=TrialState.FAIL)
                    if isinstance(exc, InvalidTrial):
                        _said(on_trial, study, frozen)  # its row, with why, as locally
                        continue
                    raise  # too many in a row: the space is the problem
                invalid[0] = 0
                if raycluster.data_key(config) not in datasets:  # the space changes datasets
                    datasets.update(raycluster.ship_datasets(connected, [config], load))
                running[task.remote(trial.number, config,
                                    raycluster.datasets_for(config, datasets),
                                    resources.threads, broker)] = (trial, config)
                by_number[trial.number] = trial
            if not running:
                return ran
            ready, _ = ray.wait(list(running), num_returns=1, timeout=0.2)
            _answer_reports(broker, by_number, running, head)
            for ref in ready:
                trial, config = running.pop(ref)
                frozen = _tell(study, trial, ref, resources)
                ran += 1
                _said(on_trial, study, frozen)  # a failed trial too: its row says why
                failures = _failures_after(frozen, failures, unfit)
    except BaseException as exc:
        lost = isinstance(exc, raycluster.HeadLost)  # nothing left there to cancel or kill
        for ref, (trial, _) in running.items():  # what is not finished is failed, not lost
            if not lost:
                ray.cancel(ref, force=True)
            cut_trial(trial)  # and trained first when the search resumes
            study.tell(trial, state=TrialState.FAIL)
        raise
    finally:
        if not lost:
            ray.kill(broker)


def _said(on_trial: Callable[[Any, int, Any], None] | None, study: Any, frozen: Any) -> None:
    """A trial's end told to the live table (a failed one's row names its error): failed
    trials on a cluster had no row, where the local search shows each."""
    if on_trial is not None:
        on_trial(frozen, *finished_and_best(study))


def _failures_after(frozen: Any, failures: int, unfit: list[int]) -> int:
    """Trials in a row that failed on the cluster, `frozen` counted; the error that stops the
    search where they, or trials whose model did not fit the data (`unfit`), are too many."""
    if frozen.user_attrs.get(DOES_NOT_FIT):  # its model and the data: counted as drawn
        stop = count_invalid(MnistlabError(frozen.user_attrs["error"]), unfit,
                             does_not_fit=True)  # values that cannot go together
        if not isinstance(stop, InvalidTrial):
            raise stop
        return failures
    if frozen.state != TrialState.FAIL:  # trained: the draws fit again
        unfit[0] = 0
    failures = failures + 1 if frozen.state == TrialState.FAIL else 0
    if failures >= FAILURES_IN_A_ROW:
        raise MnistlabError(
            f"backend ray: {failures} trials in a row failed on the cluster (last: trial "
            f"{frozen.number}, {frozen.user_attrs.get('error', '?')}); finished trials are "
            "stored, fix the cause and re-run to continue")
    return failures


def _answer_reports(broker: Any, by_number: dict[int, Any],
                    running: dict[Any, tuple[Any, TrainConfig]],
                    head: raycluster.HeadWatch) -> None:
    epochs = {trial.number: config.epochs for trial, config in running.values()}
    for number, epoch, value in head.get(ray, broker.take_reports.remote(),
                                         "the search's pruning broker"):
        trial = by_number[number]
        trial.report(value, epoch)  # once per epoch: the broker drops a retried task's repeats
        prune = epoch < epochs.get(number, epoch) and trial.should_prune()
        broker.decide.remote(number, epoch, prune)


DOES_NOT_FIT = "does_not_fit"  # a trial's attribute: failed as its model did not fit its data


def _tell(study: Any, trial: Any, ref: Any, resources: raycluster.TaskResources) -> Any:
    try:
        outcome = ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, DoesNotFit):  # this trial's model and the data: others may fit
            trial.set_user_attr(DOES_NOT_FIT, True)
            return _fail(study, trial, str(cause))
        if isinstance(cause, MnistlabError):  # a bad setting: every trial would fail alike
            _fail(study, trial, str(cause))  # named, as every failed trial is
            raise MnistlabError(str(cause), exit_code=cause.exit_code) from None
        return _fail(study, trial, f"{type(cause or exc).__name__}: {cause or exc}"[:300])
    except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError,
            ray.exceptions.OutOfMemoryError) as exc:
        return _fail(study, trial, f"worker died {resources.retries + 1} times "
                                   f"({type(exc).__name__})")
    for name, value in outcome["attrs"].items():
        trial.set_user_attr(name, value)
    if outcome["state"] == "pruned":
        return study.tell(trial, state=TrialState.PRUNED)
    return study.tell(trial, outcome["value"])


def _fail(study: Any, trial: Any, error: str) -> Any:
    trial.set_user_attr("error", error)
    return study.tell(trial, state=TrialState.FAIL)


class RayTrials:
    """Trials as Ray tasks on the cluster at `address` ("auto", HOST:PORT, or "local"), with
    `resources` per task; this process alone writes the Optuna storage."""

    name = "ray"

    def __init__(self, *, address: str | None = "auto",
                 resources: raycluster.TaskResources | None = None) -> None:
        self.address = address
        self.resources = resources or raycluster.TaskResources()
        # a missing extra or cluster, or tasks no node can hold: said before any work
        raycluster.check_fits(raycluster.connect(address), self.resources)

    def optimize(self, spec: TuneSpec, study: Any, *, trials: int, cache: Any,
                 on_trial: Callable[[Any, int, Any], None] | None, reporter_for: Any) -> int:
        with interrupt.listening():
            return optimize_on_ray(spec, study, trials=trials, address=self.address,
                                   resources=self.resources, on_trial=on_trial, cache=cache)

    def retrain(self, jobs: list[tuple[TrainConfig, Path]], cache: Any,
                reporter: Callable[[TrainConfig], Any] | None,
                lang: str = "en") -> list[RunResult]:
        """One task per seed through the study's Ray backend (single runs, no cohorts), into
        the folders a local retrain uses. A run finished there is read back, as a local
        retrain reads it (a rerun of a finished search trained each one again from scratch:
        a task gets a folder's checkpoint, not its finished run)."""
        from ..progress import SilentReporter
        from ..runs import finished_result
        from ..study.plan import PlannedRun
        from ..study.ray_backend import RayBackend

        done: dict[str, RunResult] = {}
        for config, folder in jobs:
            found = finished_result(folder, config, needs_test=True)
            if found is not None:
                done[folder.name] = found
        todo = [(config, folder) for config, folder in jobs if folder.name not in done]
        if not todo:
            return [done[folder.name] for _, folder in jobs]  # nothing to send
        for config, _ in todo:  # the runs train on the cluster: said here, as they are sent
            if reporter is not None:
                reporter(config).run_started(config, config.epochs, 0)
        root = todo[0][1].parent
        runs = [PlannedRun(folder.name, config, True) for config, folder in todo]

        def on_done(run: PlannedRun, summary: RunSummary, history: list[EpochRecord]) -> None:
            if summary.status == "interrupted":
                raise KeyboardInterrupt
            done[run.key] = RunResult(run.config, summary, history, root / run.key)

        backend = RayBackend(address=self.address, cohorts=False, resources=self.resources)
        backend.execute(runs, root.parent, on_done, lambda *_: SilentReporter(),
                        runs_dir=root.name, lang=lang)
        return [done[folder.name] for _, folder in jobs]
