"""Random affine augmentation on whole batches of image tensors.

Each image gets its own rotation, scale and shift, but the work is three batched tensor ops
(build N affine matrices, `affine_grid`, `grid_sample`), never a per-image Python loop.
Works on images in [0, 1] with a black (0) background, before normalisation, so the pixels
brought in from outside the frame are background.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def random_affine(images: torch.Tensor, *, rotate: float = 0.0, scale: float = 0.0,
                  shift: float = 0.0, generator: torch.Generator | None = None) -> torch.Tensor:
    """images: (N, C, H, W) float. rotate in degrees (+-), scale and shift as fractions (+-)."""
    if not (rotate or scale or shift):
        return images
    n = images.shape[0]
    device, dtype = images.device, images.dtype

    def uniform(bound: float) -> torch.Tensor:
        u = torch.rand(n, generator=generator, device=device, dtype=dtype)
        return (u * 2 - 1) * bound

    angle = uniform(math.radians(rotate))
    zoom = 1 + uniform(scale)
    # affine_grid maps output coordinates to input coordinates in [-1, 1], so the matrix is the
    # inverse transform: rotating by -angle and dividing by the zoom; a shift of `f` of the width
    # is 2f in those normalised units.
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack([
        torch.stack([cos, -sin, uniform(2 * shift)], dim=1),
        torch.stack([sin, cos, uniform(2 * shift)], dim=1),
    ], dim=1)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
