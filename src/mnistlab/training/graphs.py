"""CUDA graphs of a training step's pass: one launch where eager PyTorch makes dozens.

On a GPU a small network's training step is bound by launching kernels, not by running them:
mnist-fast's step is over a hundred kernels of microseconds each, and each launch from Python
costs more than the kernel (BENCHMARKS.md has the counts and times on an H200).
`GraphedStep(module)` records a learner's `compute(x, y)` (forward pass, loss, backward pass into
the parameters' `.grad`, and the step's counts) once per input shape as a CUDA graph, and from
then on replays it as one launch. The optimizer step, the moving average and the
schedule stay eager: they are a few fused kernels, and the schedule changes numbers that a
graph would freeze.

Where it applies: CUDA, unless `MNISTLAB_CUDA_GRAPHS=0` (eager errors are easier to read when
debugging). An epoch has two batch shapes (its full batches and its last, smaller one), so a
step records at most `MAX_SHAPES` graphs; a further shape runs eagerly. Recording runs the pass
a few times on the batch it was given; batch norm's running statistics are put back afterwards,
so they count each batch once, as eagerly; its dropout masks come from a fork of the random
streams, so they do not shift the run's later draws. A pass that cannot be recorded (an
operation that waits for the GPU, say) trains eagerly, with one warning.

A replay writes the same tensors every time: the returned counts are valid until the next step,
and the gradients live in the graph's memory (a replay points `.grad` back at them after a
change of shape or an eager step).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import nn

MAX_SHAPES = 2  # an epoch's full batches and its last one
WARMUP = 3  # eager passes on a side stream before recording (lazy set-up stays out of the graph)
ENV = "MNISTLAB_CUDA_GRAPHS"

Outputs = tuple[torch.Tensor | None, ...]
Compute = Callable[[torch.Tensor, torch.Tensor], Outputs]


def graphs_wanted(device: torch.device) -> bool:
    """Graphs for the training step on `device`: CUDA, unless MNISTLAB_CUDA_GRAPHS=0."""
    return device.type == "cuda" and os.environ.get(ENV, "1").strip() != "0"


class Graph(Protocol):
    def replay(self) -> None: ...


@dataclass
class _Recorded:
    graph: Graph
    x: torch.Tensor  # the graph's own input tensors: a step copies its batch into them
    y: torch.Tensor
    outputs: Outputs
    grads: list[torch.Tensor]  # where the graph writes each parameter's gradient


class GraphedStep:
    """`compute(x, y)` after zeroing `module`'s gradients, replayed from a CUDA graph where that
    applies (see the module's doc). `enabled`: whether graphs may be recorded. The learner
    passes its `compute` at each call: held here, a bound method would keep the learner alive
    in a reference cycle, and its GPU memory with it."""

    device_type = "cuda"  # where graphs are recorded (the CPU tests stand in for one)

    def __init__(self, module: nn.Module, *, enabled: bool) -> None:
        self.module, self.enabled = module, enabled
        self.params = [p for p in module.parameters() if p.requires_grad]
        self.recorded: dict[tuple, _Recorded] = {}
        self.failed = False  # a recording failed: eager from then on
        self.pointed: _Recorded | None = None  # the graph whose gradients .grad points at

    def replayed(self) -> bool | None:
        """For the summary: True once a graph is recorded, False after a failed recording,
        None where no graph was tried (off CUDA, or turned off)."""
        return True if self.recorded else (False if self.failed else None)

    def __call__(self, compute: Compute, x: torch.Tensor, y: torch.Tensor) -> Outputs:
        if not (self.enabled and x.device.type == self.device_type):
            return self._eager(compute, x, y)
        key = (tuple(x.shape), x.stride(), x.dtype, tuple(y.shape))
        recorded = self.recorded.get(key)
        if recorded is None:
            if len(self.recorded) >= MAX_SHAPES:
                return self._eager(compute, x, y)
            try:
                recorded = self.recorded[key] = self._record(compute, x, y)
            except RuntimeError as error:  # e.g. an operation that waits for the GPU
                self._give_up(error)
                return self._eager(compute, x, y)
        recorded.x.copy_(x)
        recorded.y.copy_(y)
        recorded.graph.replay()
        if recorded is not self.pointed:  # only after a change of shape or an eager step
            for param, grad in zip(self.params, recorded.grads):
                param.grad = grad
            self.pointed = recorded
        return recorded.outputs

    def _eager(self, compute: Compute, x: torch.Tensor, y: torch.Tensor) -> Outputs:
        self.pointed = None  # the eager pass gives .grad tensors of its own
        self.module.zero_grad(set_to_none=True)
        return compute(x, y)

    def _give_up(self, error: RuntimeError) -> None:
        """Train eagerly from now on, free the graphs, and say why once (the first error: a
        failed capture also fails when it ends, which would hide the cause)."""
        self.enabled, self.failed = False, True
        self.recorded.clear()
        self.pointed = None
        cause = error.__context__ if isinstance(error.__context__, Exception) else error
        first = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
        warnings.warn(f"CUDA graphs: this training step could not be recorded ({first}); it "
                      f"runs eagerly (set {ENV}=0 to skip the attempt)", RuntimeWarning,
                      stacklevel=3)

    def _record(self, compute: Compute, x: torch.Tensor, y: torch.Tensor) -> _Recorded:
        """Record the pass for x's shape. The warm-up and recording passes leave no trace in the
        module's buffers (batch norm's running statistics and step count) or in the random
        streams (the warm-up's dropout masks are drawn from a fork, so a graphed run draws what
        an eager one would, and a resumed run what the uninterrupted one did)."""
        buffers = list(self.module.buffers())
        saved = [b.detach().clone() for b in buffers]
        # a module's own streams too (a cohort's members' dropout generators)
        generators = getattr(self.module, "generators", None) or []
        states = [g.get_state() for g in generators]
        static_x = x.detach().clone(memory_format=torch.preserve_format)
        static_y = y.detach().clone()
        try:
            with torch.random.fork_rng(devices=[x.device] if x.is_cuda else []):
                self._warm_up(compute, static_x, static_y)
            self.module.zero_grad(set_to_none=True)  # the graph allocates the gradients
            self.pointed = None
            graph, outputs = self._capture(compute, static_x, static_y)
            grads = [p.grad for p in self.params]
            if any(g is None for g in grads):
                raise RuntimeError("a parameter got no gradient in the recorded pass")
        finally:
            with torch.no_grad():
                for buffer, value in zip(buffers, saved):
                    buffer.copy_(value)
            for generator, state in zip(generators, states):
                generator.set_state(state)
        return _Recorded(graph, static_x, static_y, outputs, grads)

    def _warm_up(self, compute: Compute, x: torch.Tensor, y: torch.Tensor) -> None:
        """A few eager passes on a side stream: lazy set-up (cuBLAS handles, autograd's
        streams) happens here rather than in the graph."""
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(WARMUP):
                self._eager(compute, x, y)
        torch.cuda.current_stream().wait_stream(side)

    def _capture(self, compute: Compute, x: torch.Tensor, y: torch.Tensor
                 ) -> tuple[Graph, Outputs]:
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph):
                outputs = compute(x, y)
        except RuntimeError:
            _clear_failed_capture()
            raise
        return graph, outputs


def _clear_failed_capture() -> None:
    """Before torch 2.13 a failed capture leaves the CUDA random generator marked as capturing,
    and every later random draw (dropout, augmentation) fails; a capture that succeeds clears
    the mark. On later versions this is a no-op graph."""
    try:
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            torch.zeros(1, device="cuda")
    except RuntimeError:
        pass  # the original error is what the caller reports
