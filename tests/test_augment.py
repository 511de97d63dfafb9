"""Batched augmentation: identity when off, per-image randomness, shapes, background kept;
crop, flip, erase, stroke and blur exact and within their bounds."""

import pytest
import torch
import torch.nn.functional as F

from mnistlab import MnistlabError, TrainConfig
from mnistlab.augment import (
    BLUR_SIDES,
    augment_batch,
    random_affine,
    random_blur,
    random_crop,
    random_elastic,
    random_erase,
    random_flip,
    random_stroke,
)


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


# --- crop, flip, erase: exact, per image, within their bounds -------------------------------
def _dots(n: int = 64, side: int = 28) -> torch.Tensor:
    """One bright pixel per image at (10, 17): where it lands says how the image moved."""
    x = torch.zeros(n, 1, side, side)
    x[:, :, 10, 17] = 1.0
    return x


def test_crop_moves_each_image_by_whole_pixels_within_the_padding():
    pad = 3
    out = random_crop(_dots(), pad, generator=torch.Generator().manual_seed(0))
    assert out.shape == (64, 1, 28, 28) and out.is_contiguous()
    where = (out[:, 0] == 1.0).nonzero()
    assert len(where) == 64 and out.sum() == 64  # every dot kept whole: no interpolation
    dy, dx = where[:, 1] - 10, where[:, 2] - 17
    assert dy.abs().max() <= pad and dx.abs().max() <= pad
    assert len(set(zip(dy.tolist(), dx.tolist()))) > 20  # each image its own offset
    assert {dy.min().item(), dy.max().item()} == {-pad, pad}  # both ends are reached


def test_crop_brings_in_background_and_is_exactly_a_shift():
    x = torch.rand(16, 2, 12, 12) + 0.5  # no zero inside the frame
    out = random_crop(x, 2, generator=torch.Generator().manual_seed(1))
    for image, moved in zip(x, out):
        padded = torch.nn.functional.pad(image, (2, 2, 2, 2))
        matches = [(t, s) for t in range(5) for s in range(5)
                   if torch.equal(padded[:, t:t + 12, s:s + 12], moved)]
        assert len(matches) == 1  # the same offset for both channels, copied exactly
    assert random_crop(x, 0) is x


def test_flip_mirrors_exactly_the_images_its_coin_picks():
    x = torch.rand(200, 1, 28, 28)
    out = random_flip(x, 0.5, generator=torch.Generator().manual_seed(2))
    flipped = torch.tensor([torch.equal(o, i.flip(2)) for o, i in zip(out, x)])
    kept = torch.tensor([torch.equal(o, i) for o, i in zip(out, x)])
    assert (flipped ^ kept).all()  # each image is either itself or its exact mirror
    assert 60 < int(flipped.sum()) < 140
    assert torch.equal(random_flip(x, 1.0), x.flip(3))
    assert torch.equal(random_flip(x, 0.0), x)


