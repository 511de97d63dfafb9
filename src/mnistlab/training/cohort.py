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
give it, and on a CPU draws its dropout masks from its own stream as `train()` would: a member's
numbers are its one-by-one twin's, whichever runs share its cohort (one that diverges excepted:
it is frozen, where its twin stops). On a GPU the masks come from one stream for the cohort (a
CUDA graph replays the step): a member matches its twin within seed noise, not bit for bit. A
member whose loss turns non-finite or explodes is frozen (weights zeroed, learning rate 0) and
reported as diverged; the others go on.

`train_cohort(configs, outs=..., splits=...)` trains them through the same epoch engine as
`train()` (the cohort is its learner: `CohortLearner`), returns one `RunResult` per member and
writes the same run folders; an epoch checkpoint of the whole cohort makes it resumable.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .. import interrupt, runs
from ..allocator import keep_freed_memory
from ..config import TrainConfig, torch_seed
from ..data.tensors import Splits, to_input
from ..device import resolve_device, wide_float
from ..errors import MnistlabError
from ..models import build_model
from ..optim import schedule_factor
from ..progress import Reporter, SilentReporter
from ..records import RunResult
from . import hooks as hk
from .engine import CHECKPOINT_FORMAT, Run, Scores, epoch_seed, run_epoch_seed, run_epochs
from .finish import finish_member
from .graphs import GraphedStep, graphs_wanted

