"""Hold out a validation set: stratified by class, seeded, of exactly the size asked for."""

from __future__ import annotations

import torch

from ..config import torch_seed
from ..errors import MnistlabError


def stratified_split(labels: torch.Tensor, val_size: int,
                     seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(train indices, val indices), disjoint and together covering every index.

    Each class gives its proportional share of `val_size`; the largest remainders settle the
    rounding, so every class is within one image of its exact share. Members are drawn with a
    generator seeded by `seed`: the same labels and seed always give the same split.
    """
    if labels.dim() != 1:
        raise ValueError(f"stratified_split needs 1-D labels, got shape {tuple(labels.shape)}")
    labels = labels.cpu()
    n = len(labels)
    if val_size == 0:
        return torch.arange(n), torch.empty(0, dtype=torch.long)
    classes, counts = torch.unique(labels, return_counts=True)
    k = len(classes)
    if not k <= val_size < n:
        raise MnistlabError(f"val-size: {val_size:,} is out of range for {n:,} training images "
                            f"in {k} classes; use 0 (no validation set) or from {k} (one per "
                            f"class) to {n - 1:,} (all but one image)")
    exact = counts.double() * val_size / n
    quota = exact.floor().long()
    shortfall = val_size - int(quota.sum())
    if shortfall:
        quota[torch.argsort(exact - quota, descending=True, stable=True)[:shortfall]] += 1
    g = torch.Generator().manual_seed(torch_seed(seed))
    val_parts = []
    for cls, take in zip(classes.tolist(), quota.tolist()):
        members = (labels == cls).nonzero().flatten()
        val_parts.append(members[torch.randperm(len(members), generator=g)[:take]])
    val_idx = torch.cat(val_parts)
    val_idx = val_idx[torch.randperm(len(val_idx), generator=g)]  # classes interleaved
    in_train = torch.ones(n, dtype=torch.bool)
    in_train[val_idx] = False
    return in_train.nonzero().flatten(), val_idx