def test_erase_blanks_one_rectangle_inside_the_frame_within_the_area():
    x = torch.ones(300, 1, 28, 28)
    max_area = 0.2
    out = random_erase(x, 0.7, max_area, generator=torch.Generator().manual_seed(3))
    erased = out[:, 0] == 0
    counts = erased.sum(dim=(1, 2))
    assert counts.max() <= max_area * 28 * 28
    assert 150 < int((counts > 0).sum()) < 250  # about 70% of the images
    for mask in erased[counts > 0]:
        rows, cols = mask.any(dim=1).nonzero(), mask.any(dim=0).nonzero()
        box = mask[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
        assert box.all()  # a solid rectangle, nothing erased outside it
        height, width = box.shape
        assert max(height, width) <= 2 * min(height, width) + 2  # aspect within 1:2..2:1
    assert torch.equal(out[counts == 0], x[counts == 0])


def test_the_batch_augmentation_is_deterministic_with_a_seed_and_keeps_the_affine():
    spec = {"rotate": 10.0, "shift": 0.1, "crop": 2.0, "flip": 0.5, "erase": 0.5,
            "erase_area": 0.2}
    x = torch.rand(32, 1, 28, 28)
    a = augment_batch(x, spec, generator=torch.Generator().manual_seed(4))
    b = augment_batch(x, spec, generator=torch.Generator().manual_seed(4))
    c = augment_batch(x, spec, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b) and not torch.equal(a, c) and a.shape == x.shape
    assert augment_batch(x, {}) is x
    only_affine = augment_batch(x, {"rotate": 10.0}, generator=torch.Generator().manual_seed(6))
    expected = random_affine(x, rotate=10.0, generator=torch.Generator().manual_seed(6))
    assert torch.equal(only_affine, expected)


def test_stroke_makes_strokes_bolder_or_thinner_and_leaves_the_rest():
    x = torch.zeros(200, 1, 28, 28)
    x[:, :, 6:22, 12:15] = 1.0  # a bar three pixels wide
    out = random_stroke(x, 0.5, generator=torch.Generator().manual_seed(0))
    widths = (out[:, 0, 14] > 0.5).sum(dim=1)  # the bar's width on the middle row
    assert set(widths.tolist()) == {2, 3, 5}  # thinner by one, untouched, bolder by two
    share = (widths != 3).float().mean()
    assert 0.35 < share < 0.65  # about `probability` of the images changed
    assert ((widths == 5).sum() - (widths == 2).sum()).abs() < 30  # bolder as often as thinner
    assert out[widths == 3].equal(x[widths == 3])
    assert random_stroke(x, 0.0).equal(x)


def changed_about_half(out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Which images an augmentation at probability 0.5 changed: about half, the rest exact."""
    changed = (out - x).abs().flatten(1).amax(dim=1) > 1e-6
    assert 0.4 < changed.float().mean() < 0.6
    assert out[~changed].equal(x[~changed])
    return changed


def test_blur_is_a_round_trip_through_a_lower_resolution():
    x = torch.zeros(300, 1, 28, 28)
    x[:, :, 6:22, 13:15] = 1.0
    out = random_blur(x, 0.5, generator=torch.Generator().manual_seed(0))
    changed = changed_about_half(out, x)
    # a blurred image is the round trip at one of the listed sides, exactly
    for image in out[changed][:20]:
        trips = [F.interpolate(F.interpolate(x[:1], size=(s, s), mode="area"), size=(28, 28),
                               mode="bilinear", align_corners=False)[0] for s in BLUR_SIDES]
        assert any(torch.allclose(image, t, atol=1e-6) for t in trips)
    # ink spreads (a little lost at the coarsest sides); far off, the background stays black
    assert (out.sum(dim=(1, 2, 3)) / x.sum(dim=(1, 2, 3))).sub(1).abs().max() < 0.3
    assert out[:, :, :2].abs().max() == 0


def test_blur_and_stroke_are_read_from_the_augment_setting():
    config = TrainConfig(augment="rotate=8,blur=0.3,stroke=0.25")
    assert config.augmentation == {"rotate": 8.0, "blur": 0.3, "stroke": 0.25}
    with pytest.raises(MnistlabError, match="blur is a probability"):
        TrainConfig(augment="blur=2")
    x = torch.rand(32, 1, 28, 28)
    g1, g2 = (torch.Generator().manual_seed(3) for _ in range(2))
    assert augment_batch(x, config.augmentation, generator=g1).equal(
        augment_batch(x, config.augmentation, generator=g2))


def test_elastic_wobbles_strokes_by_a_few_pixels_and_keeps_the_rest():
    x = torch.zeros(200, 1, 28, 28)
    x[:, :, 6:22, 12:16] = 1.0
    out = random_elastic(x, 0.5, generator=torch.Generator().manual_seed(0))
    changed = changed_about_half(out, x)
    # a smooth field of a pixel or two: the bar bends but stays near where it was
    ys, xs = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    mass = out[changed].sum(dim=(1, 2, 3))
    centre_x = (out[changed, 0] * xs).sum(dim=(1, 2)) / mass
    assert (centre_x - 13.5).abs().max() < 3
    assert ((mass / 64 > 0.25) & (mass / 64 < 2)).all()  # stretched or squeezed, never gone
    assert not torch.equal(out[changed][0], out[changed][1])  # a field per image
    g1, g2 = (torch.Generator().manual_seed(5) for _ in range(2))
    assert random_elastic(x, 1.0, generator=g1).equal(random_elastic(x, 1.0, generator=g2))
    assert TrainConfig(augment="elastic=0.5").augmentation == {"elastic": 0.5}
