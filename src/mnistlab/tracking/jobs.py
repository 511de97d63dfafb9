"""`--log tensorboard,mlflow` for whole jobs: a training run, a study, a search.

A study's runs and a search's trials train in worker processes or Ray tasks; only this (the
driver) process writes the tracking stores, after each run has finished, from what the run
left: its folder (metrics.csv, summary.json, config.toml, the PNGs, model.pt) or the trial
Optuna stored. So a tracking server sees one writer, workers need neither the extra nor a
route to it, and a study resumed or moved to Ray logs the same way. A `train` logs live,
epoch by epoch, through the hooks.

    MLflow      a study: one parent run (the study's settings; report.html and the plots as
                artifacts) with a nested child per distinct training run, cohort members
                included; a search: one parent with a child per finished trial (pruned ones
                tagged and named so) and per retrained run.
    TensorBoard STUDY/tensorboard/<run> and TUNE/tensorboard/trial-NNNN, so one
                `tensorboard --logdir STUDY` overlays every run.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from .. import files
from ..config import MLFLOW_LOCK, check_loggers, load_config
from ..errors import MnistlabError
from ..messages import t
from ..records import code_version
from ..study.run import RunLabel
from ..training import Hook
from ..tune.search import TuneResult, diverged, trial_config
from . import mlflow_store as ml
from . import tensorboard as tb

STUDY_FILES = ("report.html", "report.md", "results.csv", "plots")
SEARCH_FILES = ("report.html", "report.md", "trials.csv", "best.toml", "space.toml", "plots")
KIND_TAG = "mnistlab.kind"  # study, study-run, search, trial, retrain, train


class Tracking:
    """The loggers `--log` names, opened before anything trains: a missing extra or a
    tracking server that does not answer is one line now, not after the training."""

    def __init__(self, loggers: Sequence[str], out: str | Path, *,
                 mlflow_uri: str | None = None, lang: str = "en",
                 warn: ml.Warn | None = None) -> None:
        loggers = check_loggers(loggers)
        self.out = Path(out)
        self.lang = lang
        self.tensorboard = "tensorboard" in loggers
        if self.tensorboard:
            tb.require_tensorboard()
        self.store = (ml.Store(mlflow_uri, self.out, warn=warn) if "mlflow" in loggers
                      else None)
        made = ([("tensorboard", tb.SUBFOLDER)] if self.tensorboard else []) + (
            [("mlflow", ml.ARTIFACTS)] if self.store is not None and self.store.local else [])
        for logger, folder in made:  # said now: a search's first trial had trained (exit 1)
            if (self.out / folder).exists() and not (self.out / folder).is_dir():
                raise MnistlabError(f"{self.out / folder}: a file stands where --log {logger} "
                                    "makes its folder; move or rename it")

    # --- mnistlab train --------------------------------------------------------------------------
    def _follow_rename(self) -> None:
        """A run's experiment is named after its folder: a run folder renamed with its store
        keeps its experiment (renamed too), so its run is found again, not logged twice."""
        moved, name = self.store and self.store.moved_from, self.out.resolve().name
        if moved is not None and moved.name != name:
            old = self.store.call("get_experiment_by_name", moved.name)
            if old is not None and self.store.call("get_experiment_by_name", name) is None:
                self.store.call("rename_experiment", old.experiment_id, name)

    def train_hooks(self) -> list[Hook]:
        """Live loggers for `train(config, out=self.out, hooks=...)`."""
        self._follow_rename()
        hooks: list[Hook] = []
        if self.tensorboard:
            hooks.append(tb.TensorBoardLogger(self.out / tb.SUBFOLDER))
        if self.store is not None:
            hooks.append(ml.MLflowLogger(self.out, store=self.store, lang=self.lang))
        return hooks

    def finished_folder(self) -> None:
        """A run read back finished (nothing trained): logged from its folder, unless it
        already was."""
        folder = self.out
        self._follow_rename()
        if self.tensorboard:
            tb.complete_folder(folder, folder / tb.SUBFOLDER)
        if self.store is not None:
            experiment = self.store.experiment(folder.resolve().name)
            config = load_config(folder / "config.toml")
            found = [r for r in self.store.find(experiment, ml.FOLDER_TAG, str(folder.resolve()))
                     if ml.same_settings(r, config)]
            if found:  # logged: whole, unless the server went away while it was
                ml.complete_run(self.store, found[0], folder, self.lang)
            else:
                ml.log_folder(self.store, experiment, folder, folder.resolve().name,
                              tags={KIND_TAG: "train"}, lang=self.lang)


def run_folder_name(label: str, key: str) -> str:
    """A TensorBoard run's folder: readable, unique by its key, and short enough for any file
    system (a variant's label can be a long list of settings)."""
    return _readable(label)[:80] + "-" + key[:6]


def _logged_before(logdir: Path, label: str, key: str) -> bool:
    """Whether this run's TensorBoard folder exists, under this name or one an earlier version
    gave it: the label uncut (before names were capped), or a grid cell's named after its
    factors too (`optimizer-hidden=` before the label). A re-run otherwise logged the run
    twice. The whole label is matched, never the key alone."""
    if logdir.exists():
        return True
    uncut = f"{_readable(label)}-{key[:6]}"
    if not logdir.parent.is_dir():
        return False
    return any(p.name == uncut or p.name.endswith("=" + uncut) for p in logdir.parent.iterdir())


def _readable(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9.=_-]+", "-", label).strip("-")


class _ParentLog:
    """A job's parent MLflow run, found again when the job resumes (by its folder tag), and
    the keys of the children it already holds.

    `mnistlab tune` workers sharing one folder share its parent: each finds or makes it, and
    logs a child, holding the folder's MLFLOW_LOCK, and looks in the store (not at what it
    read at its start) for a child before logging it. Two started together made two parents,
    and each logged the other's trials again at its end."""

    def __init__(self, tracking: Tracking, experiment: str, kind: str,
                 params: dict[str, Any]) -> None:
        self.tracking, self.store = tracking, tracking.store
        self.name, self.kind, self.params = experiment, kind, params
        self.experiment: str | None = None
        self.run_id: str | None = None
        self.logged: set[str] = set()
        self.unended: dict[str, Any] = {}  # key -> a child whose logging was cut short
        self._holding = False  # the folder's MLFLOW_LOCK, by this object
        self._fresh = False  # and `logged` read from the store since: no other writer added

    @contextlib.contextmanager
    def alone(self) -> Iterator[None]:
        """The folder's parent and its children to this process alone (reentrant)."""
        if self._holding or self.store is None:
            yield
            return
        with files.exclusive(self.tracking.out / MLFLOW_LOCK, "MLflow logging", wait=True):
            self._holding = True
            try:
                yield
            finally:
                self._holding = self._fresh = False

    @contextlib.contextmanager
    def all_at_once(self) -> Iterator[None]:
        """alone(), with the children read once: a job's end looks for what is missing among
        hundreds of them in one query, not one each."""
        with self.alone():
            if self.store is not None and self.parent() is not None and not self._fresh:
                self._read_children()
            yield

    def _read_children(self) -> None:
        children = self.store.find(self.experiment, KIND_TAG, f"{self.kind}-child",
                                   parent=self.run_id)
        self.logged = {r.data.tags.get(ml.KEY_TAG, "") for r in children}
        whole = {r.data.tags.get(ml.KEY_TAG, "") for r in children if r.info.status in ml.WHOLE}
        self.unended = {r.data.tags.get(ml.KEY_TAG, ""): r for r in children
                        if r.data.tags.get(ml.KEY_TAG, "") not in whole}
        self._fresh = True

    def _look_up(self, key: str) -> None:
        """`key`'s child as the store holds it now (under alone()): another worker on this
        folder may have logged it, or completed it, since this one read its children."""
        if self._fresh or key in self.logged and key not in self.unended:
            return
        found = [r for r in self.store.find(self.experiment, ml.KEY_TAG, key, parent=self.run_id)
                 if r.data.tags.get(KIND_TAG) == f"{self.kind}-child"]
        if found:
            self.logged.add(key)
            self.unended.pop(key, None)
            if not any(r.info.status in ml.WHOLE for r in found):
                self.unended[key] = found[0]

    def parent(self) -> str | None:
        """The parent run, made (or found) at first use: after the job checked its folder."""
        if self.store is None or self.run_id is not None:
            return self.run_id
        with self.alone():  # two workers started together made two parents
            return self._find_or_make_parent()

    def _find_or_make_parent(self) -> str | None:
        self.experiment = self.store.experiment(self.name)
        folder = str(self.tracking.out.resolve())
        found = [r for r in self.store.find(self.experiment, ml.FOLDER_TAG, folder)
                 if r.data.tags.get(KIND_TAG) == self.kind]
        if found:
            self.run_id = found[0].info.run_id
            self.store.call("update_run", self.run_id, status="RUNNING")
            # params cannot change: what a resume changed (--trials 3, then 4) is a tag
            held = found[0].data.params
            self.store.log(self.run_id, tags={
                f"mnistlab.now.{k}": v for k, v in ml.params_of(self.params).items()
                if k in held and held[k] != v})  # as written: lists as 16,8, None as ""
            self._read_children()
        else:
            self.run_id = self.store.start(self.experiment,
                                           t(self.tracking.lang, f"tracking.run.{self.kind}",
                                             name=self.name),
                                           {KIND_TAG: self.kind, ml.FOLDER_TAG: folder,
                                            "mnistlab.version": code_version()})
            self.store.log(self.run_id, params=self.params)
            self._fresh = True  # no child yet, and none while this process holds the lock
        return self.run_id

    def folder_child(self, key: str, label: str, folder: Path) -> None:
        """A finished run folder as a child, once: completed where its logging was cut short."""
        with self.alone():
            self._look_up(key)
            if key in self.unended:
                ml.complete_run(self.store, self.unended.pop(key), folder, self.tracking.lang)
            elif key not in self.logged:
                ml.log_folder(self.store, self.experiment, folder, label, parent=self.run_id,
                              tags=self.child_tags(key), lang=self.tracking.lang)
                self.logged.add(key)

    def child_tags(self, key: str, **more: str) -> dict[str, str]:
        return {KIND_TAG: f"{self.kind}-child", ml.KEY_TAG: key, **more}

    def stopped(self, error: BaseException) -> None:
        """The job stopped before its end: its parent run is ended KILLED (a Ctrl-C) or
        FAILED, as a stopped train run's is (it stayed RUNNING); a resume sets it running."""
        if self.store is not None and self.run_id is not None:
            self.store.end(self.run_id, "KILLED" if isinstance(error, KeyboardInterrupt)
                           else "FAILED")

    def end(self, names: tuple[str, ...], metrics: list[tuple[str, float, int]]) -> None:
        if self.store is None:
            return
        parent = self.parent()
        self.store.log(parent, metrics=metrics)
        self.store.files(parent, self.tracking.out, names)
        self.store.end(parent)


class StudyLog(_ParentLog):
    """A study's runs, logged from the driver as each is recorded (`run_finished`), and the
    study itself at the end (`finish`)."""

    def __init__(self, tracking: Tracking, name: str, params: dict[str, Any]) -> None:
        super().__init__(tracking, name, "study", params)

    def run_finished(self, key: str, label: RunLabel, folder: Path) -> None:
        if self.tracking.tensorboard:  # named in English: the same folder in any --lang
            logdir = self.tracking.out / tb.SUBFOLDER / run_folder_name(str(label), key)
            if not _logged_before(logdir, str(label), key):
                tb.log_folder(folder, logdir)
        if self.store is not None and self.parent() is not None:
            self.folder_child(key, label.text(self.tracking.lang), folder)

    def finish(self, trained: Iterable[tuple[str, RunLabel, Path]]) -> None:
        """Every trained run (key, label, folder), those a resumed study trained before
        included, then the report as the parent's artifacts."""
        with self.all_at_once():
            for key, label, folder in trained:
                if (folder / "summary.json").is_file():
                    self.run_finished(key, label, folder)
        self.end(STUDY_FILES, [])


class SearchLog(_ParentLog):
    """A search's trials, logged from the driver as each finishes (`trial_finished`), and the
    search with its retrained runs at the end (`finish`). A diverged trial (complete, scored
    0) is logged as one, FAILED as a diverged run is: it read as an ordinary complete trial
    beside trials.csv's `diverged`."""

    def __init__(self, tracking: Tracking, name: str, spec: Any, params: dict[str, Any]) -> None:
        super().__init__(tracking, name, "search", params)
        self.spec = spec

    def trial_finished(self, trial: Any, *_: Any) -> None:
        """A finished (complete or pruned) trial; the signature of `search`'s on_trial."""
        if trial.state.name not in ("COMPLETE", "PRUNED"):
            return
        state = "DIVERGED" if diverged(trial) else trial.state.name
        config = trial_config(self.spec, trial)
        values = dict(trial.intermediate_values)
        if self.tracking.tensorboard:
            logdir = self.tracking.out / tb.SUBFOLDER / f"trial-{trial.number:04d}"
            if not logdir.exists():
                tb.log_trial(logdir, config.to_dict(), values, state, trial.value)
        if self.store is not None:
            with self.alone():
                self._log_trial(trial, state, config, values)

    def _log_trial(self, trial: Any, state: str, config: Any, values: dict[int, float]) -> None:
        key = f"trial-{trial.number}"
        if self.parent() is None:
            return
        self._look_up(key)
        cut = self.unended.pop(key, None)  # started, then the server went away
        if key in self.logged and cut is None:
            return
        pruned = state == "PRUNED"
        named = {"COMPLETE": "trial", "PRUNED": "pruned", "DIVERGED": "diverged"}[state]
        name = t(self.tracking.lang, f"tracking.run.{named}", number=trial.number)
        status = trial.user_attrs.get("status")  # the training's, as a run's tag says it
        run_id = cut.info.run_id if cut is not None else self.store.start(self.experiment, name, {
            **ml.run_tags(config, None, code_version()),
            **({"mnistlab.status": status} if isinstance(status, str) else {}),
            **self.child_tags(key, **{"mnistlab.state": state.lower(),
                                      "mnistlab.pruned": str(pruned).lower(),
                                      "mnistlab.trial": str(trial.number)})}, self.run_id)
        metrics = [("val_accuracy", v, epoch) for epoch, v in sorted(values.items())]
        last = max(values, default=0)  # every final/ figure at the last epoch, as a run's
        if trial.value is not None:
            metrics.append(("final/val_accuracy", trial.value, last))
        for name in ("epochs", "seconds"):
            if isinstance(trial.user_attrs.get(name), (int, float)):
                metrics.append((f"final/{name}", float(trial.user_attrs[name]), last))
        params = {**config.to_dict(), **{f"trial.{k}": v for k, v in trial.params.items()}}
        if cut is not None:
            params, metrics = ml.not_logged(self.store, cut, params, metrics)
        self.store.log(run_id, params=params, metrics=metrics)
        self.store.end(run_id, "FAILED" if state == "DIVERGED" else "FINISHED")
        self.logged.add(key)

    def finish(self, result: TuneResult) -> None:
        """Trials not yet logged (a resumed search, other workers'), the retrained runs, then
        the report as the parent's artifacts and the best value as its metric."""
        with self.all_at_once():  # as the store holds them now: other workers' logged too
            for trial in result.trials:
                self.trial_finished(trial)
            for run in [*result.retrained, *result.compared]:
                self._retrained(Path(run.out))
        best = ([("best/val_accuracy", result.best.value, result.best.number)]
                if result.best is not None else [])
        self.end(SEARCH_FILES, best)

    def _retrained(self, folder: Path) -> None:
        label = folder.name
        if self.tracking.tensorboard:
            logdir = self.tracking.out / tb.SUBFOLDER / f"retrain-{label}"
            if not logdir.exists():
                tb.log_folder(folder, logdir)
        if self.store is not None and self.parent() is not None:
            self.folder_child(f"retrain-{label}",
                              t(self.tracking.lang, "tracking.run.retrain", label=label), folder)
