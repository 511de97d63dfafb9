"""Shared fixtures: the real datasets folder, tiny learnable IDX folders, an isolated cache."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from filelock import FileLock
from hypothesis import settings
from tiny_study import write_tiny_study

from mnistlab.data.idx import write_idx

SHARED_DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"

# Under pytest-xdist (`make test`: one worker per CPU) each worker and the commands its tests
# start get their share of the CPUs as torch threads: two workers of two threads each on two
# cores made the tests that train in a subprocess 3x slower (threads spinning on each other).
if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    _CPUS = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    _THREADS = max(1, (_CPUS or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))
    os.environ["OMP_NUM_THREADS"] = str(_THREADS)
    os.environ["MKL_NUM_THREADS"] = str(_THREADS)

# Property tests draw new examples on every run where people work (a new bug can turn up in
# any run: `--hypothesis-seed=N` replays one); CI (.ci/run sets HYPOTHESIS_PROFILE=ci) draws
# the same examples each time, so a submission passes or fails on its code, not on its draw.
if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    import torch

    torch.set_num_threads(_THREADS)

settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    """The real MNIST and Fashion-MNIST: $MNISTLAB_DATA, else ../shared/datasets beside the
    repo. Tests that need them are skipped where neither exists."""
    for candidate in (os.environ.get("MNISTLAB_DATA"), SHARED_DATASETS):
        if candidate and (Path(candidate) / "mnist").is_dir():
            return Path(candidate)
    pytest.skip("real datasets not found: set MNISTLAB_DATA or put shared/datasets beside "
                "the repo")


@pytest.fixture()
def missing_device() -> str:
    """A device this machine lacks (cuda, or mps where CUDA is here): the tests of what is
    said about one run in full on any machine."""
    import torch

    from mnistlab.device import mps_available

    if torch.cuda.is_available() and mps_available():  # pragma: no cover
        pytest.skip("this machine has both CUDA and MPS")
    return "mps" if torch.cuda.is_available() else "cuda"


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch) -> Path:
    """Point MNISTLAB_CACHE at a fresh folder: no test reads or writes the user's cache."""
    cache = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("MNISTLAB_CACHE", str(cache))
    # nor the user's raised IDX limit: the bombs the tests build would be expanded
    monkeypatch.delenv("MNISTLAB_IDX_LIMIT_GB", raising=False)
    return cache


def make_idx_files(folder: Path, images: np.ndarray, labels: np.ndarray, prefix: str,
                   *, gz: bool = True) -> Path:
    """Write `<prefix>-images-idx3-ubyte[.gz]` and `<prefix>-labels-idx1-ubyte[.gz]` into
    `folder` (created if needed); `prefix` is "train" or "t10k". Returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    ext = ".gz" if gz else ""
    write_idx(folder / f"{prefix}-images-idx3-ubyte{ext}", images)
    write_idx(folder / f"{prefix}-labels-idx1-ubyte{ext}", labels)
    return folder


def eight_pixel_folder(folder: Path) -> Path:
    """600 training and 200 test images of 8x8 in 3 classes (a bright band each): too small
    for lenet5, learned by an mlp in an epoch."""
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 600), ("t10k", 200)):
        labels = (np.arange(n) % 3).astype(np.uint8)
        images = rng.integers(0, 60, size=(n, 8, 8), dtype=np.uint8)
        for c in range(3):
            images[labels == c, 2 * c:2 * c + 3] = 250
        make_idx_files(folder, images, labels, prefix)
    return folder


def tiny_arrays(n: int, seed: int, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """n 28x28 images in k balanced classes: class c is a bright 6x6 square at its own place
    on a noisy background, so a small MLP learns it in an epoch or two."""
    rng = np.random.default_rng(seed)
    labels = (np.arange(n) % k).astype(np.uint8)
    rng.shuffle(labels)
    images = rng.integers(0, 60, size=(n, 28, 28), dtype=np.uint8)
    for c in range(k):
        row, col = 2 + (c // 4) * 8, 2 + (c % 4) * 6
        images[labels == c, row:row + 6, col:col + 6] = rng.integers(
            180, 256, size=(int((labels == c).sum()), 6, 6), dtype=np.uint8)
    return images, labels


def run_python(*args: str, input: str | None = None, cwd: Path | None = None,
               timeout: float = 300) -> subprocess.CompletedProcess:
    """`python ARGS` in a fresh process that imports this mnistlab (the tests' sys.path), its
    output captured as text: a script of a user's, or the command line."""
    return subprocess.run([sys.executable, *args], input=input, cwd=cwd, capture_output=True,
                          text=True, timeout=timeout,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})

