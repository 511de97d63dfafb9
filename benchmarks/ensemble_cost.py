"""What an ensemble in lockstep costs against its members trained one by one, in one run.

    MNISTLAB_DATA=../shared/datasets python benchmarks/ensemble_cost.py [--members 4] [--repeats 2]

Whole runs: `--members` single runs of a recipe (seeds 0..N-1, one after another) and one
`--ensemble N` run of it (the same seeds, fused into one network), alternating, `--repeats`
times, each writing its run folder as `mnistlab train --out` does. Two times for each side:
training seconds from summary.json (the loop alone), and the whole `train()` call (data
preparation, the loop, scoring validation and test, the folder and its plots: what a run
costs its user, less the start of the Python process). Printed: both times, their ratios, the
members' test accuracies and the ensemble's.

Kernels: one training step (forward, backward, Adam) of N copies of the recipe's network at its
batch size, three ways: a Python loop over N modules, the fused network (`Ensemble`: stacked
first conv, grouped convs, batched dense layers), and `torch.func` (stack_module_state +
functional_call under vmap; batch norm without running statistics, which vmap cannot update
in place). Where the recipe augments, each member gets its own batch of images, as in
training (the fused network takes them side by side along the channels; vmap, which has no such
form, gets the first). Median ms per step over `--steps` steps after warm-up, under the
recipe's precision (`auto`: bf16 where the CPU has it natively) and with freed memory kept in
the process, as `train()` runs its steps: without that, glibc hands the fused network's
activations (N times one network's, past its mmap threshold) back to the OS at every step and
page-faults them in again, which once made the fused step look 1.55x the loop where in training
it is ~1.0x.
"""

from __future__ import annotations

import argparse
import copy
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from _cli import at_least, run_main  # benchmarks/ is the script's folder, so on sys.path
from torch import nn

from mnistlab.allocator import keep_freed_memory
from mnistlab.config import TrainConfig
from mnistlab.data import load_dataset
from mnistlab.device import autocast, resolve_precision, to_fast_layout
from mnistlab.models import build_model
from mnistlab.recipes import get_recipe
from mnistlab.training import train


def _timed_run(config: TrainConfig, data, out: Path):
    start = time.perf_counter()
    result = train(config, dataset=data, out=out, overwrite=True)
    return result, time.perf_counter() - start


def whole_runs(config: TrainConfig, members: int, data) -> tuple[list[float], list[float],
                                                                 list[float]]:
    """([one-by-one loop s, whole s], [lockstep loop s, whole s], [one-by-one accuracies
    mean, lockstep members mean, ensemble accuracy])."""
    with tempfile.TemporaryDirectory() as folder:
        singles = [_timed_run(config.replace(seed=config.seed + m), data, Path(folder) / f"s{m}")
                   for m in range(members)]
        fused, fused_wall = _timed_run(config.replace(ensemble=members), data,
                                       Path(folder) / "ensemble")
    alone = [sum(r.summary.seconds for r, _ in singles), sum(wall for _, wall in singles)]
    print(f"  one by one: {alone[0]:6.1f} s training, {alone[1]:6.1f} s whole runs; test acc "
          f"{' '.join(f'{r.summary.test_accuracy:.4f}' for r, _ in singles)}", flush=True)
    member_accs = [m["test_accuracy"] for m in fused.summary.members]
    print(f"  lockstep:   {fused.summary.seconds:6.1f} s training, {fused_wall:6.1f} s whole run;"
          f" members {' '.join(f'{a:.4f}' for a in member_accs)}  ensemble "
          f"{fused.summary.test_accuracy:.4f}", flush=True)
    return alone, [fused.summary.seconds, fused_wall], [
        statistics.mean(r.summary.test_accuracy for r, _ in singles),
        statistics.mean(member_accs), fused.summary.test_accuracy]


