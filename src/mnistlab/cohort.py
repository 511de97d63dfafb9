"""Many models in lockstep: one batch, stacked parameters, one fused optimizer step.

A study trains dozens of small MLPs that differ in a few numbers. Trained one after another, each
step is a handful of tiny matrix multiplies and per-step overhead, not arithmetic, is what costs.
A cohort stacks its members' weights along a member axis: the first layer of every member is one
matrix multiply (the batch is shared), each later layer one batched multiply (`torch.baddbmm`),
and the optimizer updates every member with a few tensor operations.

Members of a cohort share everything that decides which images a step sees and how the network
is wired: data and split (`data_seed`), batch size, epochs, schedule, architecture, optimizer
kind, loss. They may differ in learning rate, momentum, weight decay, dropout rate and `seed`
(initialisation and dropout masks). Each member starts from exactly the weights `train()` would
give it; its dropout masks come from the cohort's random stream, so a member's numbers match its
one-by-one twin within seed noise, not bit for bit. A member whose loss turns non-finite or
explodes is frozen (weights zeroed, learning rate 0) and reported as diverged; the others go on.

`train_cohort(configs, outs=..., splits=...)` returns one `RunResult` per member and writes the
same run folders `train()` writes; an epoch checkpoint of the whole cohort makes it resumable.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from . import doctor, files, interrupt, runs
from .allocator import keep_freed_memory
from .config import TrainConfig
from .data.tensors import Splits, to_input
from .device import resolve_device
from .errors import MnistlabError
from .models import build_model
from .optim import schedule_factor
from .progress import Reporter, SilentReporter
from .train import (
    EARLY_STEPS,
    TRACE_POINTS_PER_EPOCH,
    RunResult,
    _epoch_seed,
    epoch_order,
    evaluate,
)

# Settings in which cohort members may differ; every other setting is shared by the cohort.
MEMBER_FIELDS = ("seed", "lr", "momentum", "weight_decay", "dropout")
CHECKPOINT_FORMAT = "mnistlab-cohort-checkpoint-1"
_ACTIVATIONS = {"relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid, "gelu": F.gelu}
_BETAS, _EPS = (0.9, 0.999), 1e-8  # torch.optim.Adam's defaults, which train() uses


def can_join(config: TrainConfig) -> bool:
    """Cohorts cover the dense network with the right loss and plain schedules. Convolutional
    nets, teaching-aid losses/metrics, augmentation, one-cycle and early stopping train alone."""
    return (config.model == "mlp" and config.loss == "ce" and config.metric == "accuracy"
            and config.schedule in ("constant", "cosine", "step") and not config.augment
            and config.early_stopping == 0)


def cohort_key(config: TrainConfig) -> str | None:
    """Runs with the same key can train together; None means this run trains alone."""
    if not can_join(config):
        return None
    shared = {k: v for k, v in config.to_dict().items() if k not in MEMBER_FIELDS}
    return json.dumps(shared, sort_keys=True)


def max_members(config: TrainConfig, device: torch.device, image_size: int = 784,
                classes: int = 10) -> int:
    """How many members fit one cohort: a quarter of free memory, and a cap past which a bigger
    batched multiply stops paying on this many CPU threads (measured: benchmarks/cohort_size.py)."""
    sizes = [image_size, *config.hidden, classes]
    params = sum(a * b + b for a, b in zip(sizes, sizes[1:]))
    widths = sum(config.hidden) + classes
    # weights + grad + two optimizer moments; activations of a training step and of an eval chunk
    per_member = 4 * (4 * params + 4 * config.batch_size * widths + 2000 * widths)
    if device.type == "cuda":
        free = torch.cuda.mem_get_info(device)[0]
        cap = 256
    else:
        try:
            free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            free = 2 * 2**30
        cap = 16 * max(1, torch.get_num_threads())
    return max(1, min(cap, int(free * 0.25) // per_member))


def group(configs: list[TrainConfig], device: torch.device) -> list[list[int]]:
    """Indices of `configs` grouped into cohorts (order kept; a deterministic function of the
    list, so a resumed study regroups its runs the same way). Runs that cannot join a cohort
    come back as groups of one."""
    by_key: dict[str, list[int]] = {}
    order: list[Any] = []
    for i, config in enumerate(configs):
        key = cohort_key(config)
        if key is None:
            order.append([i])
            continue
        if key not in by_key:
            by_key[key] = []
            order.append(key)
        by_key[key].append(i)
    groups: list[list[int]] = []
    for item in order:
        if isinstance(item, list):
            groups.append(item)
            continue
        members = by_key[item]
        cap = max_members(configs[members[0]], device)
        # fixed-size chunks from the front: a resumed study, whose finished chunks are gone from
        # the list, cuts the rest exactly as before
        groups.extend(members[i:i + cap] for i in range(0, len(members), cap))
    return groups


# --- the stacked network ---------------------------------------------------------------------
class StackedMLP(nn.Module):
    """M MLPs with equal layer sizes. Input (B, C, H, W) -> logits (M, B, classes).

    The first weight is stored (in, M, out) so the shared batch meets every member in a single
    matrix multiply; later weights are (M, in, out) for a batched multiply. Biases are (M, 1, out).
    """

    def __init__(self, members: list[nn.Module], activation: str, dropout: list[float]):
        super().__init__()
        layers = [[m for m in member.modules() if isinstance(m, nn.Linear)] for member in members]
        self.size = len(members)
        self.activation = _ACTIVATIONS[activation]
        first = torch.stack([lin[0].weight.detach().t() for lin in layers], dim=1)
        self.w_in = nn.Parameter(first.contiguous())
        self.weights = nn.ParameterList(
            nn.Parameter(torch.stack([lin[i].weight.detach().t() for lin in layers]).contiguous())
            for i in range(1, len(layers[0])))
        self.biases = nn.ParameterList(
            nn.Parameter(torch.stack([lin[i].bias.detach() for lin in layers]).unsqueeze(1))
            for i in range(len(layers[0])))
        self.register_buffer("drop", torch.tensor(dropout).view(-1, 1, 1))
        self.any_dropout = any(p > 0 for p in dropout)

    def member_axes(self) -> list[tuple[nn.Parameter, int]]:
        """Every parameter with the axis that indexes members."""
        return ([(self.w_in, 1)] + [(w, 0) for w in self.weights]
                + [(b, 0) for b in self.biases])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        batch = x.shape[0]
        h = torch.mm(x, self.w_in.view(x.shape[1], -1)).view(batch, self.size, -1)
        h = h.transpose(0, 1) + self.biases[0]
        for weight, bias in zip(self.weights, self.biases[1:]):
            h = self.activation(h)
            if self.training and self.any_dropout:
                keep = 1 - self.drop
                h = h * (torch.rand_like(h) < keep) / keep
            h = torch.baddbmm(bias, h, weight)
        return h

    @torch.no_grad()
    def write_member(self, index: int, module: nn.Module) -> nn.Module:
        """Copy member `index` into a plain model of the same shape (for eval, export, files)."""
        linears = [m for m in module.modules() if isinstance(m, nn.Linear)]
        linears[0].weight.copy_(self.w_in[:, index].t())
        for lin, weight in zip(linears[1:], self.weights):
            lin.weight.copy_(weight[index].t())
        for lin, bias in zip(linears, self.biases):
            lin.bias.copy_(bias[index, 0])
        return module


class StackedOptimizer:
    """SGD (momentum, Nesterov, L2), Adam (L2) or AdamW (decoupled) on stacked parameters, with
    a learning rate, momentum and weight decay per member; the update rules of torch.optim.

    The update is memory-bound (a few passes over every weight per step), so passes are what we
    count. Adam's direction comes from torch's fused Adam (one pass) run with lr 1 on a scratch
    tensor; one more pass scales it by each member's rate into the weights. Plain SGD is one pass.
    """

    def __init__(self, model: StackedMLP, kind: str, lr: list[float], momentum: list[float],
                 weight_decay: list[float], nesterov: bool):
        self.model, self.kind, self.nesterov = model, kind, nesterov
        self.lr = torch.tensor(lr, dtype=torch.float32)
        self.momentum = torch.tensor(momentum, dtype=torch.float32)
        self.weight_decay = torch.tensor(weight_decay, dtype=torch.float32)
        self.any_momentum = any(m > 0 for m in momentum)
        self.any_decay = any(w > 0 for w in weight_decay)
        self.pairs = model.member_axes()
        self._rates: tuple[float, torch.Tensor | None, list[torch.Tensor]] = (math.nan, None, [])
        self.buffers: list[torch.Tensor] = []
        self.adam: torch.optim.Adam | None = None
        if kind == "sgd":
            if self.any_momentum:
                self.buffers = [torch.zeros_like(p) for p, _ in self.pairs]
        else:
            self.scratch = [torch.zeros_like(p, requires_grad=True) for p, _ in self.pairs]
            self.adam = torch.optim.Adam(self.scratch, lr=1.0, betas=_BETAS, eps=_EPS,
                                         fused=True)

    @staticmethod
    def _along(values: torch.Tensor, param: torch.Tensor, axis: int) -> torch.Tensor:
        shape = [1] * param.dim()
        shape[axis] = -1
        return values.to(param.device).view(shape)

    def _rates_for(self, factor: float, alive: torch.Tensor) -> list[torch.Tensor]:
        """Each member's rate this step, shaped per parameter; rebuilt only when it changes."""
        last_factor, last_alive, rates = self._rates
        if factor != last_factor or last_alive is None or not torch.equal(alive, last_alive):
            lr_all = self.lr.to(alive.device) * factor * alive
            rates = [self._along(lr_all, p, axis) for p, axis in self.pairs]
            self._rates = (factor, alive.clone(), rates)
        return rates

    @torch.no_grad()
    def step(self, factor: float, alive: torch.Tensor) -> None:
        rates = self._rates_for(factor, alive)
        grads = []
        for i, (param, axis) in enumerate(self.pairs):
            lr = rates[i]
            grad = param.grad
            if self.any_decay:
                wd = self._along(self.weight_decay, param, axis)
                if self.kind == "adamw":
                    param.mul_(1 - lr * wd)
                else:
                    grad = grad + wd * param
            if self.kind != "sgd":
                grads.append(grad)
                continue
            if self.any_momentum:
                mu = self._along(self.momentum, param, axis)
                buf = self.buffers[i].mul_(mu).add_(grad)
                grad = grad + mu * buf if self.nesterov else buf
            param.addcmul_(grad, lr, value=-1)
        if self.adam is None:
            return
        for scratch, grad in zip(self.scratch, grads):
            scratch.zero_()
            scratch.grad = grad
        self.adam.step()  # scratch = -(Adam direction)
        for param, scratch, lr in zip((p for p, _ in self.pairs), self.scratch, rates):
            param.addcmul_(scratch, lr)

    @torch.no_grad()
    def freeze(self, index: int) -> None:
        """A diverged member: zero weights and moments so it stays finite and costs nothing."""
        for i, (param, axis) in enumerate(self.pairs):
            param.select(axis, index).zero_()
            if self.buffers:
                self.buffers[i].select(axis, index).zero_()
            if self.adam is not None:
                for value in self.adam.state[self.scratch[i]].values():
                    if value.dim():
                        value.select(axis, index).zero_()

    def state_dict(self) -> dict[str, Any]:
        return {"buffers": self.buffers,
                "adam": self.adam.state_dict() if self.adam is not None else None}

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        for mine, theirs in zip(self.buffers, saved["buffers"]):
            mine.copy_(theirs)
        if self.adam is not None:
            self.adam.load_state_dict(saved["adam"])


