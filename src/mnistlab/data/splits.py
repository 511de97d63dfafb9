"""Hold out a validation set: stratified by class, seeded, exact size."""

from __future__ import annotations

import torch

from ..errors import MnistlabError


def stratified_split(labels: torch.Tensor, val_size: int,
                     seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(train indices, val indices). Each class gives its share of `val_size` (largest
    remainders settle the rounding), chosen at random with a generator seeded by `seed`."""
    n = len(labels)
    if val_size == 0:
        return torch.arange(n), torch.empty(0, dtype=torch.long)
    if not 0 < val_size < n:
        raise MnistlabError(f"val-size: {val_size:,} must be between 1 and {n - 1:,} (the number "
                            "of training images minus one), or 0 for no validation set")
    labels = labels.cpu()
    classes, counts = torch.unique(labels, return_counts=True)
    exact = counts.double() * val_size / n
    quota = exact.floor().long()
    remainder = val_size - int(quota.sum())
    if remainder:
        quota[torch.argsort(exact - quota, descending=True)[:remainder]] += 1
    g = torch.Generator().manual_seed(seed)
    val_parts = []
    for cls, take in zip(classes.tolist(), quota.tolist()):
        members = (labels == cls).nonzero().flatten()
        val_parts.append(members[torch.randperm(len(members), generator=g)[:take]])
    val_idx = torch.cat(val_parts)
    val_idx = val_idx[torch.randperm(len(val_idx), generator=g)]
    mask = torch.ones(n, dtype=torch.bool)
    mask[val_idx] = False
    return mask.nonzero().flatten(), val_idx
