"""Speed of a whole study three ways, beside the arithmetic it needs and the memory it takes.

    MNISTLAB_DATA=../shared/datasets python benchmarks/study_speed.py
    MNISTLAB_DATA=../shared/datasets python benchmarks/study_speed.py --seeds 1,3 --full
    MNISTLAB_DATA=../shared/datasets OMP_NUM_THREADS=1 \
        python benchmarks/study_speed.py --quick --student-epochs 1 --seeds 1   # smoke check

(a) student-style: a torch `Dataset` returning one image at a time with per-image transforms
    (uint8 -> float / 255, then (x - mean) / std: torchvision's ToTensor + Normalize written without
    torchvision, through the PIL image torchvision's MNIST builds per item), a
    `DataLoader(shuffle=True)`, an `nn.Sequential` MLP and the classic `for x, y in loader` loop,
    with a validation and a train-eval pass each epoch like the study's. It is timed for
    `--student-epochs` epochs per distinct (batch size, hidden sizes, optimizer) in the plan,
    and *extrapolated* to the study: the sum over the runs the study trains of epochs x seconds
    per epoch.
(b) our one-by-one path: `train_study(..., backend=LocalBackend(cohorts=False, workers=1))`,
    end to end: every run alone, one after another, in one process using every core.
(c) the default path: `LocalBackend()`: configurations in lockstep (cohorts), the cohorts and
    single runs trained side by side in one one-thread worker process per CPU core.

(b) and (c) start from an empty study folder (nothing resumed) and write the report. (b) above
`--skip-one-by-one-seeds-above` seeds is extrapolated (a measured time scaled by seeds) unless
`--full`. The FLOP limit is the study's multiply-adds (forward x3 for training, forward only for
the evaluation passes) divided by the GEMM rate measured here. Each path runs in its own
process, so its peak memory (max RSS) is its own. Prints a table; figures are single runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _cli import at_least, run_main  # benchmarks/ is the script's folder, so on sys.path
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Subset, random_split

from mnistlab.config import TrainConfig
from mnistlab.data import load_dataset
from mnistlab.report.study import write_study_report
from mnistlab.study import load_study, train_study
from mnistlab.study.plan import PlannedRun, final_config, plan_experiments, plan_final
from mnistlab.study.run import LocalBackend
from mnistlab.study.spec import StudySpec

IMAGE_PIXELS = 28 * 28
NUM_CLASSES = 10
STUDENT_EVAL_BATCH = 1000  # pytorch/examples mnist: --test-batch-size 1000
# (m, k, n, timed repeats, multiplications per repeat): the large one gives the machine's
# float32 GEMM rate, the small one the rate at a shape like a training step's first layer.
GEMM_SHAPES = ((4096, 4096, 4096, 3, 1), (100, 784, 2048, 5, 50))
TWO_GB_MB = 2048


# --- what the study trains -------------------------------------------------------------------
def study_spec(name: str, *, seeds: int, quick: bool) -> StudySpec:
    spec = load_study(name)
    if quick:
        spec = spec.with_quick()
    return dataclasses.replace(spec, seeds=seeds)


def trained_runs(spec: StudySpec) -> list[PlannedRun]:
    """The runs the study trains: distinct experiment runs (snapshots are free) + the final's.

    An explicit final is exact; a best-of-each final is not known before the results, so the
    base with the final's own settings stands in for it (same cost for this study's factors
    only if the best variants happen to be the base's).
    """
    runs = list(plan_experiments(spec).to_train)
    final = final_config(spec, {})
    if final is not None:
        runs += plan_final(spec, final)
    return runs


def every_cell(spec: StudySpec) -> list[TrainConfig]:
    """One run per cell, as a study without de-duplication or snapshots would train."""
    plan = plan_experiments(spec, share_prefixes=False)
    configs = [plan.runs[cell.key].config for cell in plan.cells]
    final = final_config(spec, {})
    return configs + ([r.config for r in plan_final(spec, final)] if final else [])


def split_sizes(config: TrainConfig, n_images: int, n_test: int) -> tuple[int, int, int]:
    """(training, validation, train-eval) images per epoch, as `prepare_data` splits them."""
    if config.val_from == "test":
        n_train, n_val = n_images, n_test
    else:
        n_train, n_val = n_images - config.val_size, config.val_size
    if config.train_subset and config.train_subset < n_train - NUM_CLASSES:
        n_train = config.train_subset
    return n_train, n_val, min(config.eval_train_size, n_train)


def group_key(config: TrainConfig) -> tuple[int, tuple[int, ...], str]:
    """What sets the student loop's seconds per epoch: batch size, layer sizes, optimizer."""
    return config.batch_size, tuple(config.hidden), config.optimizer


