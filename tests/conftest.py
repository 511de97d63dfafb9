"""Shared fixtures: the real datasets folder, tiny IDX folders, and an isolated cache."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from mnistlab.data import write_idx

REPO = Path(__file__).resolve().parents[1]


def _shared_datasets() -> Path | None:
    for candidate in (os.environ.get("MNISTLAB_DATA"), REPO.parent / "shared" / "datasets"):
        if candidate and (Path(candidate) / "mnist").is_dir():
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    """../shared/datasets (or $MNISTLAB_DATA): the real MNIST and Fashion-MNIST."""
    path = _shared_datasets()
    if path is None:
        pytest.skip("real datasets not found: set MNISTLAB_DATA or put shared/ beside the repo")
    return path


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    """No test reads or writes the user's real cache."""
    monkeypatch.setenv("MNISTLAB_CACHE", str(tmp_path_factory.mktemp("cache")))


def make_idx_files(folder: Path, train: tuple[np.ndarray, np.ndarray],
                   test: tuple[np.ndarray, np.ndarray], gz: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    ext = ".gz" if gz else ""
    for split, (images, labels) in (("train", train), ("t10k", test)):
        write_idx(folder / f"{split}-images-idx3-ubyte{ext}", images)
        write_idx(folder / f"{split}-labels-idx1-ubyte{ext}", labels)
    return folder


def tiny_arrays(n: int, seed: int, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Class c: a bright square at a class-specific place, plus noise (easy to learn)."""
    rng = np.random.default_rng(seed)
    labels = (np.arange(n) % k).astype(np.uint8)
    rng.shuffle(labels)
    images = rng.integers(0, 60, size=(n, 28, 28), dtype=np.uint8)
    for c in range(k):
        row, col = 2 + (c // 4) * 8, 2 + (c % 4) * 6
        images[labels == c, row:row + 6, col:col + 6] = 220
    return images, labels


@pytest.fixture()
def tiny_idx_dir(tmp_path) -> Path:
    """A custom dataset folder: 600 train / 200 test learnable images, with classes.txt."""
    folder = make_idx_files(tmp_path / "tiny", tiny_arrays(600, 0), tiny_arrays(200, 1))
    (folder / "classes.txt").write_text("\n".join(f"class-{i}" for i in range(10)) + "\n")
    return folder
