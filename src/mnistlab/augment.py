"""Random augmentation on whole batches of image tensors, on the device they live on.

Each image gets its own rotation, scale and shift, elastic distortion, crop offset, stroke
change, resolution, erased rectangle and mirror coin, but the work is a few batched tensor ops
per kind (affine: build N matrices, `affine_grid`, `grid_sample`; elastic: a smoothed random
field and `grid_sample`; crop: one gather; stroke: a 3x3 max filter; blur: one resize round
trip per resolution; erase and flip: masks), never a per-image Python loop. Works on images
in [0, 1] with a black (0) background, before normalisation, so the pixels brought in from
outside the frame, and the erased ones, are background.

    augment_batch(images, config.augmentation)   # what training does to each batch
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def augment_batch(images: torch.Tensor, spec: dict[str, float], *,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """`spec` (TrainConfig.augmentation) applied in a fixed order: affine, elastic, crop,
    stroke, blur, flip, erase (erasing last, so the blank rectangle is not itself rotated or
    moved)."""
    images = random_affine(images, rotate=spec.get("rotate", 0.0),
                           scale=spec.get("scale", 0.0), shift=spec.get("shift", 0.0),
                           generator=generator)
    if spec.get("elastic"):
        images = random_elastic(images, spec["elastic"], generator=generator)
    if spec.get("crop"):
        images = random_crop(images, int(spec["crop"]), generator=generator)
    if spec.get("stroke"):
        images = random_stroke(images, spec["stroke"], generator=generator)
    if spec.get("blur"):
        images = random_blur(images, spec["blur"], generator=generator)
    if spec.get("flip"):
        images = random_flip(images, spec["flip"], generator=generator)
    if spec.get("erase"):
        images = random_erase(images, spec["erase"], spec["erase_area"], generator=generator)
    return images


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


def _uniform(n: int, images: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    return torch.rand(n, generator=generator, device=images.device)


def random_crop(images: torch.Tensor, pad: int, *,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Zero-pad each side by `pad` pixels and cut the original size back out at a random
    offset per image: each image moves by a whole number of pixels in [-pad, pad] along each
    axis, exactly (no interpolation), with background coming in at the edges."""
    if pad <= 0:
        return images
    n, _, h, w = images.shape
    padded = F.pad(images, (pad, pad, pad, pad))
    top = (_uniform(n, images, generator) * (2 * pad + 1)).long().clamp_(max=2 * pad)
    left = (_uniform(n, images, generator) * (2 * pad + 1)).long().clamp_(max=2 * pad)
    rows = (top[:, None] + torch.arange(h, device=images.device))[:, :, None]  # (N, H, 1)
    cols = (left[:, None] + torch.arange(w, device=images.device))[:, None, :]  # (N, 1, W)
    batch = torch.arange(n, device=images.device)[:, None, None]
    # advanced indices around a slice put their dimensions first: (N, H, W, C)
    return padded[batch, :, rows, cols].permute(0, 3, 1, 2).contiguous(
        memory_format=torch.contiguous_format)