# --- arithmetic ------------------------------------------------------------------------------
def mlp_macs(hidden: tuple[int, ...]) -> int:
    """Multiply-adds of one forward pass of one image: 784*h1 + h1*h2 + h2*10 for two layers."""
    sizes = (IMAGE_PIXELS, *hidden, NUM_CLASSES)
    return sum(a * b for a, b in zip(sizes, sizes[1:]))


def run_flops(run: PlannedRun, n_images: int, n_test: int) -> float:
    """FLOPs of one run: training forward+backward (3x forward), the per-epoch evaluation
    passes (validation + train-eval, forward only), the closing validation pass, and the test
    pass of a test-scored run."""
    n_train, n_val, n_eval = split_sizes(run.config, n_images, n_test)
    forward = 2 * mlp_macs(tuple(run.config.hidden))
    per_epoch = 3 * forward * n_train + forward * (n_val + n_eval)
    return run.config.epochs * per_epoch + forward * (n_val + (n_test if run.test else 0))


def gemm_rate(m: int, k: int, n: int, repeats: int, inner: int) -> float:
    """Best float32 GEMM rate in FLOP/s of (m x k) @ (k x n) over `repeats` timings."""
    a, b, c = torch.randn(m, k), torch.randn(k, n), torch.empty(m, n)
    torch.mm(a, b, out=c)  # warm-up: thread pool, caches
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(inner):
            torch.mm(a, b, out=c)
        best = min(best, (time.perf_counter() - start) / inner)
    return 2 * m * k * n / best


