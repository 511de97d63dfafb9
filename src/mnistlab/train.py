"""One training run: data as tensors, a step function, a short epoch loop, a history.

`train(config) -> RunResult` is the only entry point; studies, tuners and the CLI all call it.
The data lives on the training device as uint8 tensors (no DataLoader: it fits in memory);
every epoch's randomness is seeded from (data_seed, epoch) for the batch order and from
(seed, epoch) for augmentation and dropout, so a run resumed from its epoch checkpoint continues
exactly as if it had never stopped.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import files, interrupt, objectives
from .allocator import keep_freed_memory
from .config import TrainConfig
from .data import Dataset
from .data.tensors import Splits, prepare_data, to_input
from .device import resolve_device, to_fast_layout
from .models import build_model
from .optim import build_optimizer, build_schedule
from .progress import Reporter, SilentReporter

TRACE_POINTS_PER_EPOCH = 50  # loss samples kept per epoch for plots and the doctor
EARLY_STEPS = 50  # the doctor's first look comes after this many steps


@dataclass
class TrainState:
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    loss_fn: objectives.LossFn
    step: int = 0
    binary_metric: bool = False  # count per-output binary accuracy too (teaching aid only)
    constant_lr: bool = False  # nothing for the scheduler to do: skip its per-step call


def train_step(state: TrainState, x: torch.Tensor,
               y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """One optimisation step on one batch; returns (loss, correct, binary_correct) tensors, the
    last None unless the binary metric was asked for."""
    state.model.train()
    logits = state.model(x)
    loss = state.loss_fn(logits, y)
    state.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    state.optimizer.step()
    if not state.constant_lr:
        state.scheduler.step()
    state.step += 1
    with torch.no_grad():
        # the binary count costs a softmax per step: only when that metric was asked for
        binary = objectives.binary_correct_count(logits, y) if state.binary_metric else None
        return loss.detach(), objectives.correct_count(logits, y), binary


@dataclass
class Evaluation:
    loss: float
    accuracy: float
    metric: float  # what the configured metric reports (differs only for binary-accuracy)
    predictions: torch.Tensor  # arg-max class per image, on the CPU
    mean_max_prob: float


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, config: TrainConfig,
             mean: float, std: float, num_classes: int, batch_size: int = 2000) -> Evaluation:
    """Eval mode (dropout off, batch-norm running stats), no augmentation."""
    if len(y) == 0:
        return Evaluation(math.nan, math.nan, math.nan, torch.empty(0, dtype=torch.long), math.nan)
    model.eval()
    loss_fn = objectives.make_loss(config, train=False)
    total_loss, correct, binary, max_prob = 0.0, 0, 0, 0.0
    predictions = []
    for start in range(0, len(y), batch_size):
        xb = to_input(x[start:start + batch_size], config, mean, std)
        yb = y[start:start + batch_size]
        logits = model(xb)
        total_loss += float(loss_fn(logits, yb)) * len(yb)
        correct += int(objectives.correct_count(logits, yb))
        binary += int(objectives.binary_correct_count(logits, yb))
        max_prob += float(logits.softmax(dim=1).max(dim=1).values.sum())
        predictions.append(logits.argmax(dim=1).cpu())
    n = len(y)
    return Evaluation(
        loss=total_loss / n, accuracy=correct / n,
        metric=objectives.metric_value(config, correct, binary, n, num_classes),
        predictions=torch.cat(predictions), mean_max_prob=max_prob / n)


# --- the run ---------------------------------------------------------------------------------
@dataclass
class RunResult:
    """What `train` returns: the same fields as summary.json, plus the live model."""

    config: TrainConfig
    summary: dict[str, Any]
    history: list[dict[str, float]]
    out: Path | None = None
    model: nn.Module | None = field(default=None, repr=False)
    reused: bool = False  # read back from a finished run folder, not trained now

    def __getattr__(self, name: str) -> Any:  # result.val_accuracy == summary["val_accuracy"]
        summary = self.__dict__.get("summary", {})
        if name in summary:
            return summary[name]
        raise AttributeError(name)


def _epoch_seed(seed: int, epoch: int) -> int:
    return (seed * 1_000_003 + epoch * 7919) % (2**63 - 1)


def epoch_order(n: int, data_seed: int, epoch: int, device: torch.device) -> torch.Tensor:
    """The batch order of one epoch: a function of (data_seed, epoch) only, so runs that differ
    in `seed` alone see the same batches (and can train in one cohort)."""
    generator = torch.Generator().manual_seed(_epoch_seed(data_seed, epoch))
    return torch.randperm(n, generator=generator).to(device)


def train(config: TrainConfig, *, out: str | Path | None = None, dataset: Dataset | None = None,
          splits: Splits | None = None, reporter: Reporter | None = None,
          evaluate_test: bool = True, overwrite: bool = False, write_plots: bool = True,
          callbacks: list[Any] | None = None) -> RunResult:
    """Train one model. With `out`, write the run folder and an epoch checkpoint for resuming.

    `out` may be new, empty, or a run folder of this same configuration: an interrupted run
    resumes from its last epoch, a finished one is read back (nothing is trained). A folder of
    another configuration is refused unless `overwrite`; anything else is refused. While the
    run trains, the folder is locked against a second process.
    `evaluate_test=False` keeps the test set untouched (study runs other than the final one);
    `write_plots=False` skips curves.png/confusion.png (a study draws its own).
    Ctrl-C (or `interrupt.request()`) ends the run after the current step; what was computed
    is kept and written, the unfinished epoch marked as such in the summary.
    """
    from . import runs  # late import: it reads what this module defines

    if out is None:
        return _train(config, None, dataset, splits, reporter, evaluate_test, write_plots,
                      callbacks, resume=False)
    out_dir = Path(out)
    runs.check_run_folder(out_dir)  # before anything is written into it
    files.check_output_folder(out_dir)
    with files.exclusive(out_dir / runs.LOCK_FILE, "a training run"):
        state = runs.claim_run_folder(out_dir, config, overwrite=overwrite,
                                      needs_test=evaluate_test)
        if state == "finished":
            return runs.load_result(out_dir, config)
        return _train(config, out_dir, dataset, splits, reporter, evaluate_test, write_plots,
                      callbacks, resume=state == "resume")


def _train(config: TrainConfig, out_dir: Path | None, dataset: Dataset | None,
           splits: Splits | None, reporter: Reporter | None, evaluate_test: bool,
           write_plots: bool, callbacks: list[Any] | None, *, resume: bool) -> RunResult:
    from . import doctor, runs  # late import: both read what this module defines

    keep_freed_memory()
    reporter = reporter or SilentReporter()
    callbacks = list(callbacks or [])
    device = resolve_device(config.device)
    splits = splits or prepare_data(config, dataset, device)

    torch.manual_seed(config.seed)
    model = to_fast_layout(build_model(config, splits.image_shape, splits.num_classes), device)
    n_train = len(splits.train_y)
    steps_per_epoch = math.ceil(n_train / config.batch_size)
    optimizer = build_optimizer(config, model)
    scheduler = build_schedule(config, optimizer, steps_per_epoch * config.epochs)
    state = TrainState(model, optimizer, scheduler, objectives.make_loss(config),
                       binary_metric=config.metric == "binary-accuracy",
                       constant_lr=config.schedule == "constant")
    augment = config.augmentation

    findings = doctor.preflight(config, splits)
    history: list[dict[str, float]] = []
    trace: list[list[float]] = []
    early_losses: list[float] = []
    best = {"val_accuracy": -1.0, "epoch": 0, "state": None}
    said: set[str] = set()  # problem codes already reported live
    status, seconds = "completed", 0.0
    ckpt_path = out_dir / "checkpoint.pt" if out_dir else None
    if resume and ckpt_path is not None and ckpt_path.exists():
        saved = runs.load_checkpoint(ckpt_path, config)
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        history, trace = saved["history"], saved["trace"]
        early_losses, seconds, state.step = saved["early_losses"], saved["seconds"], saved["step"]
        best = saved["best"]
        status = saved.get("status", "completed")

    reporter.run_started(config, config.epochs, steps_per_epoch, done_epochs=len(history))
    for finding in doctor.problems(findings):  # pre-flight problems are said before step one
        said.add(finding.code)
        reporter.finding(finding.to_dict())
    trace_every = max(1, steps_per_epoch // TRACE_POINTS_PER_EPOCH)
    start_epoch = len(history) + 1
    if status != "completed":
        start_epoch = config.epochs + 1  # a diverged or early-stopped run does not restart
    cut_short: dict[str, Any] | None = None  # the epoch an interruption cut short
    with interrupt.listening():  # Ctrl-C stops the loop after the current step
        for epoch in range(start_epoch, config.epochs + 1):
            if interrupt.requested():
                status = "interrupted"
                break
            epoch_start = time.perf_counter()
            torch.manual_seed(_epoch_seed(config.seed, epoch))
            order = epoch_order(n_train, config.data_seed, epoch, device)
            # running sums stay on the device (no sync per step); two in-place adds per step
            loss_sum = torch.zeros((), dtype=torch.float64, device=device)
            correct_sum = torch.zeros((), dtype=torch.long, device=device)
            binary_sum = torch.zeros((), dtype=torch.long, device=device)
            seen = 0
            lr_at_start = optimizer.param_groups[0]["lr"]
            try:
                for start in range(0, n_train, config.batch_size):
                    if interrupt.requested():
                        status = "interrupted"
                        break
                    idx = order[start:start + config.batch_size]
                    x = to_input(splits.train_x[idx], config, splits.mean, splits.std, augment)
                    loss, correct, binary = train_step(state, x, splits.train_y[idx])
                    loss_sum.add_(loss, alpha=len(idx))
                    correct_sum.add_(correct)
                    if binary is not None:
                        binary_sum.add_(binary)
                    seen += len(idx)
                    early = state.step <= EARLY_STEPS
                    if early or state.step % trace_every == 0:
                        value = float(loss)
                        if early:
                            early_losses.append(value)
                        trace.append([state.step, value])
                        # NaN/inf, an explosion, or a loss that keeps climbing: stop
                        if doctor.diverging(value, early_losses[0], trace, splits.num_classes):
                            status = "diverged"
                            break
                        if state.step == EARLY_STEPS:
                            found = doctor.early_check(early_losses, splits.num_classes, config)
                            findings = doctor.merge(findings, found)
                            for finding in found:
                                said.add(finding.code)
                                reporter.finding(finding.to_dict())
                        reporter.step_progress(trace_every if not early else 1, value,
                                               float(correct) / len(idx))
            except KeyboardInterrupt:  # no handler installed (Python use): the same, said late
                status = "interrupted"
            seconds += time.perf_counter() - epoch_start
            if seen == 0:
                break
            running_loss, running_correct, running_binary = (
                float(loss_sum), float(correct_sum), float(binary_sum))
            if status == "interrupted" and seen < n_train:
                # not a whole epoch: kept apart so that metrics.csv, resume and the doctor only
                # ever see whole epochs (the checkpoint holds the last whole one)
                cut_short = {"epoch": epoch, "images": seen, "of_images": n_train,
                             "train_loss": running_loss / seen,
                             "train_acc_running": running_correct / seen}
                break
            eval_train = evaluate(model, splits.train_x[splits.eval_idx],
                                  splits.train_y[splits.eval_idx], config, splits.mean,
                                  splits.std, splits.num_classes)
            val = evaluate(model, splits.val_x, splits.val_y, config, splits.mean, splits.std,
                           splits.num_classes)
            record = {
                "epoch": epoch,
                "train_loss": running_loss / seen,
                "train_acc_running": running_correct / seen,
                "train_metric_running": objectives.metric_value(
                    config, running_correct, running_binary, seen, splits.num_classes),
                "train_loss_eval": eval_train.loss,
                "train_acc_eval": eval_train.accuracy,
                "val_loss": val.loss,
                "val_acc": val.accuracy,
                "val_metric": val.metric,
                "lr": lr_at_start,
                "seconds": time.perf_counter() - epoch_start,
            }
            history.append(record)
            if not math.isfinite(record["train_loss"]) or not math.isfinite(val.loss):
                status = "diverged"
            for callback in callbacks:
                if hasattr(callback, "on_epoch_end"):
                    callback.on_epoch_end(record, history)
            reporter.epoch_ended(record)
            # the doctor's look at each epoch end: say a new problem as soon as it shows
            partial = {"status": status, "class_names": splits.class_names, "loss_trace": trace,
                       "val_label_counts": torch.bincount(splits.val_y.cpu(),
                                                          minlength=splits.num_classes).tolist(),
                       "val_pred_counts": torch.bincount(val.predictions,
                                                         minlength=splits.num_classes).tolist(),
                       "val_accuracy": val.accuracy, "val_loss": val.loss,
                       "val_metric": val.metric, "train_size": n_train}
            now = doctor.problems(doctor.diagnose(config, history, partial))
            for finding in now:
                if finding.code not in said:
                    said.add(finding.code)
                    reporter.finding(finding.to_dict())
            if status == "completed" and val.accuracy > best["val_accuracy"]:
                best = {"val_accuracy": val.accuracy, "epoch": epoch,
                        "state": ({k: v.detach().cpu().clone()
                                   for k, v in model.state_dict().items()}
                                  if config.early_stopping else None)}
            if (status == "completed" and config.early_stopping
                    and epoch - best["epoch"] >= config.early_stopping):
                status = "early-stopped"
            if ckpt_path is not None:
                runs.save_checkpoint(ckpt_path, config, model, optimizer, scheduler,
                                     history=history, trace=trace, early_losses=early_losses,
                                     seconds=seconds, step=state.step, best=best,
                                     status="completed" if status == "interrupted" else status)
            if status != "completed":
                break

    if status == "early-stopped" and best["state"] is not None:
        model.load_state_dict(best["state"])  # keep the weights of the best epoch
    reporter.run_ended(status)
    test = None
    if evaluate_test and status != "diverged":
        test = evaluate(model, splits.test_x, splits.test_y, config, splits.mean, splits.std,
                        splits.num_classes)
    val_final = evaluate(model, splits.val_x, splits.val_y, config, splits.mean, splits.std,
                         splits.num_classes) if status != "diverged" else None
    summary = runs.make_summary(config, splits, model, history, status=status, seconds=seconds,
                                test=test, val=val_final, trace=trace, device=device)
    if cut_short is not None:
        summary["partial_epoch"] = cut_short
    findings = doctor.merge(findings, doctor.diagnose(config, history, summary,
                                                      early_losses=early_losses))
    summary["diagnoses"] = [f.to_dict() for f in findings]
    result = RunResult(config=config, summary=summary, history=history, out=out_dir, model=model)
    if out_dir is not None:
        runs.write_run(out_dir, result, splits, test, plots=write_plots)
    return result
