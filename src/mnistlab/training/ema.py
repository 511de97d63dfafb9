"""An exponential moving average (EMA) of a model's weights: what `--ema DECAY` scores and saves.

Each optimisation step moves the average a step towards the weights being trained:
`average = d * average + (1 - d) * weights`. Batch-norm running statistics are buffers, not
parameters, and are averaged the same way, so the averaged weights are scored with statistics
that belong to them (what torch.optim.swa_utils.AveragedModel does with use_buffers=True).
Integer buffers (batch norm's step count) are copied.

Ours rather than AveragedModel for two reasons. The decay is warmed up,
`d = min(decay, (1 + t) / (10 + t))` at update t, so a short run's average is not dominated by
the random initial weights (with a flat 0.999 a one-epoch run of 235 steps would still hold 79%
of them). And the step count is a Python number: AveragedModel keeps it in a tensor, which a
warm-up would read back from the GPU at every step.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn


class WeightAverage:
    """The averaged copy of `model` (`.module`, always in eval mode) and its update."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.updates = 0
        self.module = copy.deepcopy(model).eval()
        for parameter in self.module.parameters():
            parameter.requires_grad_(False)
        pairs = list(zip(_tensors(self.module), _tensors(model)))
        self._floats = [(a, w) for a, w in pairs if a.is_floating_point()]
        self._others = [(a, w) for a, w in pairs if not a.is_floating_point()]

    def current_decay(self) -> float:
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self) -> None:
        """One step towards the trained model's weights (call after each optimizer step)."""
        self.updates += 1
        weight = 1.0 - self.current_decay()
        if self._floats:
            torch._foreach_lerp_([a for a, _ in self._floats], [w for _, w in self._floats],
                                 weight)
        for average, value in self._others:
            average.copy_(value)

    def state_dict(self) -> dict[str, Any]:
        return {"module": self.module.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.module.load_state_dict(state["module"])
        self.updates = int(state["updates"])


def _tensors(model: nn.Module) -> list[torch.Tensor]:
    """Parameters then buffers, in module order: the same order for a model and its copy."""
    return [t.detach() for t in (*model.parameters(), *model.buffers())]
