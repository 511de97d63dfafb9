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
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import files, interrupt, objectives
from .allocator import keep_freed_memory
from .augment import random_affine
from .config import TrainConfig
from .data import Dataset, load_dataset, stratified_split
from .errors import MnistlabError
from .models import build_model
from .progress import Reporter, SilentReporter

TRACE_POINTS_PER_EPOCH = 50  # loss samples kept per epoch for plots and the doctor
EARLY_STEPS = 50  # the doctor's first look comes after this many steps


# --- data ------------------------------------------------------------------------------------
@dataclass
class Splits:
    """Everything a run trains and scores on, as tensors on the training device."""

    train_x: torch.Tensor  # uint8 (N, C, H, W)
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    eval_idx: torch.Tensor  # fixed training sample scored in eval mode each epoch
    mean: float
    std: float
    class_names: list[str]
    dataset_name: str
    val_source: str

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.train_x.shape[1:])  # type: ignore[return-value]


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise MnistlabError(
            "device: cuda was asked for but no CUDA GPU is visible; use --device auto")
    if name == "mps" and not (getattr(torch.backends, "mps", None)
                              and torch.backends.mps.is_available()):
        raise MnistlabError("device: mps was asked for but is not available; use --device auto")
    return torch.device(name)


def prepare_data(config: TrainConfig, dataset: Dataset | None = None,
                 device: torch.device | None = None) -> Splits:
    """Load (or take) the dataset, hold out validation, subset, and move it to the device."""
    dataset = dataset or load_dataset(config.dataset, data_dir=config.data_dir)
    device = device or resolve_device(config.device)
    images, labels = dataset.train_images, dataset.train_labels
    if config.val_from == "test":
        warnings.warn(
            "val-from=test: validating on the test set, as the original study did; the test "
            "accuracy is then no longer an unbiased estimate", stacklevel=2)
        train_idx = torch.arange(len(labels))
        val_x, val_y = dataset.test_images, dataset.test_labels
    else:
        train_idx, val_idx = stratified_split(labels, config.val_size, config.data_seed)
        val_x, val_y = images[val_idx], labels[val_idx]
    if config.train_subset and config.train_subset < len(train_idx) - splits_floor(labels):
        keep, _ = stratified_split(labels[train_idx], len(train_idx) - config.train_subset,
                                   config.data_seed + 1)
        train_idx = train_idx[keep]
    train_x, train_y = images[train_idx], labels[train_idx]
    if config.shuffle_labels:  # teaching aid: the labels stop describing the images
        g = torch.Generator().manual_seed(config.data_seed + 7)
        train_y = train_y[torch.randperm(len(train_y), generator=g)]
    g = torch.Generator().manual_seed(config.data_seed + 11)
    eval_n = min(config.eval_train_size, len(train_y))
    eval_idx = torch.randperm(len(train_y), generator=g)[:eval_n]

    def put(x: torch.Tensor) -> torch.Tensor:
        return (x.unsqueeze(1) if x.dim() == 3 else x).to(device)

    return Splits(
        train_x=put(train_x), train_y=train_y.to(device), val_x=put(val_x),
        val_y=val_y.to(device), test_x=put(dataset.test_images),
        test_y=dataset.test_labels.to(device), eval_idx=eval_idx.to(device),
        mean=dataset.mean, std=dataset.std, class_names=list(dataset.class_names),
        dataset_name=dataset.name, val_source=config.val_from,
    )


def splits_floor(labels: torch.Tensor) -> int:
    """A subset must leave at least one image per class out (the split it is drawn with)."""
    return int(labels.max()) + 1 if len(labels) else 0


def to_input(x: torch.Tensor, config: TrainConfig, mean: float, std: float,
             augment: dict[str, float] | None = None) -> torch.Tensor:
    """uint8 images -> the float tensor the model sees (augmented first, then scaled)."""
    x = x.float().div_(255)
    if augment:
        x = random_affine(x, **augment)
    if config.input_scaling == "standardize":
        return x.sub_(mean).div_(std)
    if config.input_scaling == "raw":  # teaching aid: pixels in 0..255
        return x.mul_(255)
    return x


def to_fast_layout(model: nn.Module, device: torch.device) -> nn.Module:
    """Move to the device; conv nets go channels-last, which oneDNN (CPU) and cuDNN run much
    faster (measured here: a 16-32-64 conv net step at batch 256, 68 -> 39 ms)."""
    model = model.to(device)
    if device.type in ("cpu", "cuda") and any(isinstance(m, nn.Conv2d) for m in model.modules()):
        model = model.to(memory_format=torch.channels_last)
    return model


# --- optimisation ----------------------------------------------------------------------------
def build_optimizer(config: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    params = list(model.parameters())
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum,
                               nesterov=config.nesterov, weight_decay=config.weight_decay)
    # torch's fused Adam: one kernel for every parameter instead of ~10 small ops each, which
    # is ~10% of a small network's step on a CPU (SGD's fused form measured no faster)
    fused = bool(params) and params[0].device.type in ("cpu", "cuda")
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay,
                                 fused=fused)
    return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay, fused=fused)


def schedule_factor(config: TrainConfig, total_steps: int) -> Callable[[int], float]:
    """Step -> multiplier of the base learning rate, for the schedules that are a plain factor
    (constant, cosine, step); one-cycle also cycles momentum and is torch's own scheduler."""
    total = max(1, total_steps)
    if config.schedule == "cosine":
        def factor(step: int) -> float:
            return 0.5 * (1 + math.cos(math.pi * min(step, total) / total))
    elif config.schedule == "step":
        def factor(step: int) -> float:  # x0.1 at half and at three quarters of the run
            return 0.1 ** ((step >= total * 0.5) + (step >= total * 0.75))
    else:
        def factor(step: int) -> float:
            return 1.0
    return factor


def build_schedule(config: TrainConfig, optimizer: torch.optim.Optimizer,
                   total_steps: int) -> torch.optim.lr_scheduler.LRScheduler:
    """Stepped once per batch. Only `constant` is independent of the run's total length."""
    if config.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr,
                                                   total_steps=max(1, total_steps))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, schedule_factor(config, total_steps))


def schedule_depends_on_length(config: TrainConfig) -> bool:
    """True when a shorter run is not a prefix of a longer one (the planner needs this)."""
    return config.schedule != "constant" or config.early_stopping > 0


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