def _timed(step, steps: int) -> float:
    for _ in range(3):
        step()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def _member_step(logits: torch.Tensor, y: torch.Tensor, optimizer) -> None:
    """One optimizer step on (N, B, classes) logits: the sum of the members' losses, as
    `--ensemble` trains them."""
    members = logits.shape[0]
    loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]),
                           y.repeat(members)) * members
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def kernels(config: TrainConfig, members: int, steps: int) -> dict[str, float]:
    """Median ms per training step of N networks, three ways."""
    keep_freed_memory()
    cpu = torch.device("cpu")
    cast = autocast(resolve_precision(config.precision, cpu), cpu)
    y = torch.randint(0, 10, (config.batch_size,))
    fused = to_fast_layout(build_model(config.replace(ensemble=members), (1, 28, 28), 10), cpu)
    # with augmentation each member sees its own images, side by side in the fused network's
    # input, as in training; without, all share one
    own = bool(config.augmentation) and fused.takes_own_images
    images = [torch.randn(config.batch_size, 1, 28, 28) for _ in range(members if own else 1)]
    x = torch.cat(images, dim=1)
    nets = [to_fast_layout(build_model(config.replace(seed=m), (1, 28, 28), 10), cpu)
            for m in range(members)]
    loop_opts = [torch.optim.Adam(n.parameters(), lr=1e-3, fused=True) for n in nets]

    def loop_step() -> None:
        for m, (net, opt) in enumerate(zip(nets, loop_opts)):
            with cast:
                logits = net(images[m if own else 0])
            loss = F.cross_entropy(logits.float(), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    fused_opt = torch.optim.Adam(fused.parameters(), lr=1e-3, fused=True)

    def fused_step() -> None:
        with cast:
            logits = fused.member_logits(x)
        _member_step(logits, y, fused_opt)

    base = copy.deepcopy(nets[0])
    for module in base.modules():  # vmap cannot update running statistics in place
        if isinstance(module, nn.BatchNorm2d):
            module.track_running_stats = False
            module.running_mean = module.running_var = None
    params, buffers = torch.func.stack_module_state(nets)
    params = {k: v.detach().requires_grad_() for k, v in params.items()}
    buffers = {k: v for k, v in buffers.items() if "running" not in k and "num_batches" not in k}
    vmap_opt = torch.optim.Adam(params.values(), lr=1e-3, fused=True)

    def one(p, b, xb):
        return torch.func.functional_call(base, (p, b), (xb,))

    batched = torch.func.vmap(one, in_dims=(0, 0, None), randomness="different")

    def vmap_step() -> None:
        with cast:
            logits = batched(params, buffers, images[0])
        _member_step(logits, y, vmap_opt)

    for net in (*nets, fused, base):
        net.train()
    return {"loop": _timed(loop_step, steps), "fused": _timed(fused_step, steps),
            "vmap": _timed(vmap_step, steps)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="mnist-fast", help="recipe (default: mnist-fast)")
    parser.add_argument("--members", type=at_least(1), default=4, help="ensemble size (default: 4)")
    parser.add_argument("--repeats", type=at_least(1), default=2, help="alternations (default: 2)")
    parser.add_argument("--steps", type=at_least(1), default=30,
                        help="timed kernel steps (default: 30)")
    parser.add_argument("--skip-runs", action="store_true", help="kernels only (default: off)")
    parser.add_argument("--epochs", type=at_least(0), default=0, metavar="N",
                        help="train the whole runs for N epochs (default: 0, the recipe's)")
    parser.add_argument("--precision", choices=("auto", "fp32", "bf16"),
                        help="train under this precision (default: the recipe's)")
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} torch threads, torch {torch.__version__}")
    config = TrainConfig.from_dict(get_recipe(args.recipe).settings)
    if args.epochs:
        config = config.replace(epochs=args.epochs)
    if args.precision:
        config = config.replace(precision=args.precision)
    times = kernels(config, args.members, args.steps)
    precision = resolve_precision(config.precision, torch.device("cpu"))
    print(f"one training step of {args.members} networks ({args.recipe}, batch "
          f"{config.batch_size}, {precision}): "
          + ", ".join(f"{k} {v:.1f} ms" for k, v in times.items())
          + "; " + ", ".join(f"{k}/loop {v / times['loop']:.2f}" for k, v in times.items()
                             if k != "loop"), flush=True)
    if args.skip_runs:
        return 0
    data = load_dataset(config.dataset)
    ratios: list[list[float]] = [[], []]  # training loop, whole runs
    accs = []
    for repeat in range(args.repeats):
        print(f"repeat {repeat + 1}:", flush=True)
        alone, fused, scores = whole_runs(config, args.members, data)
        for kind in (0, 1):
            ratios[kind].append(fused[kind] / alone[kind])
        accs.append(scores)
    for kind, what in enumerate(("training time", "whole runs")):
        print(f"--ensemble {args.members} / {args.members} single runs, {what}: "
              f"{' '.join(f'{r:.2f}' for r in ratios[kind])} "
              f"(median {statistics.median(ratios[kind]):.2f})")
    print("test accuracy, mean over repeats: one member alone "
          f"{statistics.mean(a[0] for a in accs):.4f}, lockstep members "
          f"{statistics.mean(a[1] for a in accs):.4f}, the ensemble "
          f"{statistics.mean(a[2] for a in accs):.4f}")
    return 0


if __name__ == "__main__":
    run_main(main)
