"""Helpers for the predict and export tests: digits drawn the way a user's would look, a LeNet-5
trained on real MNIST (once per test session: conftest's lenet_run), and tiny untrained run folders.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib import font_manager
from PIL import Image, ImageDraw, ImageFont

from mnistlab import TrainConfig, files, train
from mnistlab.models import build_model
from mnistlab.runs import MODEL_FORMAT

# matplotlib's bundled fonts: sans, bold, serif, mono, oblique, and STIX (Times-like).
FONTS = (("DejaVu Sans", "normal", "normal"), ("DejaVu Sans", "bold", "normal"),
         ("DejaVu Serif", "normal", "normal"), ("DejaVu Sans Mono", "normal", "normal"),
         ("DejaVu Sans", "normal", "oblique"), ("STIXGeneral", "normal", "normal"))

# Short but real: all 58,000 training images (2,000 held out), 2 epochs, batch norm.
# ~20 s on one core. With train_subset=20000 and no batch norm the rendered digits score
# 85-88% instead of 92-94%: typeset 6s and 9s are far from handwritten ones.
LENET = dict(dataset="mnist", model="lenet5", batchnorm=True, epochs=2, val_size=2000,
             eval_train_size=2000, device="cpu", seed=0)

def train_lenet(folder: Path, datasets: Path) -> Path:
    """A LeNet-5 run trained into `folder` (the `lenet_run` fixture: once per test session)."""
    threads = torch.get_num_threads()
    # On a small shared machine the intra-op threads of a model this small wait on each
    # other: one thread trained 40x faster than two (8 ms vs 340 ms a step) under load.
    torch.set_num_threads(1)
    try:
        train(TrainConfig(data_dir=str(datasets), **LENET), out=folder, write_plots=False)
    finally:
        torch.set_num_threads(threads)
    return folder


def make_run(folder: Path, *, dataset: str = "mnist", shape: tuple[int, int, int] = (1, 28, 28),
             **settings: Any) -> Path:
    """A run folder holding an untrained model of images of `shape` (C, H, W): enough for
    everything but accuracy."""
    config = TrainConfig(dataset=dataset, **settings)
    torch.manual_seed(0)
    model = build_model(config, shape, 10)
    model.eval()
    files.torch_save(folder / "model.pt", {
        "format": MODEL_FORMAT, "config": config.to_dict(),
        "state_dict": {k: v.detach().clone() for k, v in model.state_dict().items()},
        "class_names": [str(i) for i in range(10)], "image_shape": list(shape),
        "mean": 0.1307, "std": 0.3081, "dataset": dataset})
    return folder


def font_files() -> list[str]:
    return [font_manager.findfont(font_manager.FontProperties(family=f, weight=w, style=s),
                                  fallback_to_default=False) for f, w, s in FONTS]


def draw_digit(digit: int, font_file: str, rng: np.random.Generator) -> Image.Image:
    """Dark ink on light, slightly textured paper: any size, stroke width, aspect, a small
    tilt, anywhere on a canvas of any shape."""
    size = int(rng.integers(40, 140))
    font = ImageFont.truetype(font_file, size)
    stroke = int(rng.choice([0, 0, 1, 2, 3])) * max(1, size // 40)  # bolder than the font
    text = str(digit)
    left, top, right, bottom = font.getbbox(text, stroke_width=stroke)
    pad = 4 + stroke
    glyph = Image.new("L", (right - left + 2 * pad, bottom - top + 2 * pad), 0)
    ImageDraw.Draw(glyph).text((pad - left, pad - top), text, font=font, fill=255,
                               stroke_width=stroke, stroke_fill=255)
    stretch = float(rng.uniform(0.85, 1.15))
    glyph = glyph.resize((max(1, round(glyph.width * stretch)), glyph.height),
                         Image.Resampling.BICUBIC)
    glyph = glyph.rotate(float(rng.uniform(-10, 10)), resample=Image.Resampling.BICUBIC,
                         expand=True)
    ink_mask = np.asarray(glyph, dtype=np.float32) / 255
    gh, gw = ink_mask.shape
    height, width = gh + int(rng.integers(20, 160)), gw + int(rng.integers(20, 160))
    coarse = rng.normal(0, 1, (height // 16 + 2, width // 16 + 2)).astype(np.float32)
    texture = np.asarray(Image.fromarray(coarse).resize((width, height),
                                                        Image.Resampling.BICUBIC))
    paper = rng.uniform(205, 250) + 5 * texture + rng.normal(0, 5, (height, width))
    y, x = int(rng.integers(0, height - gh + 1)), int(rng.integers(0, width - gw + 1))
    mask = np.zeros((height, width), np.float32)
    mask[y:y + gh, x:x + gw] = ink_mask
    ink = rng.uniform(10, 80, 3) + np.array([0, 0, rng.uniform(0, 60)])  # black to blue pens
    rgb = paper[..., None] * (1 - mask[..., None]) + ink * mask[..., None]
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))


def draw_digits(folder: Path, *, per_font: int = 3, seed: int = 0) -> dict[str, int]:
    """Every digit in every font, `per_font` times, as PNG and JPEG files: {file name: digit}."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    labels = {}
    for digit in range(10):
        for number, font_file in enumerate(font_files()):
            for k in range(per_font):
                image = draw_digit(digit, font_file, rng)
                name = f"{digit}-font{number}-{k}.{'jpg' if k % 2 else 'png'}"
                image.save(folder / name, quality=85)
                labels[name] = digit
    return labels
