"""The epoch engine: one loop that trains one model, or many in lockstep, epoch by epoch.

What is trained, and how one step and one evaluation are done, is a `Learner`'s business: one
model with its optimizer (`single.ModelLearner`), or a cohort of stacked MLPs
(`cohort.CohortLearner`), each learner a set of *members* that see the same batches. The engine
does everything else, once for all of them:

- the batch order of each epoch (a function of `data_seed` and the epoch only) and the seed of
  the epoch's randomness (augmentation, dropout), so a resumed run continues exactly;
- running loss and accuracy, sampled into each member's loss trace, with the doctor's checks at
  the sampled steps (a member whose loss turns non-finite or explodes is stopped as diverged,
  the others go on) and its first look after `EARLY_STEPS` steps;
- the epoch's end: eval-mode train accuracy on a fixed sample, validation, one `EpochRecord`
  per member;
- Ctrl-C: the loop stops after its current step (see `interrupt`); a cut epoch is kept apart;
- the moments where other features plug in, as hooks (see hooks.py): run start, sampled steps,
  findings, epoch end, run end. Progress, the live doctor, early stopping, checkpoints, Optuna's
  pruning and user callbacks are all hooks.

    run = Run.start(learner, splits, hooks)
    run_epochs(run)          # then finish each member (finish.py)
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch

from .. import doctor, interrupt
from ..config import TrainConfig, torch_seed
from ..data.tensors import Splits, to_input
from ..device import wide_float
from ..errors import MnistlabError
from ..records import EpochRecord, Finding, code_version
from .graphs import GraphedStep

TRACE_POINTS_PER_EPOCH = 50  # loss samples kept per epoch for plots and the doctor
EARLY_STEPS = 50  # the doctor's first look comes after this many steps
CHUNK_IMAGES = 8192  # training images gathered (and scaled) at once: 25 MB as float32
CHECKPOINT_FORMAT = "mnistlab-checkpoint-2"


@dataclass
class Scores:
    """A learner's evaluation of its members on some images (one entry per member)."""

    loss: list[float]
    accuracy: list[float]
    metric: list[float]
    predictions: list[torch.Tensor] | None = None  # arg-max classes, when the learner has them