# --- (a) the student-style loop ----------------------------------------------------------------
class StudentDataset(torch.utils.data.Dataset):
    """One image at a time, transformed on the way out, as torchvision's MNIST does: a PIL image
    per item (`Image.fromarray(img.numpy(), mode="L")`), then ToTensor (PIL -> numpy -> float
    tensor / 255) and Normalize. torchvision itself cannot be imported beside this torch build,
    so its three steps are written out here with PIL and numpy."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, mean: float, std: float):
        self.images, self.labels, self.mean, self.std = images, labels, mean, std

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        picture = Image.fromarray(self.images[index].numpy(), mode="L")  # torchvision MNIST
        array = np.array(picture, dtype=np.uint8, copy=True)  # ToTensor: PIL -> numpy
        image = torch.from_numpy(array).view(1, 28, 28).float().div(255)  # ... -> [0, 1]
        image = image.sub_(self.mean).div_(self.std)  # Normalize((mean,), (std,))
        return image, int(self.labels[index])


def student_model(hidden: tuple[int, ...], dropout: float) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Flatten()]
    width = IMAGE_PIXELS
    for size in hidden:
        layers += [nn.Linear(width, size), nn.ReLU(), nn.Dropout(dropout)]
        width = size
    layers.append(nn.Linear(width, NUM_CLASSES))
    return nn.Sequential(*layers)


def student_optimizer(config: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    if config.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                               weight_decay=config.weight_decay)
    kind = torch.optim.Adam if config.optimizer == "adam" else torch.optim.AdamW
    return kind(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)


def student_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, train_loader: DataLoader,
                  eval_loaders: list[DataLoader]) -> dict[str, float]:
    """One epoch the way the tutorials write it: train, then score each evaluation set."""
    criterion = nn.CrossEntropyLoss()
    model.train()
    running_loss, correct, seen = 0.0, 0, 0
    for x, y in train_loader:
        optimizer.zero_grad()
        output = model(x)
        loss = criterion(output, y)
        loss.backward()
        optimizer.step()
        running_loss += loss.item() * len(y)
        correct += (output.argmax(1) == y).sum().item()
        seen += len(y)
    record = {"train_loss": running_loss / seen, "train_acc": correct / seen}
    model.eval()
    with torch.no_grad():
        for i, loader in enumerate(eval_loaders):
            right = sum((model(x).argmax(1) == y).sum().item() for x, y in loader)
            record[f"eval{i}_acc"] = right / len(loader.dataset)
    return record


def time_student(spec: StudySpec, epochs: int, workers: int) -> dict[str, Any]:
    """Seconds per epoch of the student loop for each (batch size, hidden, optimizer) group."""
    start = time.perf_counter()
    ds = load_dataset(spec.base.dataset, data_dir=spec.base.data_dir)
    full = StudentDataset(ds.train_images, ds.train_labels, ds.mean, ds.std)
    n_train, n_val, n_eval = split_sizes(spec.base, len(full), len(ds.test_labels))
    g = torch.Generator().manual_seed(0)
    train_set, val_set = random_split(full, [len(full) - n_val, n_val], generator=g)
    if n_train < len(train_set):  # the quick form trains on a subset
        train_set = Subset(train_set,
                           torch.randperm(len(train_set), generator=g)[:n_train].tolist())
    eval_set = Subset(train_set, torch.randperm(len(train_set), generator=g)[:n_eval].tolist())
    load_seconds = time.perf_counter() - start

    groups: dict[tuple, TrainConfig] = {}
    for run in trained_runs(spec):
        groups.setdefault(group_key(run.config), run.config)
    timings = []
    for (batch_size, hidden, optimizer_name), config in sorted(groups.items()):
        torch.manual_seed(0)
        model = student_model(hidden, config.dropout)
        optimizer = student_optimizer(config, model)
        train_loader = DataLoader(train_set, batch_size=batch_size, shuffle=True,
                                  num_workers=workers)
        eval_loaders = [DataLoader(s, batch_size=STUDENT_EVAL_BATCH, num_workers=workers)
                        for s in (val_set, eval_set)]
        began = time.perf_counter()
        for _ in range(epochs):
            record = student_epoch(model, optimizer, train_loader, eval_loaders)
        per_epoch = (time.perf_counter() - began) / epochs
        timings.append({"batch_size": batch_size, "hidden": list(hidden),
                        "optimizer": optimizer_name, "seconds_per_epoch": per_epoch,
                        "train_acc": record["train_acc"]})
        print(f"  (a) batch {batch_size:3d}, hidden {'-'.join(map(str, hidden)):>7}, "
              f"{optimizer_name:4}: {per_epoch:7.2f} s/epoch", flush=True)
    return {"load_seconds": load_seconds, "groups": timings,
            "sizes": [len(train_set), len(val_set), len(eval_set)]}


# --- (b), (c) the study, and the child process that runs each path -----------------------------
def time_study(spec: StudySpec, *, cohorts: bool, folder: Path) -> dict[str, Any]:
    start = time.perf_counter()
    # (b) is the path before this work: one run after another in one process; (c) is the default:
    # cohorts, trained in one worker process per core
    backend = LocalBackend(cohorts=True) if cohorts else LocalBackend(cohorts=False, workers=1)
    result = train_study(spec, folder, backend=backend)
    write_study_report(result)
    wall = time.perf_counter() - start
    return {"wall": wall, "runs": len(result.summaries),
            "epochs": sum(s.epochs for s in result.summaries.values())}


def max_rss_mb() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10  # bytes on macOS, KiB else


def child(args: argparse.Namespace) -> int:
    """Run one path in this (fresh) process and write its figures as JSON."""
    spec = study_spec(args.study, seeds=args.child_seeds, quick=args.quick)
    if args.child == "student":
        figures = time_student(spec, args.student_epochs, args.student_workers)
    elif args.child_folder:
        figures = time_study(spec, cohorts=args.child == "cohort", folder=Path(args.child_folder))
    else:
        with tempfile.TemporaryDirectory() as folder:
            figures = time_study(spec, cohorts=args.child == "cohort", folder=Path(folder))
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    workers = workers / 2**20 if sys.platform == "darwin" else workers / 2**10
    figures.update(max_rss_mb=max_rss_mb(), worker_max_rss_mb=workers,
                   workers=LocalBackend().workers if args.child == "cohort" else 0,
                   threads=torch.get_num_threads())
    Path(args.child_result).write_text(json.dumps(figures))
    return 0


def in_child(args: argparse.Namespace, path: str, seeds: int) -> dict[str, Any]:
    folder = Path(args.out) / f"seeds{seeds}-{path}" if args.out else None
    with tempfile.TemporaryDirectory() as scratch:
        result_file = Path(scratch) / "figures.json"
        command = [sys.executable, __file__, args.study, "--child", path,
                   "--child-seeds", str(seeds), "--child-result", str(result_file),
                   "--student-epochs", str(args.student_epochs),
                   "--student-workers", str(args.student_workers)]
        command += ["--quick"] if args.quick else []
        command += ["--child-folder", str(folder)] if folder else []
        subprocess.run(command, check=True)
        return json.loads(result_file.read_text())


# --- the report ------------------------------------------------------------------------------
def student_seconds(configs: list[TrainConfig], student: dict[str, Any]) -> float:
    per_epoch = {(g["batch_size"], tuple(g["hidden"]), g["optimizer"]): g["seconds_per_epoch"]
                 for g in student["groups"]}
    return student["load_seconds"] + sum(c.epochs * per_epoch[group_key(c)] for c in configs)


def seconds_cell(value: float | None, extrapolated: bool) -> str:
    if value is None:
        return f"{'-':>10} "
    return f"{value:10.1f}{'*' if extrapolated else ' '}"


def ratio(top: float | None, bottom: float | None) -> str:
    return f"{top / bottom:7.2f}" if top is not None and bottom else f"{'-':>7}"


def parse_seeds(text: str) -> list[int]:
    try:
        seeds = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list like 1,3") from None
    if not seeds or seeds[0] < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: seeds are whole numbers >= 1")
    return seeds


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="Set MNISTLAB_DATA to the datasets folder; OMP_NUM_THREADS sets torch's threads.")
    parser.add_argument("study", nargs="?", default="fashion-hparams",
                        help="preset name or study file; every run must be an MLP "
                             "(default: fashion-hparams)")
    parser.add_argument("--seeds", type=parse_seeds, default=[1, 3],
                        help="comma-separated seeds values to time (default: 1,3)")
    parser.add_argument("--quick", action="store_true",
                        help="everything on the study's quick form, a smoke check (default: off)")
    parser.add_argument("--student-epochs", type=at_least(1), default=1,
                        help="epochs timed per group in the student loop (default: 1)")
    parser.add_argument("--student-workers", type=at_least(0), default=0,
                        help="DataLoader num_workers of the student loop (default: 0)")
    parser.add_argument("--skip-one-by-one-seeds-above", type=at_least(1), default=1, metavar="N",
                        help="extrapolate (b) for seeds above N from a measured one "
                             "(default: 1)")
    parser.add_argument("--full", action="store_true",
                        help="measure (b) for every seeds value, extrapolate nothing but (a) "
                             "(default: off)")
    parser.add_argument("--out", default=None,
                        help="keep the study folders here as seeds{N}-{one-by-one,cohort}; "
                             "they must not exist yet (default: temporary folders)")
    # the parent runs each path in a fresh process of this script with these
    parser.add_argument("--child", choices=("student", "one-by-one", "cohort"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--child-seeds", type=at_least(1), default=1, help=argparse.SUPPRESS)
    parser.add_argument("--child-result", help=argparse.SUPPRESS)
    parser.add_argument("--child-folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)

    spec = study_spec(args.study, seeds=1, quick=args.quick)
    not_mlp = {r.config.model for r in trained_runs(spec)} - {"mlp"}
    if not_mlp:
        parser.error(f"{args.study}: runs use {', '.join(sorted(not_mlp))}; this benchmark "
                     "counts MLP arithmetic only")
    if args.out:
        taken = [p for s in args.seeds for kind in ("one-by-one", "cohort")
                 if (p := Path(args.out) / f"seeds{s}-{kind}").exists()]
        if taken:
            parser.error(f"--out: {taken[0]} exists; a timed study starts from an empty folder")
    ds = load_dataset(spec.base.dataset, data_dir=spec.base.data_dir)
    n_images, n_test = len(ds.train_labels), len(ds.test_labels)
    n_train, n_val, n_eval = split_sizes(spec.base, n_images, n_test)
    del ds

    print(f"machine: {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} torch threads, torch {torch.__version__}, "
          f"python {platform.python_version()}")
    print(f"study {spec.name}: {n_train:,} training images, {n_val:,} validation and "
          f"{n_eval:,} train-eval images scored each epoch")
    rates = []
    for m, k, n, repeats, inner in GEMM_SHAPES:
        rates.append(gemm_rate(m, k, n, repeats, inner))
        print(f"GEMM float32 ({m}x{k}) @ ({k}x{n}): {rates[-1] / 1e9:.1f} GFLOP/s "
              f"(best of {repeats})", flush=True)
    peak_rate, step_rate = rates

    print(f"(a) student loop, timing {args.student_epochs} epoch(s) per group:", flush=True)
    student = in_child(args, "student", 1)
    measured_obo = [s for s in args.seeds
                    if args.full or s <= args.skip_one_by_one_seeds_above] or args.seeds[:1]
    one_by_one: dict[int, dict[str, Any]] = {}
    cohort: dict[int, dict[str, Any]] = {}
    for seeds in args.seeds:
        if seeds in measured_obo:
            print(f"(b) one-by-one, seeds={seeds} ...", flush=True)
            one_by_one[seeds] = in_child(args, "one-by-one", seeds)
            print(f"    {one_by_one[seeds]['wall']:.1f} s", flush=True)
        print(f"(c) cohort, seeds={seeds} ...", flush=True)
        cohort[seeds] = in_child(args, "cohort", seeds)
        print(f"    {cohort[seeds]['wall']:.1f} s", flush=True)

    reference = max(measured_obo)
    print()
    print(f"{'seeds':>5} {'runs':>5} {'epochs':>6} {'TFLOP':>7} {'(a) student':>11} "
          f"{'(b) 1-by-1':>11} {'(c) cohort':>11} {'FLOP limit':>11} {'a/c':>7} {'b/c':>7} "
          f"{'c/limit':>7}")
    for seeds in args.seeds:
        seeded = study_spec(args.study, seeds=seeds, quick=args.quick)
        runs = trained_runs(seeded)
        flops = sum(run_flops(r, n_images, n_test) for r in runs)
        a = student_seconds([r.config for r in runs], student)
        b = (one_by_one[seeds]["wall"] if seeds in one_by_one
             else one_by_one[reference]["wall"] * seeds / reference)
        c = cohort[seeds]["wall"]
        limit = flops / peak_rate
        times = (seconds_cell(a, True) + seconds_cell(b, seeds not in one_by_one)
                 + seconds_cell(c, False) + seconds_cell(limit, False))
        print(f"{seeds:5d} {len(runs):5d} {sum(r.config.epochs for r in runs):6d} "
              f"{flops / 1e12:7.2f} {times}{ratio(a, c)} {ratio(b, c)} {ratio(c, limit)}")
    print("seconds, wall, one run each; * = extrapolated, the rest measured end to end.")
    print(f"  (a) extrapolated: data loading + sum over the runs trained (distinct experiment "
          f"runs + final) of epochs x the group's seconds per epoch, timed over "
          f"{args.student_epochs} epoch(s); each epoch includes the validation and "
          f"train-eval passes.")
    if any(s not in one_by_one for s in args.seeds):
        print(f"  (b) above seeds={reference} extrapolated: the measured seeds={reference} time "
              f"x seeds/{reference} (fixed costs scaled too, so a little high); --full "
              f"measures it.")
    print(f"  FLOP limit: FLOPs / {peak_rate / 1e9:.1f} GFLOP/s (the large GEMM); at the "
          f"step-shaped GEMM's {step_rate / 1e9:.1f} GFLOP/s it would be "
          f"{peak_rate / step_rate:.2f}x longer.")
    cells = every_cell(study_spec(args.study, seeds=min(args.seeds), quick=args.quick))
    print(f"  (a) training every cell as its own run (the base retrained in every experiment, "
          f"no snapshots), seeds={min(args.seeds)}: {len(cells)} runs, "
          f"{sum(c.epochs for c in cells)} epochs, {student_seconds(cells, student):.1f} s "
          f"(extrapolated).")

    print()
    print("peak memory (max RSS of the processes running the path, MB):")
    print(f"  (a) student loop, all groups in one process: {student['max_rss_mb']:.0f}")
    peaks = []
    for seeds in args.seeds:
        for label, table in (("(b) one-by-one", one_by_one), ("(c) cohort", cohort)):
            if seeds in table:
                row = table[seeds]
                # workers run at the same time: the study's total is at most the driver plus
                # each worker at the largest worker's peak
                peaks.append(row["max_rss_mb"] + row.get("workers", 0) * row["worker_max_rss_mb"])
                extra = (f" (driver {row['max_rss_mb']:.0f} + {row['workers']} workers x "
                         f"{row['worker_max_rss_mb']:.0f}, an upper bound)"
                         if row.get("workers") else "")
                print(f"  {label}, seeds={seeds}: {peaks[-1]:.0f}{extra}")
            else:
                print(f"  {label}, seeds={seeds}: not measured (time extrapolated)")
    form = "quick form, not the full study" if args.quick else "full study"
    print(f"  largest study: {max(peaks):.0f} MB, "
          f"{'under' if max(peaks) < TWO_GB_MB else 'NOT under'} 2 GB ({form}).")
    return 0


if __name__ == "__main__":
    run_main(main)
