"""How to train M small MLPs at once on a CPU: which formulation is fastest per training step.

    python benchmarks/cohort_kernels.py [--members 1,4,8,16,32] [--batch 32,100] [--hidden 128,64]

Compares, side by side in one run, for the study's MLP (784-128-64-10, dropout 0.2, SGD or
Adam), the time of one full training step (forward, loss, backward, optimizer update):
  loop    M separate nn.Modules, each with its own torch.optim optimizer (the one-by-one path)
  vmap    torch.func.stack_module_state + vmap(functional_call) + one torch.optim optimizer
  stacked mnistlab.training.cohort.StackedMLP (one matmul for the shared first layer, baddbmm after)
          + mnistlab.training.cohort.StackedOptimizer (the cohort path)
and prints milliseconds per step and per member-step.
"""

from __future__ import annotations

import argparse
import copy
import platform
import time

import torch
import torch.nn.functional as F
from _cli import at_least, run_main, whole_numbers  # benchmarks/ is on sys.path
from torch import nn
from torch.func import functional_call, stack_module_state

from mnistlab.config import TrainConfig
from mnistlab.models import build_model
from mnistlab.training import cohort


def _time(step, repeats: int) -> float:
    for _ in range(5):
        step()
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    return (time.perf_counter() - start) / repeats * 1000


def bench(members: int, batch: int, hidden: tuple[int, ...], optimizer: str,
          repeats: int) -> dict[str, float]:
    config = TrainConfig(model="mlp", hidden=hidden, dropout=0.2, optimizer=optimizer)
    models = []
    for seed in range(members):
        torch.manual_seed(seed)
        models.append(build_model(config, (1, 28, 28), 10))
    x = torch.randn(batch, 1, 28, 28)
    y = torch.randint(0, 10, (batch,))
    make_opt = {"sgd": lambda p: torch.optim.SGD(p, lr=0.01),
                "adam": lambda p: torch.optim.Adam(p, lr=0.001)}[optimizer]

    loop_models = [copy.deepcopy(m) for m in models]
    loop_opts = [make_opt(m.parameters()) for m in loop_models]

    def loop_step() -> None:
        for model, opt in zip(loop_models, loop_opts):
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    params, buffers = stack_module_state([copy.deepcopy(m) for m in models])
    template = copy.deepcopy(models[0]).to("meta")
    vmap_params = [nn.Parameter(p) for p in params.values()]
    vmap_opt = make_opt(vmap_params)
    names = list(params)

    def one(p, b, xb):
        return functional_call(template, (p, b), (xb,))

    def vmap_step() -> None:
        logits = torch.vmap(one, in_dims=(0, 0, None), randomness="different")(
            dict(zip(names, vmap_params)), buffers, x)
        loss = F.cross_entropy(logits.reshape(-1, 10), y.repeat(members), reduction="none")
        vmap_opt.zero_grad(set_to_none=True)
        loss.view(members, -1).mean(1).sum().backward()
        vmap_opt.step()

    stacked = cohort.StackedMLP([copy.deepcopy(m) for m in models], "relu", [0.2] * members)
    fused = cohort.StackedOptimizer(stacked, optimizer, [0.01] * members, [0.0] * members,
                                    [0.0] * members, False)
    alive = torch.ones(members, dtype=torch.bool)

    def stacked_step() -> None:
        losses = cohort._member_losses(stacked(x), y, 0.0)
        stacked.zero_grad(set_to_none=True)
        losses.sum().backward()
        fused.step(1.0, alive)

    return {name: _time(step, repeats) for name, step in
            (("loop", loop_step), ("vmap", vmap_step), ("stacked", stacked_step))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=whole_numbers(1), default="1,4,8,16,32",
                        help="cohort sizes (default: %(default)s)")
    parser.add_argument("--batch", type=whole_numbers(1), default="100,32",
                        help="batch sizes (default: %(default)s)")
    parser.add_argument("--hidden", type=whole_numbers(1), default="128,64",
                        help="hidden sizes (default: %(default)s)")
    parser.add_argument("--optimizer", default="sgd,adam",
                        help="optimizers, sgd and/or adam (default: %(default)s)")
    parser.add_argument("--repeats", type=at_least(1), default=50,
                        help="steps timed (default: %(default)s)")
    args = parser.parse_args()
    hidden = args.hidden
    print(f"machine: {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} torch threads, torch {torch.__version__}; "
          f"MLP 784-{'-'.join(map(str, hidden))}-10, dropout 0.2")
    print(f"{'opt':>5} {'batch':>5} {'M':>3} | {'ms/step: loop':>13} {'vmap':>7} {'stacked':>8} |"
          f" {'ms/member-step: loop':>20} {'vmap':>6} {'stacked':>8} | loop/stacked")
    for optimizer in args.optimizer.split(","):
        for batch in args.batch:
            for m in args.members:
                t = bench(m, batch, hidden, optimizer, args.repeats)
                print(f"{optimizer:>5} {batch:>5} {m:>3} | {t['loop']:13.2f} {t['vmap']:7.2f} "
                      f"{t['stacked']:8.2f} | {t['loop'] / m:20.3f} {t['vmap'] / m:6.3f} "
                      f"{t['stacked'] / m:8.3f} | {t['loop'] / t['stacked']:.1f}x", flush=True)
    return 0


if __name__ == "__main__":
    run_main(main)
