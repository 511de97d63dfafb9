"""Small learnable synthetic datasets built in memory (no files), for training tests."""

from __future__ import annotations

import torch

from mnistlab.data import Dataset


def blobs(n_train: int = 1200, n_test: int = 400, k: int = 10, seed: int = 0,
          name: str = "synthetic", train_labels: torch.Tensor | None = None) -> Dataset:
    """Class c is a bright 6x6 square at a class-specific place plus noise: easy to learn."""
    g = torch.Generator().manual_seed(seed)

    def make(n: int, labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if labels is None:
            labels = torch.arange(n) % k
            labels = labels[torch.randperm(n, generator=g)]
        images = (torch.rand(n, 28, 28, generator=g) * 60).to(torch.uint8)
        for c in range(k):
            row, col = 2 + (c // 4) * 8, 2 + (c % 4) * 6
            mask = labels == c
            images[mask, row:row + 6, col:col + 6] = 220
        return images, labels.long()

    train_x, train_y = make(n_train, train_labels)
    test_x, test_y = make(n_test)
    mean = float(train_x.float().div(255).mean())
    std = float(train_x.float().div(255).std())
    return Dataset(name=name, train_images=train_x, train_labels=train_y, test_images=test_x,
                   test_labels=test_y, class_names=[f"c{i}" for i in range(k)], mean=mean,
                   std=std, source="memory")