# Settings in which cohort members may differ; every other setting is shared by the cohort.
MEMBER_FIELDS = ("seed", "lr", "momentum", "weight_decay", "dropout")
_ACTIVATIONS = {"relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid, "gelu": F.gelu}
_BETAS, _EPS = (0.9, 0.999), 1e-8  # torch.optim.Adam's defaults, which train() uses


def can_join(config: TrainConfig) -> bool:
    """Cohorts cover the dense network with the right loss and plain schedules in fp32.
    Convolutional nets, teaching-aid losses/metrics, augmentation, one-cycle, early stopping,
    a moving average of the weights (--ema), bf16 and ensembles (already in lockstep) train
    alone: the stacked step has none of them, so such a run is never grouped (cohort_key None),
    and train_cohort refuses it."""
    return (config.ensemble == 1 and config.model == "mlp" and config.loss == "ce"
            and config.metric == "accuracy"
            and config.schedule in ("constant", "cosine", "step") and not config.augmentation
            and config.early_stopping == 0 and config.ema == 0 and config.precision == "fp32")


def cohort_key(config: TrainConfig) -> str | None:
    """Runs with the same key can train together; None means this run trains alone."""
    if not can_join(config):
        return None
    shared = {k: v for k, v in config.to_dict().items() if k not in MEMBER_FIELDS}
    shared["augment"] = ""  # none, as can_join asks: "", "none" and "rotate=0" train together
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
        self.rates = list(dropout)
        # each member's own dropout stream (CohortLearner seeds them each epoch as train()
        # seeds a run's); None: one stream for the cohort (a GPU, where a CUDA graph replays
        # the step and a run's own dropout is another kernel anyway)
        self.generators: list[torch.Generator] | None = None

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
                h = self._dropped(h)
            h = torch.baddbmm(bias, h, weight)
        return h

    def _dropped(self, h: torch.Tensor) -> torch.Tensor:
        """`h` (members, batch, width) with each member's dropout: on a CPU drawn from the
        member's own stream, mask by mask as nn.Dropout draws a run's (bernoulli_, then
        scaled), so a member's numbers are its run's alone (they were drawn from one stream
        for the cohort, and so depended on which runs shared it: on the --seeds given, the
        other variants, the cores)."""
        if self.generators is None:
            keep = 1 - self.drop
            return h * (torch.rand_like(h) < keep) / keep
        noise = torch.empty_like(h)
        for member, (rate, generator) in enumerate(zip(self.rates, self.generators)):
            if rate > 0:
                noise[member].bernoulli_(1 - rate, generator=generator).div_(1 - rate)
            else:
                noise[member].fill_(1)
        return h * noise

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
        # per parameter, on its device once (a copy per step was a transfer per step on a GPU)
        self.decays = [self._along(self.weight_decay, p, axis) for p, axis in self.pairs]
        self.momenta = [self._along(self.momentum, p, axis) for p, axis in self.pairs]
        # the rates of the last step's factor: rebuilt when the factor changes or a member
        # stops (`forget_rates`), not compared with the alive mask each step (a GPU sync)
        self._rates: tuple[float, list[torch.Tensor] | None] = (math.nan, None)
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
        last_factor, rates = self._rates
        if factor != last_factor or rates is None:
            lr_all = self.lr.to(alive.device) * factor * alive
            rates = [self._along(lr_all, p, axis) for p, axis in self.pairs]
            self._rates = (factor, rates)
        return rates

    def forget_rates(self) -> None:
        """The alive mask changed (a member stopped, a checkpoint restored): new rates."""
        self._rates = (math.nan, None)

    @torch.no_grad()
    def step(self, factor: float, alive: torch.Tensor) -> None:
        rates = self._rates_for(factor, alive)
        grads = []
        for i, (param, _) in enumerate(self.pairs):
            lr = rates[i]
            grad = param.grad
            if self.any_decay:
                wd = self.decays[i]
                if self.kind == "adamw":
                    param.mul_(1 - lr * wd)
                else:
                    grad = grad + wd * param
            if self.kind != "sgd":
                grads.append(grad)
                continue
            if self.any_momentum:
                mu = self.momenta[i]
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
    wide = wide_float(x.device)
    loss = torch.zeros(model.size, dtype=wide, device=x.device)
    correct = torch.zeros(model.size, dtype=wide, device=x.device)
    for start in range(0, len(y), batch_size):
        xb = to_input(x[start:start + batch_size], config, splits.mean, splits.std)
        yb = y[start:start + batch_size]
        logits = model(xb)
        loss += _member_losses(logits, yb, 0.0).to(wide) * len(yb)
        correct += (logits.argmax(dim=2) == yb).sum(dim=1).to(wide)
    model.train()
    if len(y) == 0:  # no validation images (val-size 0): not measured, as evaluate() says
        return loss.fill_(math.nan), correct.fill_(math.nan)
    return loss / len(y), correct / len(y)


def _member_losses(logits: torch.Tensor, y: torch.Tensor, smoothing: float) -> torch.Tensor:
    members, batch, classes = logits.shape
    losses = F.cross_entropy(logits.reshape(members * batch, classes), y.repeat(members),
                             reduction="none", label_smoothing=smoothing)
    return losses.view(members, batch).mean(dim=1)


def checkpoint_dir(study_dir: Path, keys: list[str]) -> Path:
    digest = hashlib.sha1(",".join(keys).encode()).hexdigest()[:12]
    return study_dir / "cohorts" / digest


# --- the learner -------------------------------------------------------------------------------
class CohortLearner:
    """The cohort as the engine's learner: members share batches, each has its own weights,
    learning rate, momentum, weight decay, dropout rate and seed."""

    def __init__(self, configs: list[TrainConfig], splits: Splits, device: torch.device) -> None:
        shared = configs[0]
        members = []
        for config in configs:  # exactly the initial weights train() would draw for this seed
            torch.manual_seed(torch_seed(config.seed))
            members.append(build_model(config, splits.image_shape, splits.num_classes,
                                       train_size=len(splits.train_y), device=device.type))
        self.configs, self.splits = configs, splits
        self.input_copies = 1  # a cohort has no augmentation (cohort_key)
        self.model = StackedMLP(members, shared.resolved_activation, [c.dropout for c in configs])
        self.model.to(device)
        if device.type == "cpu" and self.model.any_dropout:
            self.model.generators = [torch.Generator() for _ in configs]
        # forward, loss and backward, replayed from a CUDA graph on a GPU (graphs.py)
        self.graphed = GraphedStep(self.model, enabled=graphs_wanted(device))
        self.optimizer = StackedOptimizer(self.model, shared.optimizer, [c.lr for c in configs],
                                          [c.momentum for c in configs],
                                          [c.weight_decay for c in configs], shared.nesterov)
        steps = math.ceil(len(splits.train_y) / shared.batch_size) * shared.epochs
        self.factor = schedule_factor(shared, steps)
        self.alive = torch.ones(len(configs), dtype=torch.bool, device=device)
        self.steps = 0
        # one stream of randomness for the cohort's dropout masks on a GPU, from its members'
        # seeds; on a CPU each member has its own, seeded by epoch_seed
        self.seed = int(hashlib.sha1(repr([c.seed for c in configs]).encode()).hexdigest()[:12],
                        16)

    def epoch_seed(self, epoch: int) -> int:
        """The cohort's stream's seed for `epoch`; each member's own stream is seeded here too,
        with the seed train() gives its run's epoch (the engine asks at each epoch's start)."""
        for config, generator in zip(self.configs, self.model.generators or []):
            generator.manual_seed(run_epoch_seed(config.seed, epoch))
        return epoch_seed(self.seed, epoch)

    def learning_rates(self) -> list[float]:
        factor = self.factor(self.steps)
        return [config.lr * factor for config in self.configs]

    def step(self, x: torch.Tensor, y: torch.Tensor
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        if not self.model.training:
            self.model.train()
        losses, correct = self.graphed(self._compute, x, y)
        self.optimizer.step(self.factor(self.steps), self.alive)
        self.steps += 1
        return losses, correct, None

    def _compute(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The step up to the optimizer: gradients into .grad; (losses, correct) per member."""
        logits = self.model(x)
        losses = _member_losses(logits, y, self.configs[0].label_smoothing)
        losses.sum().backward()  # members are independent: d(sum)/d(member) = its own loss
        with torch.no_grad():
            return losses.detach(), (logits.argmax(dim=2) == y).sum(dim=1)

    def evaluate(self, x: torch.Tensor, y: torch.Tensor) -> Scores:
        loss, accuracy = _evaluate_all(self.model, x, y, self.configs[0], self.splits)
        accuracy = [float(a) for a in accuracy]
        return Scores([float(v) for v in loss], accuracy, accuracy)

    def stop_member(self, member: int) -> None:
        """Freeze a diverged member: zero weights and moments keep it finite and cost nothing."""
        self.alive[member] = False
        self.optimizer.freeze(member)
        self.optimizer.forget_rates()

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "alive": self.alive.cpu(), "steps": self.steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.alive.copy_(state["alive"])
        self.optimizer.forget_rates()
        self.steps = state["steps"]

    def member_model(self, member: int) -> nn.Module:
        """Member `member` as a plain model of its own (for scoring, files, export)."""
        config = self.configs[member]
        torch.manual_seed(torch_seed(config.seed))
        module = build_model(config, self.splits.image_shape, self.splits.num_classes)
        return self.model.write_member(member, module.to(self.alive.device))


# --- training ---------------------------------------------------------------------------------
@interrupt.scoped
def train_cohort(configs: list[TrainConfig], *, splits: Splits, outs: list[Path | None],
                 tests: list[bool], checkpoint: Path | None = None,
                 reporter: Reporter | None = None, write_plots: bool = False,
                 lang: str = "en") -> list[RunResult]:
    """Train `configs` (all with one `cohort_key`) in lockstep; one RunResult per member.

    `outs[i]` is member i's run folder (or None), `tests[i]` whether it scores the test set.
    `checkpoint`: a file for the cohort's epoch checkpoint; an existing one is resumed.
    Interrupted (Ctrl-C), it raises KeyboardInterrupt and writes no member folder: the
    checkpoint of its last whole epoch is what the next attempt resumes from. The figures
    (`write_plots`, for members scoring the test set) say their words in `lang`.
    """
    keys = {cohort_key(c) for c in configs}
    alone = [c for c in configs if not can_join(c)]
    if alone:
        raise MnistlabError("cohort: a run with augmentation, early stopping, --ema, bf16, "
                            "one-cycle, a teaching-aid loss or a model other than mlp trains "
                            "alone; train it with train()")
    if len(keys) != 1:
        raise MnistlabError("cohort: these runs differ in more than "
                            f"{', '.join(MEMBER_FIELDS)}; train them in separate cohorts")
    keep_freed_memory()
    learner = CohortLearner(configs, splits, resolve_device(configs[0].device))
    hooks: list[hk.Hook] = [hk.Progress(reporter or SilentReporter())]
    if checkpoint is not None:
        hooks.append(hk.Checkpoint(checkpoint))
    run = Run.start(learner, splits, hooks)
    if checkpoint is not None and checkpoint.exists():
        run.restore(runs.load_checkpoint(  # another --out would train the whole study again
            checkpoint, configs, CHECKPOINT_FORMAT,
            fix="delete it and run the same command again: these runs start over, the "
                "study's finished runs are kept"))
    run_epochs(run)
    if "interrupted" in run.statuses:
        raise KeyboardInterrupt
    return [finish_member(run, m, learner.member_model(m), evaluate_test=tests[m], out=outs[m],
                          write_plots=write_plots and tests[m], lang=lang)
            for m in range(len(configs))]


def remove_checkpoint(checkpoint: Path) -> None:
    """After every member is recorded, the cohort's checkpoint has done its job."""
    shutil.rmtree(checkpoint.parent, ignore_errors=True)