def make_dataset_folder(folder: Path, n_train: int, n_test: int, k: int = 10,
                        *, gz: bool = True) -> Path:
    """A complete custom dataset folder (all four IDX files) of tiny_arrays."""
    make_idx_files(folder, *tiny_arrays(n_train, 0, k), "train", gz=gz)
    return make_idx_files(folder, *tiny_arrays(n_test, 1, k), "t10k", gz=gz)


@pytest.fixture()
def tiny_idx_dir(tmp_path) -> Path:
    """<tmp>/tiny: 600 train / 200 test learnable 28x28 images in 10 classes, gzipped IDX, with
    classes.txt naming them class-0 .. class-9."""
    folder = make_dataset_folder(tmp_path / "tiny", 600, 200)
    (folder / "classes.txt").write_text("\n".join(f"class-{i}" for i in range(10)) + "\n")
    return folder


def made_once(tmp_path_factory, name: str, make: Callable[[Path], object]) -> Path:
    """The folder `name`, filled by `make(folder)` once for the whole test session. `make
    test` runs the suite on several pytest-xdist workers, each a process with session
    fixtures of its own: a minute-long study made by each cost its minute on each. The first
    worker to ask makes it, under a lock, beside the workers' temp folders (their common
    parent); the others wait for it and reuse it. Tests that change such a folder copy it.
    It is made in a folder of its own and renamed into place when whole (a worker that died
    while making it leaves no half-made folder, nor a child writing into the next maker's);
    a failure is kept, so that each worker fails at once rather than make it again in turn."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent
    folder, failed = root / name, root / f"{name}.failed"
    with FileLock(str(root / f"{name}.lock"), timeout=1800):
        if failed.is_file():
            pytest.fail(f"{name}: making it failed in another worker: {failed.read_text()}")
        if not folder.is_dir():
            making = root / f".{name}-{os.getpid()}"
            shutil.rmtree(making, ignore_errors=True)
            making.mkdir()
            try:
                make(making)
            except BaseException as exc:
                failed.write_text(f"{type(exc).__name__}: {exc}"[:2000])
                raise
            making.rename(folder)
    return folder


@pytest.fixture(scope="session")
def lenet_run(tmp_path_factory, shared_datasets) -> Path:
    """A LeNet-5 run folder trained on real MNIST (tests/drawn.py), for predict and export."""
    from drawn import train_lenet

    return made_once(tmp_path_factory, "lenet", lambda folder: train_lenet(folder,
                                                                            shared_datasets))


@pytest.fixture(scope="session")
def study_reference(tmp_path_factory, shared_datasets):
    """get(workers) -> results.csv of the tiny study (tests/tiny_study.py) run to the end
    without interruption by `mnistlab study --workers N`: made once per worker count, for the
    tests that interrupt or kill the same study and check that resuming gets the same rows."""
    def make(folder: Path, workers: str) -> None:
        study = write_tiny_study(folder / "tiny.toml", shared_datasets)
        subprocess.run([sys.executable, "-m", "mnistlab", "study", str(study), "--quiet",
                        "--workers", workers, "--out", str(folder / "study")], check=True,
                       env={**os.environ, "PYTHONUNBUFFERED": "1"}, capture_output=True,
                       timeout=600)

    def get(workers: str) -> Path:
        folder = made_once(tmp_path_factory, f"study-reference-{workers}",
                           lambda folder: make(folder, workers))
        return folder / "study" / "results.csv"

    return get


@pytest.fixture(scope="session")
def quick_fashion_study(tmp_path_factory, shared_datasets) -> Path:
    """The folder of `mnistlab study fashion-hparams --quick --seeds 1` (this machine, two
    workers), run once for the tests that read it: its runs' health, and the Ray backend's
    reference numbers."""
    env = {**os.environ, "MNISTLAB_DATA": str(shared_datasets), "PYTHONUNBUFFERED": "1"}

    def make(folder: Path) -> None:
        subprocess.run([sys.executable, "-m", "mnistlab", "study", "fashion-hparams", "--quick",
                        "--seeds", "1", "--quiet", "--workers", "2", "--out",
                        str(folder / "study")], check=True, env=env, capture_output=True,
                       timeout=900)

    return made_once(tmp_path_factory, "quick-fashion", make) / "study"
