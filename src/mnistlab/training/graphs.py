"""CUDA graphs of a training step's pass: one launch where eager PyTorch makes dozens.

On a GPU a small network's training step is bound by launching kernels, not by running them:
mnist-fast's step is over a hundred kernels of microseconds each, and each launch from Python
costs more than the kernel (BENCHMARKS.md has the counts and times on an H200).
`GraphedStep(compute, module)` records a learner's `compute(x, y)` (forward pass, loss, backward
pass into the parameters' `.grad`, and the step's counts) once per input shape as a CUDA graph,
and from then on replays it as one launch. The optimizer step, the moving average and the
schedule stay eager: they are a few fused kernels, and the schedule changes numbers that a
graph would freeze.

Where it applies: CUDA, unless `MNISTLAB_CUDA_GRAPHS=0` (eager errors are easier to read when
debugging). An epoch has two batch shapes (its full batches and its last, smaller one), so a
step records at most `MAX_SHAPES` graphs; a further shape runs eagerly. Recording runs the pass
a few times on the batch it was given; batch norm's running statistics are put back afterwards,
so they count each batch once, as eagerly. A pass that cannot be recorded (an operation that
waits for the GPU, say) trains eagerly, with one warning.

A replay writes the same tensors every time: the returned counts are valid until the next step,
and the gradients live in the graph's memory (each replay points `.grad` back at them).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

MAX_SHAPES = 2  # an epoch's full batches and its last one
WARMUP = 3  # eager passes on a side stream before recording (lazy set-up stays out of the graph)
ENV = "MNISTLAB_CUDA_GRAPHS"

Outputs = tuple[torch.Tensor | None, ...]


def graphs_wanted(device: torch.device) -> bool:
    """Graphs for the training step on `device`: CUDA, unless MNISTLAB_CUDA_GRAPHS=0."""
    return device.type == "cuda" and os.environ.get(ENV, "1").strip() != "0"


@dataclass
class _Recorded:
    graph: torch.cuda.CUDAGraph
    x: torch.Tensor  # the graph's own input tensors: a step copies its batch into them
    y: torch.Tensor
    outputs: Outputs
    grads: list[torch.Tensor]  # where the graph writes each parameter's gradient


class GraphedStep:
    """`compute(x, y)` after zeroing `module`'s gradients, replayed from a CUDA graph where that
    applies (see the module's doc). `enabled`: whether graphs may be recorded."""

    def __init__(self, compute: Callable[[torch.Tensor, torch.Tensor], Outputs],
                 module: nn.Module, *, enabled: bool) -> None:
        self.compute, self.module, self.enabled = compute, module, enabled
        self.params = [p for p in module.parameters() if p.requires_grad]
        self.recorded: dict[tuple, _Recorded] = {}

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> Outputs:
        if not (self.enabled and x.is_cuda):
            return self._eager(x, y)
        key = (tuple(x.shape), x.stride(), x.dtype, tuple(y.shape),
               torch.is_autocast_enabled("cuda"), torch.get_autocast_dtype("cuda"))
        recorded = self.recorded.get(key)
        if recorded is None:
            if len(self.recorded) >= MAX_SHAPES:
                return self._eager(x, y)
            try:
                recorded = self.recorded[key] = self._record(x, y)
            except RuntimeError as error:  # e.g. an operation that waits for the GPU
                self.enabled = False
                warnings.warn(f"CUDA graphs: this training step could not be recorded "
                              f"({str(error).splitlines()[0]}); it runs eagerly "
                              f"(set {ENV}=0 to skip the attempt)", RuntimeWarning, stacklevel=2)
                return self._eager(x, y)
        recorded.x.copy_(x)
        recorded.y.copy_(y)
        recorded.graph.replay()
        for param, grad in zip(self.params, recorded.grads):
            param.grad = grad
        return recorded.outputs

    def _eager(self, x: torch.Tensor, y: torch.Tensor) -> Outputs:
        self.module.zero_grad(set_to_none=True)
        return self.compute(x, y)

    def _record(self, x: torch.Tensor, y: torch.Tensor) -> _Recorded:
        """Warm up on a side stream, then record; the warm-up and recording passes leave no
        trace in the module's buffers (batch norm's running statistics and step count)."""
        buffers = list(self.module.buffers())
        saved = [b.detach().clone() for b in buffers]
        static_x = x.detach().clone(memory_format=torch.preserve_format)
        static_y = y.detach().clone()
        try:
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(WARMUP):
                    self._eager(static_x, static_y)
            torch.cuda.current_stream().wait_stream(side)
            self.module.zero_grad(set_to_none=True)  # the graph allocates the gradients
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                outputs = self.compute(static_x, static_y)
            grads = [p.grad for p in self.params]
            if any(g is None for g in grads):
                raise RuntimeError("a parameter got no gradient in the recorded pass")
        finally:
            with torch.no_grad():
                for buffer, value in zip(buffers, saved):
                    buffer.copy_(value)
        return _Recorded(graph, static_x, static_y, outputs, grads)
