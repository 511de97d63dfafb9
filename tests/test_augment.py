"""Batched random affine: identity when off, per-image randomness, shapes, background kept."""

import torch

from mnistlab.augment import random_affine


def test_no_augmentation_is_identity():
    x = torch.rand(8, 1, 28, 28)
    assert random_affine(x) is x


def test_small_shift_moves_a_dot_and_keeps_background_black():
    x = torch.zeros(64, 1, 28, 28)
    x[:, :, 14, 14] = 1.0
    g = torch.Generator().manual_seed(0)
    out = random_affine(x, shift=0.2, generator=g)
    assert out.shape == x.shape
    assert out.min() >= 0 and out[:, :, 0, :].abs().max() == 0  # nothing wraps around
    centres = (out[:, 0] > 0).nonzero()[:, 1:].float()
    assert centres.std() > 0.5  # images moved by different amounts


def test_each_image_gets_its_own_rotation():
    x = torch.zeros(16, 1, 28, 28)
    x[:, :, 4:24, 13:15] = 1.0  # a vertical bar
    out = random_affine(x, rotate=30, generator=torch.Generator().manual_seed(1))
    flat = out.flatten(1)
    distinct = {tuple(row.round(decimals=2).tolist()) for row in flat}
    assert len(distinct) == 16


def test_mass_roughly_preserved_under_rotation():
    x = torch.zeros(32, 1, 28, 28)
    x[:, :, 10:18, 10:18] = 1.0
    out = random_affine(x, rotate=15, generator=torch.Generator().manual_seed(2))
    ratio = out.sum(dim=(1, 2, 3)) / x.sum(dim=(1, 2, 3))
    assert torch.allclose(ratio, torch.ones(32), atol=0.1)