class Learner(Protocol):
    """Members trained together on one batch stream (a single model is a learner of one)."""

    configs: list[TrainConfig]  # one per member; equal in everything a batch depends on
    # augmented copies of each batch it takes, side by side along the channels: 1, or N for an
    # ensemble whose N members each draw their own augmentation (ensemble.py)
    input_copies: int
    graphed: GraphedStep  # its step's pass, replayed from CUDA graphs on a GPU (graphs.py)

    def epoch_seed(self, epoch: int) -> int:
        """The seed of the epoch's randomness (augmentation, dropout)."""

    def learning_rates(self) -> list[float]:
        """Each member's learning rate now (read at the start of each epoch)."""

    def step(self, x: torch.Tensor, y: torch.Tensor
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """One optimisation step: (loss, correct, binary-correct or None), shape (members,).
        The tensors are valid until the next step (a CUDA graph rewrites them: graphs.py)."""

    def evaluate(self, x: torch.Tensor, y: torch.Tensor) -> Scores:
        """Every member in eval mode on (x, y)."""

    def stop_member(self, member: int) -> None:
        """A member diverged: stop updating it (the others go on)."""

    def state_dict(self) -> dict[str, Any]:
        ...

    def load_state_dict(self, state: dict[str, Any]) -> None:
        ...


def _epoch_seed(seed: int, epoch: int) -> int:
    return (seed * 1_000_003 + epoch * 7919) % (2**63 - 1)


def epoch_seed(seed: int, epoch: int) -> int:
    """A seed for epoch `epoch` of something seeded with `seed` (the same on every resume)."""
    return _epoch_seed(seed, epoch)


def run_epoch_seed(seed: int, epoch: int) -> int:
    """The seed of epoch `epoch`'s randomness (augmentation, dropout) in a run of `seed`: what
    a run alone and its member of a cohort both draw from."""
    return _epoch_seed(torch_seed(seed), epoch)


def epoch_order(n: int, data_seed: int, epoch: int, device: torch.device) -> torch.Tensor:
    """The batch order of one epoch: a function of (data_seed, epoch) only, so runs that differ
    in `seed` alone see the same batches (and can train in one cohort)."""
    generator = torch.Generator().manual_seed(_epoch_seed(torch_seed(data_seed), epoch))
    return torch.randperm(n, generator=generator).to(device)


@dataclass
class StepSample:
    """A sampled step, as progress hooks see it."""

    steps: int  # steps since the previous sample
    loss: float  # the epoch's running mean so far, of the members still training
    accuracy: float  # the same, over all members


@dataclass
class Run:
    """The state of a training run (one or many members) that the engine and hooks share."""

    learner: Any
    splits: Splits
    hooks: list[Any]
    histories: list[list[EpochRecord]]
    traces: list[list[list[float]]]  # [step, loss] samples per member
    early_losses: list[list[float]]  # each member's first EARLY_STEPS losses
    statuses: list[str]  # completed (still training, or done) | diverged | early-stopped | ...
    ended: list[int]  # the epoch in which a member stopped (0: never)
    findings: list[list[Finding]]  # what the doctor found before and during training
    said: list[set[str]]  # finding codes already told to the hooks, per member
    partial: list[dict[str, float] | None]  # the epoch an interruption cut short
    step: int = 0
    epoch: int = 0  # the epoch in training (or last trained)
    seconds: float = 0.0  # training time: steps only, evaluations excluded
    last_val: Scores | None = field(default=None, repr=False)  # the last epoch's validation
    # the code that trained it: this process's, after each earlier one a checkpoint names
    code_versions: list[str] = field(default_factory=lambda: [code_version()])

    @classmethod
    def start(cls, learner: Any, splits: Splits, hooks: list[Any]) -> Run:
        size = len(learner.configs)
        run = cls(learner, splits, list(hooks), [[] for _ in range(size)],
                  [[] for _ in range(size)], [[] for _ in range(size)], ["completed"] * size,
                  [0] * size, [doctor.preflight(c, splits) for c in learner.configs],
                  [set() for _ in range(size)], [None] * size)
        for m in range(size):  # pre-flight problems are said before step one
            run.said[m].update(f.code for f in doctor.problems(run.findings[m]))
        _warn_of_one_step(learner.configs, len(splits.train_y))
        return run

    @property
    def size(self) -> int:
        return len(self.learner.configs)

    @property
    def config(self) -> TrainConfig:
        """The settings every member shares (data, batches, epochs)."""
        return self.learner.configs[0]

    @property
    def epochs_done(self) -> int:
        """Whole epochs trained: the longest history (a member that stopped early has fewer)."""
        return max((len(h) for h in self.histories), default=0)

    def epoch_record(self) -> EpochRecord:
        """The record of the epoch just ended, from the first member trained in it."""
        return next(h[-1] for h in self.histories if h and h[-1].epoch == self.epoch)

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(len(self.splits.train_y) / self.config.batch_size)

    def training(self, member: int) -> bool:
        return self.statuses[member] == "completed"

    def stop(self, member: int, status: str, epoch: int) -> None:
        """End `member`'s training with `status` (diverged, early-stopped, interrupted)."""
        self.statuses[member], self.ended[member] = status, epoch
        if status == "diverged":
            self.learner.stop_member(member)

    def say(self, member: int, finding: Finding) -> None:
        """Tell the hooks about a finding, once per code and member."""
        if finding.code not in self.said[member]:
            self.said[member].add(finding.code)
            for hook in self.hooks:
                hook.on_finding(self, member, finding)

    # --- checkpoints ---------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """Everything a resumed run needs, for a checkpoint file (see hooks.Checkpoint)."""
        return {
            "format": CHECKPOINT_FORMAT, "configs": [c.to_dict() for c in self.learner.configs],
            "data_digest": self.splits.data_digest,
            "learner": self.learner.state_dict(),
            "histories": [[r.to_row() for r in h] for h in self.histories],
            "traces": self.traces, "early_losses": self.early_losses,
            # an interrupted member resumes: its checkpoint holds its last whole epoch
            "statuses": [("completed" if s == "interrupted" else s) for s in self.statuses],
            "ended": [0 if s == "interrupted" else e for s, e in zip(self.statuses, self.ended)],
            "findings": [[f.to_dict() for f in fs] for fs in self.findings],
            "step": self.step, "seconds": self.seconds, "code_versions": self.code_versions,
            "hooks": {key: _plain_state(h, h.state_dict()) for key, h in _keyed(self.hooks)
                      if hasattr(h, "state_dict")}}

    def restore(self, saved: dict[str, Any]) -> None:
        self.learner.load_state_dict(saved["learner"])
        self.histories = [[EpochRecord.from_row(r) for r in h] for h in saved["histories"]]
        self.traces, self.early_losses = saved["traces"], saved["early_losses"]
        self.statuses, self.ended = list(saved["statuses"]), list(saved["ended"])
        self.findings = [[Finding.from_dict(f) for f in fs] for fs in saved["findings"]]
        self.said = [{f.code for f in fs} for fs in self.findings]
        self.step, self.seconds = saved["step"], saved["seconds"]
        earlier = list(saved.get("code_versions") or [])  # none: a checkpoint of Dec 7 or before
        self.code_versions = earlier + [v for v in [code_version()] if v not in earlier[-1:]]
        for key, hook in _keyed(self.hooks):
            if hasattr(hook, "load_state_dict") and key in saved["hooks"]:
                hook.load_state_dict(saved["hooks"][key])


def _keyed(hooks: list[Any]) -> list[tuple[str, Any]]:
    """Each hook under its class's name, a second of one class under "Name#2" and so on: two
    of one class shared one saved state, and the first resumed from the second's (hunt). The
    first keeps the bare name that checkpoints made before this were written under."""
    seen: dict[str, int] = {}
    keyed = []
    for hook in hooks:
        name = type(hook).__name__
        seen[name] = seen.get(name, 0) + 1
        keyed.append((name if seen[name] == 1 else f"{name}#{seen[name]}", hook))
    return keyed


def _plain_state(hook: Any, state: Any) -> Any:
    """A hook's state as a checkpoint keeps it: numbers, text, lists, dicts and tensors, which
    a resumed run reads without running code; numpy's numbers and arrays made plain. Anything
    else is refused now, naming the hook: the run saved it, and could not be resumed."""
    if isinstance(state, (np.generic, np.ndarray)):
        return state.tolist()  # np.float64(3.0) -> 3.0, an array -> nested lists
    if isinstance(state, dict):  # keys too: np.int64(3) as a key was saved, then refused
        return {key.item() if isinstance(key, np.generic) else key: _plain_state(hook, value)
                for key, value in state.items()}
    if isinstance(state, (list, tuple)):  # a named tuple as a plain one, as it is read back
        plain = [_plain_state(hook, value) for value in state]
        return plain if isinstance(state, list) else tuple(plain)
    if state is None or isinstance(state, (bool, int, float, str, bytes, torch.Tensor)):
        return state
    raise MnistlabError(f"hooks: {type(hook).__name__}.state_dict() holds a value of type "
                        f"{type(state).__name__}, which a checkpoint cannot keep for a resumed "
                        "run to read safely; give numbers, text, lists, dicts and tensors")


# --- the loop ----------------------------------------------------------------------------------
def run_epochs(run: Run) -> None:
    """Train the run's members to their last epoch (or until none is training)."""
    config = run.config
    for hook in run.hooks:
        hook.on_run_start(run)
    with interrupt.listening():  # Ctrl-C stops the loop after the current step
        for epoch in range(run.epochs_done + 1, config.epochs + 1):
            if not any(run.training(m) for m in range(run.size)):
                break
            if interrupt.requested():
                _interrupted(run, epoch)
                break
            try:
                if not _epoch(run, epoch):
                    break
            except KeyboardInterrupt:  # no handler installed (Python use), outside the steps:
                if interrupt.requested():  # scoring, a hook. With the handler, this is the
                    raise  # second Ctrl-C, which stops at once (docs/errors.md)
                _interrupted(run, epoch)  # the checkpoint holds the last whole epoch, and
                break  # what is in memory is kept and written
    for hook in run.hooks:
        hook.on_run_end(run)


def _warn_of_one_step(configs: list[TrainConfig], images: int) -> None:
    """A batch larger than the training images makes each epoch one step of all of them
    (one-cycle then takes one step at its starting rate): said once per batch size, where
    training starts (not where data is prepared: `evaluate` trains nothing)."""
    for batch in sorted({c.batch_size for c in configs if c.batch_size > images > 0}):
        warnings.warn(f"batch-size {batch:,}: there are only {images:,} training images, so "
                      "each epoch is one step of all of them; give a smaller --batch-size for "
                      "more steps", stacklevel=3)


@dataclass
class _Sums:
    """Running sums of one epoch, on the device (no sync per step)."""

    loss: torch.Tensor
    correct: torch.Tensor
    binary: torch.Tensor
    seen: int = 0


def _epoch(run: Run, epoch: int) -> bool:
    """One epoch; False when the loop should end (nothing trains on, or it was cut short)."""
    config, splits, learner = run.config, run.splits, run.learner
    start = time.perf_counter()
    run.epoch = epoch
    torch.manual_seed(learner.epoch_seed(epoch))
    order = epoch_order(len(splits.train_y), config.data_seed, epoch, splits.train_y.device)
    lrs = learner.learning_rates()
    sums = _steps(run, epoch, order)
    seconds = time.perf_counter() - start  # the steps only, as the summary's total counts
    run.seconds += seconds
    n_train = len(splits.train_y)
    if sums.seen == 0:
        return False
    cut = any(s == "interrupted" for s in run.statuses)
    if cut and sums.seen < n_train:
        _keep_cut_epoch(run, epoch, sums)
        return False
    _end_of_epoch(run, epoch, sums, lrs, seconds)
    return any(run.training(m) for m in range(run.size))


def _steps(run: Run, epoch: int, order: torch.Tensor) -> _Sums:
    config, splits, learner = run.config, run.splits, run.learner
    device = splits.train_y.device
    size = run.size
    sums = _Sums(torch.zeros(size, dtype=wide_float(device), device=device),
                 torch.zeros(size, dtype=torch.long, device=device),
                 torch.zeros(size, dtype=torch.long, device=device))
    trace_every = max(1, run.steps_per_epoch // TRACE_POINTS_PER_EPOCH)
    sampled = run.step  # the step of the last sample: each sample counts the steps since
    try:
        for x, y in batches(run.splits, config, order, learner.input_copies):
            if interrupt.requested():
                _interrupted(run, epoch)
                break
            loss, correct, binary = learner.step(x, y)
            run.step += 1
            sums.loss.add_(loss, alpha=len(y))
            sums.correct.add_(correct)
            if binary is not None:
                sums.binary.add_(binary)
            sums.seen += len(y)
            early = run.step <= EARLY_STEPS
            if early or run.step % trace_every == 0:
                _sample(run, epoch, loss, sums, run.step - sampled)
                sampled = run.step
                if not any(run.training(m) for m in range(size)):
                    break
    except KeyboardInterrupt:  # no handler installed (Python use): the same, said late
        if interrupt.requested():  # with the handler: the second Ctrl-C, which stops at once
            raise
        _interrupted(run, epoch)
    return sums


def batches(splits: Splits, config: TrainConfig, order: torch.Tensor, copies: int = 1
            ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """An epoch's batches (inputs, labels) in `order`. Images are gathered CHUNK_IMAGES at a
    time, in whole batches, and without augmentation also scaled there, so that a step only
    takes a slice: on a GPU that is six kernel launches fewer per step, on a CPU 5% of a small
    MLP's step (benchmarks/batch_chunks.py). The numbers are the same as a batch's own gather and
    scaling. With augmentation each batch is augmented, then scaled, as it is taken; with
    `copies` > 1 (an ensemble's members drawing their own), side by side along the channels."""
    batch, augment = config.batch_size, config.augmentation
    per_chunk = max(1, CHUNK_IMAGES // batch) * batch
    for start in range(0, len(order), per_chunk):
        idx = order[start:start + per_chunk]
        images, labels = splits.train_x[idx], splits.train_y[idx]
        if not augment:
            images = to_input(images, config, splits.mean, splits.std)
        for first in range(0, len(idx), batch):
            x, y = images[first:first + batch], labels[first:first + batch]
            if augment:
                inputs = [to_input(x, config, splits.mean, splits.std, augment)
                          for _ in range(copies)]
                x = inputs[0] if copies == 1 else torch.cat(inputs, dim=1)
            yield x, y


def _sample(run: Run, epoch: int, loss: torch.Tensor, sums: _Sums, steps: int) -> None:
    """A sampled step: each training member's trace and the doctor's checks (this batch's
    loss), then progress (the epoch's running means so far: the last batch alone, 8 images
    of a partial one, showed "acc 1.000" or "acc 0.000" at an epoch's end)."""
    k, size = run.splits.num_classes, run.size
    # one read from the device (each is a sync on a GPU): this batch's losses, then the
    # epoch's loss sums and correct counts so far
    wide = sums.loss.dtype  # float64, float32 on MPS (wide_float)
    read = torch.cat([loss.detach().reshape(-1).to(wide), sums.loss,
                      sums.correct.to(wide)]).tolist()
    values, loss_sums, correct = read[:size], read[size:2 * size], sum(read[2 * size:])
    for m, value in enumerate(values):
        if not run.training(m):
            continue
        if run.step <= EARLY_STEPS:
            run.early_losses[m].append(value)
        run.traces[m].append([run.step, value])
        # NaN/inf, an explosion, or a loss that keeps climbing: stop this member
        if doctor.diverging(value, run.early_losses[m][0], run.traces[m], k):
            run.stop(m, "diverged", epoch)
        elif run.step == EARLY_STEPS:
            found = doctor.early_check(run.early_losses[m], k, run.learner.configs[m])
            run.findings[m] = doctor.merge(run.findings[m], found)
            for finding in found:
                run.say(m, finding)
    live = [m for m in range(len(values)) if run.training(m)]
    if not live:
        return  # nothing trains on: the loop ends here
    sample = StepSample(steps, sum(loss_sums[m] for m in live) / (len(live) * sums.seen),
                        correct / (sums.seen * size))
    for hook in run.hooks:
        hook.on_step(run, sample)


def _interrupted(run: Run, epoch: int) -> None:
    for m in range(run.size):
        if run.training(m):
            run.stop(m, "interrupted", epoch)


def _keep_cut_epoch(run: Run, epoch: int, sums: _Sums) -> None:
    """Not a whole epoch: kept apart so that metrics.csv, resume and the doctor only ever see
    whole epochs (the checkpoint holds the last whole one)."""
    for m in range(run.size):
        if run.statuses[m] == "interrupted":
            run.partial[m] = {"epoch": epoch, "images": sums.seen,
                              "of_images": len(run.splits.train_y),
                              "train_loss": float(sums.loss[m]) / sums.seen,
                              "train_accuracy_running": float(sums.correct[m]) / sums.seen}


def _end_of_epoch(run: Run, epoch: int, sums: _Sums, lrs: list[float],
                  seconds: float) -> None:
    """Score every member, append its record, and let the hooks see the epoch. `seconds`:
    the epoch's training steps, its scoring not counted (summary.json's seconds are their
    sum, and a study's row read off a longer run sums them: the two told two times apart)."""
    splits, learner = run.splits, run.learner
    sample = splits.eval_idx
    train_eval = learner.evaluate(splits.train_x[sample], splits.train_y[sample])
    val = learner.evaluate(splits.val_x, splits.val_y)
    run.last_val = val
    for m, config in enumerate(learner.configs):
        if run.ended[m] and run.ended[m] < epoch:
            continue  # stopped in an earlier epoch: its history ended there
        loss, correct = float(sums.loss[m]), float(sums.correct[m])
        record = EpochRecord(
            epoch=epoch, train_loss=loss / sums.seen,
            train_accuracy_running=correct / sums.seen,
            train_metric_running=_metric(config, correct, float(sums.binary[m]), sums.seen,
                                         splits.num_classes),
            train_loss_eval=train_eval.loss[m], train_accuracy_eval=train_eval.accuracy[m],
            val_loss=val.loss[m], val_accuracy=val.accuracy[m], val_metric=val.metric[m],
            lr=lrs[m], seconds=seconds / run.size)  # each member's share of the epoch
        run.histories[m].append(record)
        # with no validation images (val_size 0) the validation loss is NaN by definition
        watched = (record.train_loss, record.val_loss) if len(splits.val_y) else \
            (record.train_loss,)
        if run.training(m) and not all(map(math.isfinite, watched)):
            run.stop(m, "diverged", epoch)
    for hook in run.hooks:
        hook.on_epoch_end(run)


def _metric(config: TrainConfig, correct: float, binary: float, n: int, k: int) -> float:
    from ..objectives import metric_value

    return metric_value(config, correct, binary, n, k)