def random_flip(images: torch.Tensor, probability: float, *,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Mirror each image left-right with `probability` (for objects, never for digits)."""
    flip = _uniform(images.shape[0], images, generator) < probability
    return torch.where(flip[:, None, None, None], images.flip(3), images)


def random_erase(images: torch.Tensor, probability: float, max_area: float, *,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """With `probability` per image, set a random rectangle to background (0): its area a
    uniform fraction of at most `max_area` of the image, its aspect ratio between 1:2 and 2:1,
    wholly inside the frame (random erasing, Zhong et al. 2017; cutout's idea)."""
    n, _, h, w = images.shape
    erase = _uniform(n, images, generator) < probability
    area = _uniform(n, images, generator) * max_area
    ratio = torch.exp((_uniform(n, images, generator) * 2 - 1) * math.log(2))
    # floor, then clamp to the frame: height x width never exceeds area x H x W
    height = (h * torch.sqrt(area * ratio)).floor().clamp(max=h).long()
    width = (w * torch.sqrt(area / ratio)).floor().clamp(max=w).long()
    top = (_uniform(n, images, generator) * (h - height + 1)).long()
    left = (_uniform(n, images, generator) * (w - width + 1)).long()
    rows = torch.arange(h, device=images.device)[None, :, None]
    cols = torch.arange(w, device=images.device)[None, None, :]
    inside = ((rows >= top[:, None, None]) & (rows < (top + height)[:, None, None])
              & (cols >= left[:, None, None]) & (cols < (left + width)[:, None, None]))
    mask = (inside & erase[:, None, None])[:, None]  # (N, 1, H, W), shared by the channels
    return images.masked_fill(mask, 0.0)


def random_stroke(images: torch.Tensor, probability: float, *,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """With `probability` per image, strokes bolder by two pixels (a 3x3 grey dilation) or,
    as often, thinner by one (a 2x2 grey erosion; a 3x3 one would wipe out MNIST's thinnest
    strokes): the pens and scanners of other writers."""
    n = images.shape[0]
    change = _uniform(n, images, generator) < probability
    bolder = _uniform(n, images, generator) < 0.5
    dilated = F.max_pool2d(images, 3, stride=1, padding=1)
    eroded = -F.max_pool2d(F.pad(-images, (0, 1, 0, 1)), 2, stride=1)
    changed = torch.where(bolder[:, None, None, None], dilated, eroded)
    return torch.where(change[:, None, None, None], changed, images)


BLUR_SIDES = (7, 8, 10, 12, 14)  # the resolutions a blurred image passes through


def random_blur(images: torch.Tensor, probability: float, *,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """With `probability` per image, a round trip through a lower resolution (one of
    BLUR_SIDES, chosen per image): shrunk with area averaging, enlarged back bilinearly, as a
    coarse scan or a thumbnail enlarged by its user would be. The strokes stay where they were;
    they turn soft and wide."""
    n, _, h, w = images.shape
    blur = _uniform(n, images, generator) < probability
    side = (_uniform(n, images, generator) * len(BLUR_SIDES)).long().clamp_(max=len(BLUR_SIDES) - 1)
    out = images
    for index, low in enumerate(BLUR_SIDES):
        chosen = blur & (side == index)
        if not chosen.any():
            continue
        picked = images[chosen]
        # area averaging to a side 28 is no multiple of is adaptive pooling, which Apple's
        # MPS refuses: done on the CPU there
        small = (F.interpolate(picked.cpu(), size=(low, low), mode="area").to(picked.device)
                 if picked.device.type == "mps" else
                 F.interpolate(picked, size=(low, low), mode="area"))
        back = F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)
        out = out.clone() if out is images else out
        out[chosen] = back.to(out.dtype)
    return out


# Elastic distortion as Simard, Steinkraus & Platt (2003) used it on MNIST: a random
# displacement field, uniform in [-1, 1] per pixel, smoothed by a Gaussian of ELASTIC_SIGMA
# pixels and scaled by ELASTIC_ALPHA pixels: the wobble of a hand, not of a camera.
ELASTIC_ALPHA, ELASTIC_SIGMA = 34.0, 4.0


def random_elastic(images: torch.Tensor, probability: float, *,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """With `probability` per image, an elastic distortion (ELASTIC_ALPHA, ELASTIC_SIGMA);
    background comes in where the field pulls from outside the frame."""
    n, _, h, w = images.shape
    device, dtype = images.device, images.dtype
    apply = _uniform(n, images, generator) < probability
    noise = torch.rand(n * 2, 1, h, w, generator=generator, device=device, dtype=dtype) * 2 - 1
    radius = math.ceil(3 * ELASTIC_SIGMA)
    taps = torch.arange(-radius, radius + 1, device=device, dtype=dtype)
    kernel = torch.exp(-taps ** 2 / (2 * ELASTIC_SIGMA ** 2))
    kernel = kernel / kernel.sum()
    field = F.conv2d(noise, kernel.view(1, 1, 1, -1), padding=(0, radius))
    field = F.conv2d(field, kernel.view(1, 1, -1, 1), padding=(radius, 0))
    field = field.view(n, 2, h, w) * ELASTIC_ALPHA
    # pixels -> grid_sample's [-1, 1] units (align_corners=False: a pixel is 2/size wide)
    ys = (torch.arange(h, device=device, dtype=dtype) + 0.5) * 2 / h - 1
    xs = (torch.arange(w, device=device, dtype=dtype) + 0.5) * 2 / w - 1
    grid = torch.stack([xs.view(1, 1, w) + field[:, 0] * 2 / w,
                        ys.view(1, h, 1) + field[:, 1] * 2 / h], dim=3)
    warped = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros",
                           align_corners=False)
    return torch.where(apply[:, None, None, None], warped, images)