@torch.no_grad()
def _evaluate_all(model: StackedMLP, x: torch.Tensor, y: torch.Tensor, config: TrainConfig,
                  splits: Splits, batch_size: int = 2000) -> tuple[torch.Tensor, torch.Tensor]:
    """Eval mode, every member at once: (mean loss per member, accuracy per member)."""
    model.eval()
    loss = torch.zeros(model.size, dtype=torch.float64, device=x.device)
    correct = torch.zeros(model.size, dtype=torch.float64, device=x.device)
    for start in range(0, len(y), batch_size):
        xb = to_input(x[start:start + batch_size], config, splits.mean, splits.std)
        yb = y[start:start + batch_size]
        logits = model(xb)
        loss += _member_losses(logits, yb, 0.0).double() * len(yb)
        correct += (logits.argmax(dim=2) == yb).sum(dim=1).double()
    model.train()
    n = max(1, len(y))
    return loss / n, correct / n


def _member_losses(logits: torch.Tensor, y: torch.Tensor, smoothing: float) -> torch.Tensor:
    members, batch, classes = logits.shape
    losses = F.cross_entropy(logits.reshape(members * batch, classes), y.repeat(members),
                             reduction="none", label_smoothing=smoothing)
    return losses.view(members, batch).mean(dim=1)


