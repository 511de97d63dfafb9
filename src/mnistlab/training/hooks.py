"""Hooks: what plugs into the moments of a training run, for one model or a cohort alike.

The protocol (override what you need; every method gets the shared `engine.Run`):

    on_run_start(run)                  before the first step (also on resume)
    on_step(run, sample)               at each sampled step (about 50 per epoch, and each of
                                       the first 50): progress, live loss
    on_finding(run, member, finding)   the doctor saw something, said once per code and member
    on_epoch_end(run)                  each member's new record is run.histories[m][-1];
                                       stop a member with run.stop(m, status, epoch)
    on_run_end(run)                    after the last epoch, before the members are scored
    on_member_finished(run, m, result) member m is scored, diagnosed, and its folder written
                                       (result.out, when there is one): a logger's moment for
                                       the final numbers and the files (curves, model)

Hooks run in the order they are given, so a checkpoint hook placed last saves what the others
decided. A hook with `state_dict()` / `load_state_dict()` has its state kept in the checkpoint.
An exception raised by a hook ends the run (Optuna's pruning does that on purpose).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .. import doctor, files, runs
from ..errors import MnistlabError
from ..progress import Reporter
from ..records import EpochRecord, Finding, Observation, RunResult
from .engine import CHECKPOINT_FORMAT, Run, StepSample
from .evaluation import tta_view_count


class Hook:
    """No-op base: override the moments you need."""

    def on_run_start(self, run: Run) -> None:
        pass

    def on_step(self, run: Run, sample: StepSample) -> None:
        pass

    def on_finding(self, run: Run, member: int, finding: Finding) -> None:
        pass

    def on_epoch_end(self, run: Run) -> None:
        pass

    def on_run_end(self, run: Run) -> None:
        pass

    def on_member_finished(self, run: Run, member: int, result: RunResult) -> None:
        pass


class Progress(Hook):
    """A `Reporter` (a progress bar, a worker's event queue, a trial table) fed from the run.
    A cohort reports as one run: its first member's epochs, every member's steps."""

    def __init__(self, reporter: Reporter) -> None:
        self.reporter = reporter

    def on_run_start(self, run: Run) -> None:
        self.reporter.run_started(run.config, run.config.epochs, run.steps_per_epoch,
                                  done_epochs=run.epochs_done)
        if run.size == 1:
            for finding in doctor.problems(run.findings[0]):
                self.reporter.finding(finding.to_dict(self.reporter.lang))

    def on_step(self, run: Run, sample: StepSample) -> None:
        self.reporter.step_progress(sample.steps, sample.loss, sample.accuracy)

    def on_finding(self, run: Run, member: int, finding: Finding) -> None:
        if run.size == 1:
            self.reporter.finding(finding.to_dict(self.reporter.lang))

    def on_epoch_end(self, run: Run) -> None:
        self.reporter.epoch_ended(run.epoch_record())  # member 0 may have stopped earlier

    def on_run_end(self, run: Run) -> None:
        statuses = set(run.statuses)
        self.reporter.run_ended(statuses.pop() if len(statuses) == 1 else "diverged")
        if run.size == 1 and run.statuses[0] != "diverged":  # what finish_member scores next
            views = tta_view_count(run.config, run.splits.image_shape) if run.config.tta else 1
            self.reporter.final_scoring(views, run.config.ensemble)


class LiveDoctor(Hook):
    """The doctor's look at each epoch end: a new problem is said as soon as it shows."""

    def on_epoch_end(self, run: Run) -> None:
        splits, val = run.splits, run.last_val
        k = splits.num_classes
        labels = torch.bincount(splits.val_y.cpu(), minlength=k).tolist()
        for m, config in enumerate(run.learner.configs):
            history = run.histories[m]
            if not history or history[-1].epoch != run.epoch or val is None:
                continue  # a member that stopped in an earlier epoch
            record = history[-1]
            predicted = (torch.bincount(val.predictions[m], minlength=k).tolist()
                         if val.predictions is not None else None)
            seen = Observation(run.statuses[m], splits.class_names, run.traces[m], labels,
                               predicted, record.val_accuracy, record.val_loss,
                               record.val_metric, len(splits.train_y))
            for finding in doctor.problems(doctor.diagnose(config, history, seen)):
                run.say(m, finding)


class EarlyStopping(Hook):
    """Stop a one-model run after `patience` epochs without a better validation accuracy, and
    give it back the weights of its best epoch (the scored ones: the average, with --ema)."""

    def __init__(self, patience: int) -> None:
        self.patience = patience
        self.best: dict[str, Any] = {"val_accuracy": -1.0, "epoch": 0, "state": None}

    def on_epoch_end(self, run: Run) -> None:
        if not run.training(0):
            return
        record: EpochRecord = run.histories[0][-1]
        if record.val_accuracy > self.best["val_accuracy"]:
            model = run.learner.member_model(0)
            self.best = {"val_accuracy": record.val_accuracy, "epoch": record.epoch,
                         "state": {k: v.detach().cpu().clone()
                                   for k, v in model.state_dict().items()}}
        if record.epoch - self.best["epoch"] >= self.patience:
            run.stop(0, "early-stopped", record.epoch)

    def on_run_end(self, run: Run) -> None:
        if run.statuses[0] == "early-stopped" and self.best["state"] is not None:
            # the best epoch's weights
            run.learner.member_model(0).load_state_dict(self.best["state"])

    def state_dict(self) -> dict[str, Any]:
        return dict(self.best)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = dict(state)


class Checkpoint(Hook):
    """Save the run at each epoch end (put it last: it saves what the other hooks decided)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def on_epoch_end(self, run: Run) -> None:
        files.torch_save(self.path, run.snapshot())
        runs.drop_replaced(self.path.parent)  # an --overwrite's new run has an epoch to keep

    def on_run_end(self, run: Run) -> None:
        """An epoch cut short by Ctrl-C is undone: the weights go back to the last whole
        epoch, which this file holds, so the folder's model.pt, val and test scores are those
        of the epoch metrics.csv ends with (they were the cut epoch's, beside the whole
        epoch's train accuracy). Cut in the first epoch, there is none to go back to."""
        if all(p is None for p in run.partial) or not self.path.exists():
            return
        try:
            saved = runs.load_checkpoint(self.path, run.learner.configs, CHECKPOINT_FORMAT)
        except MnistlabError:
            return  # unreadable: the weights in memory are written, as before
        run.learner.load_state_dict(saved["learner"])
