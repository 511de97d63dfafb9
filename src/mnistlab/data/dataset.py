"""A dataset in memory: uint8 image tensors, int64 labels, class names, pixel statistics."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..errors import MnistlabError
from .idx import parse_idx, read_bytes
from .sources import FILES, KNOWN_DATASETS, dataset_folder, find_file, verify_payload


@dataclass
class Dataset:
    name: str
    train_images: torch.Tensor  # uint8 (N, H, W)
    train_labels: torch.Tensor  # int64 (N,)
    test_images: torch.Tensor
    test_labels: torch.Tensor
    class_names: list[str]
    mean: float  # pixel mean / sd on [0, 1] of the training images
    std: float
    source: str = ""

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def _read_pair(folder: Path, split: str, verify: str | None) -> tuple[torch.Tensor, torch.Tensor]:
    arrays = []
    for stem, dims in ((f"{split}-images-idx3-ubyte", 3), (f"{split}-labels-idx1-ubyte", 1)):
        path = find_file(folder, stem)
        if path is None:
            raise MnistlabError(f"{folder}: {stem}[.gz] is missing; a dataset folder holds "
                                f"{', '.join(FILES)} (each optionally .gz)")
        payload = read_bytes(path)
        if verify:
            verify_payload(verify, stem, payload, str(path))
        arrays.append(parse_idx(payload, path.name, expect_dims=dims))
    images, labels = arrays
    if len(images) != len(labels):
        raise MnistlabError(f"{folder}: {split} images and labels disagree: {len(images):,} "
                            f"images but {len(labels):,} labels")
    return torch.from_numpy(images.copy()), torch.from_numpy(labels.astype("int64"))


def load_folder(folder: str | Path, *, name: str | None = None,
                verify: str | None = None) -> Dataset:
    """Read a folder of the four IDX files; `verify` names the known dataset to check against."""
    folder = Path(folder)
    train_x, train_y = _read_pair(folder, "train", verify)
    test_x, test_y = _read_pair(folder, "t10k", verify)
    if train_x.shape[1:] != test_x.shape[1:]:
        raise MnistlabError(f"{folder}: train images are {tuple(train_x.shape[1:])} but test "
                            f"images are {tuple(test_x.shape[1:])}")
    spec: Any = KNOWN_DATASETS.get(verify or "")
    if spec is not None:
        class_names, mean, std = list(spec.class_names), spec.mean, spec.std
    else:
        names_file = folder / "classes.txt"
        if names_file.is_file():
            class_names = [line.strip() for line in names_file.read_text("utf-8").splitlines()
                           if line.strip()]
        else:
            class_names = [str(i) for i in range(int(max(train_y.max(), test_y.max())) + 1)]
        pixels = train_x.float().div_(255)
        mean, std = float(pixels.mean()), float(pixels.std())
    k = len(class_names)
    for split, labels in (("train", train_y), ("t10k", test_y)):
        if len(labels) and int(labels.max()) >= k:
            raise MnistlabError(f"{folder}: {split} labels go up to {int(labels.max())} but there "
                                f"are {k} classes; fix the labels or classes.txt")
    return Dataset(name or folder.name, train_x, train_y, test_x, test_y, class_names, mean,
                   std, str(folder))


def load_dataset(name_or_path: str | os.PathLike, *,
                 data_dir: str | Path | None = None) -> Dataset:
    """A known dataset by name (checksums verified), or any folder of IDX files."""
    key = str(name_or_path)
    if key in KNOWN_DATASETS:
        return load_folder(dataset_folder(key, data_dir), name=key, verify=key)
    path = Path(key).expanduser()
    if path.is_dir():
        return load_folder(path)
    raise MnistlabError(f"dataset: {key!r} is neither a known dataset "
                        f"({', '.join(KNOWN_DATASETS)}) nor a folder of IDX files")