def checkpoint_dir(study_dir: Path, keys: list[str]) -> Path:
    digest = hashlib.sha1(",".join(keys).encode()).hexdigest()[:12]
    return study_dir / "cohorts" / digest


# --- training ---------------------------------------------------------------------------------
def train_cohort(configs: list[TrainConfig], *, splits: Splits, outs: list[Path | None],
                 tests: list[bool], checkpoint: Path | None = None,
                 reporter: Reporter | None = None, write_plots: bool = False) -> list[RunResult]:
    """Train `configs` (all with one `cohort_key`) in lockstep; one RunResult per member.

    `outs[i]` is member i's run folder (or None), `tests[i]` whether it scores the test set.
    `checkpoint`: a file for the cohort's epoch checkpoint; an existing one is resumed.
    """
    keys = {cohort_key(c) for c in configs}
    if len(keys) != 1 or None in keys:
        raise MnistlabError("cohort: these runs differ in more than "
                            f"{', '.join(MEMBER_FIELDS)}; train them in separate cohorts")
    keep_freed_memory()
    reporter = reporter or SilentReporter()
    shared = configs[0]
    device = resolve_device(shared.device)
    k = splits.num_classes
    size = len(configs)

    members = []
    for config in configs:  # exactly the initial weights train() would draw for this seed
        torch.manual_seed(config.seed)
        members.append(build_model(config, splits.image_shape, k))
    model = StackedMLP(members, shared.resolved_activation, [c.dropout for c in configs])
    model.to(device)
    optimizer = StackedOptimizer(model, shared.optimizer, [c.lr for c in configs],
                                 [c.momentum for c in configs],
                                 [c.weight_decay for c in configs], shared.nesterov)
    n_train = len(splits.train_y)
    steps_per_epoch = math.ceil(n_train / shared.batch_size)
    factor = schedule_factor(shared, steps_per_epoch * shared.epochs)
    cohort_seed = int(hashlib.sha1(repr([c.seed for c in configs]).encode()).hexdigest()[:12], 16)

    histories: list[list[dict[str, float]]] = [[] for _ in configs]
    traces: list[list[list[float]]] = [[] for _ in configs]
    early: list[list[float]] = [[] for _ in configs]
    status = ["completed"] * size
    ended = [0] * size  # the epoch in which a member stopped (0: still training)
    early_findings: list[list[dict[str, Any]]] = [[] for _ in configs]
    step, seconds = 0, 0.0
    if checkpoint is not None and checkpoint.exists():
        saved = runs._safe_load(checkpoint)
        if (saved.get("format") != CHECKPOINT_FORMAT
                or saved.get("configs") != [c.to_dict() for c in configs]):
            raise MnistlabError(f"{checkpoint}: belongs to other runs; delete it to start over")
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        histories, traces, early = saved["histories"], saved["traces"], saved["early"]
        status, ended = saved["status"], saved["ended"]
        early_findings = saved["early_findings"]
        step, seconds = saved["step"], saved["seconds"]
    alive = torch.tensor([s == "completed" for s in status], device=device)

    reporter.run_started(shared, shared.epochs, steps_per_epoch, done_epochs=len(histories[0]))
    trace_every = max(1, steps_per_epoch // TRACE_POINTS_PER_EPOCH)
    smoothing = shared.label_smoothing
    # Ctrl-C: stop after the current step; the checkpoint of the last whole epoch stays
    with interrupt.listening():
        for epoch in range(len(histories[0]) + 1, shared.epochs + 1):
            if not bool(alive.any()):
                break
            epoch_start = time.perf_counter()
            torch.manual_seed(_epoch_seed(cohort_seed, epoch))
            order = epoch_order(n_train, shared.data_seed, epoch, device)
            loss_sum = torch.zeros(size, dtype=torch.float64, device=device)
            correct_sum = torch.zeros(size, dtype=torch.long, device=device)
            seen = 0
            lr_at_start = factor(step)
            model.train()
            for start in range(0, n_train, shared.batch_size):
                if interrupt.requested():
                    raise KeyboardInterrupt
                idx = order[start:start + shared.batch_size]
                x = to_input(splits.train_x[idx], shared, splits.mean, splits.std)
                y = splits.train_y[idx]
                logits = model(x)
                losses = _member_losses(logits, y, smoothing)
                model.zero_grad(set_to_none=True)
                losses.sum().backward()  # members are independent: d(sum)/d(member) = its own loss
                optimizer.step(factor(step), alive)
                step += 1
                with torch.no_grad():
                    correct = (logits.argmax(dim=2) == y).sum(dim=1)
                    loss_sum.add_(losses.detach(), alpha=len(idx))
                    correct_sum.add_(correct)
                seen += len(idx)
                if step <= EARLY_STEPS or step % trace_every == 0:
                    values = losses.detach().tolist()
                    for m, value in enumerate(values):
                        if status[m] != "completed":
                            continue
                        if step <= EARLY_STEPS:
                            early[m].append(value)
                        traces[m].append([step, value])
                        if doctor.diverging(value, early[m][0], traces[m], k):
                            status[m], ended[m] = "diverged", epoch
                            alive[m] = False
                            optimizer.freeze(m)
                        elif step == EARLY_STEPS:
                            found = doctor.early_check(early[m], k, configs[m])
                            early_findings[m] = [f.to_dict() for f in found]
                    live = [v for v, s in zip(values, status) if s == "completed"]
                    reporter.step_progress(1 if step <= EARLY_STEPS else trace_every,
                                           sum(live) / max(1, len(live)),
                                           float(correct.sum()) / (len(idx) * size))
            seconds += time.perf_counter() - epoch_start
            train_loss_eval, train_acc_eval = _evaluate_all(
                model, splits.train_x[splits.eval_idx], splits.train_y[splits.eval_idx], shared,
                splits)
            val_loss, val_acc = _evaluate_all(model, splits.val_x, splits.val_y, shared, splits)
            elapsed = time.perf_counter() - epoch_start
            for m in range(size):
                if ended[m] and ended[m] < epoch:
                    continue  # diverged in an earlier epoch: its history ended there
                record = {
                    "epoch": epoch,
                    "train_loss": float(loss_sum[m]) / seen,
                    "train_acc_running": float(correct_sum[m]) / seen,
                    "train_metric_running": float(correct_sum[m]) / seen,
                    "train_loss_eval": float(train_loss_eval[m]),
                    "train_acc_eval": float(train_acc_eval[m]),
                    "val_loss": float(val_loss[m]),
                    "val_acc": float(val_acc[m]),
                    "val_metric": float(val_acc[m]),
                    "lr": configs[m].lr * lr_at_start,
                    "seconds": elapsed / size,  # each member's share of the cohort's time
                }
                histories[m].append(record)
            reporter.epoch_ended(histories[0][-1])
            if checkpoint is not None:
                files.torch_save(checkpoint, {
                    "format": CHECKPOINT_FORMAT, "configs": [c.to_dict() for c in configs],
                    "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "histories": histories, "traces": traces, "early": early, "status": status,
                    "ended": ended,
                    "early_findings": early_findings, "step": step, "seconds": seconds})
    reporter.run_ended("completed" if all(s == "completed" for s in status) else "diverged")

    results = []
    for m, config in enumerate(configs):
        torch.manual_seed(config.seed)
        module = model.write_member(m, build_model(config, splits.image_shape, k).to(device))
        ok = status[m] != "diverged"
        val = evaluate(module, splits.val_x, splits.val_y, config, splits.mean, splits.std,
                       k) if ok else None
        test = evaluate(module, splits.test_x, splits.test_y, config, splits.mean, splits.std,
                        k) if ok and tests[m] else None
        summary = runs.make_summary(config, splits, module, histories[m], status=status[m],
                                    seconds=seconds / size, test=test, val=val, trace=traces[m],
                                    device=device)
        summary["cohort_size"] = size
        findings = doctor.merge(doctor.preflight(config, splits),
                                [doctor.Finding.from_dict(f) for f in early_findings[m]])
        findings = doctor.merge(findings, doctor.diagnose(config, histories[m], summary,
                                                          early_losses=early[m]))
        summary["diagnoses"] = [f.to_dict() for f in findings]
        result = RunResult(config=config, summary=summary, history=histories[m],
                           out=outs[m], model=module)
        if outs[m] is not None:
            runs.write_run(Path(outs[m]), result, splits, test, plots=write_plots and tests[m])
        results.append(result)
    return results


def remove_checkpoint(checkpoint: Path) -> None:
    """After every member is recorded, the cohort's checkpoint has done its job."""
    shutil.rmtree(checkpoint.parent, ignore_errors=True)
