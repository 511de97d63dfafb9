"""Handwriting that is not MNIST: accuracy through `mnistlab predict` against a naive resize.

    pip install -e ".[tune]"   # scikit-learn, for its bundled copy of the digits below
    MNISTLAB_DATA=../shared/datasets python benchmarks/robustness.py RUN_DIR [RUN_DIR ...]

The set: UCI "Optical Recognition of Handwritten Digits" (Alpaydin & Kaynak 1998; the copy
bundled with scikit-learn, `load_digits`): 1,797 digits written by 13 people who are not
MNIST's writers, on NIST forms, scanned, size-normalised to 32x32 and block-averaged to 8x8
with 17 grey levels. Blurrier, thicker and larger in their box than MNIST digits: what a user's
own scans look like after a careless resize.

Each digit is written to a PNG file as a scan would come: dark ink on white paper, 8x8, then
read back through `predict()` (the `mnistlab predict` path: read, invert, fit into a 20x20 box
by mass, normalise the stroke width). The naive path is what users try first: resize the same
image to 28x28 (bilinear) and invert it. Printed per run: both accuracies and their difference.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch
from _cli import run_main  # benchmarks/ is the script's folder, so on sys.path
from PIL import Image

from mnistlab.data.tensors import to_input
from mnistlab.predict import predict
from mnistlab.runs import load_model


def load_digits_set() -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (N, 8, 8) dark ink on white, labels (N,))."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise SystemExit("this benchmark reads scikit-learn's bundled copy of the UCI digits: "
                         "pip install scikit-learn (or the tune extra)") from None
    digits = load_digits()
    ink = np.rint(digits.images / 16.0 * 255).astype(np.uint8)
    return 255 - ink, digits.target.astype(np.int64)


def write_scans(images: np.ndarray, folder: Path) -> list[Path]:
    paths = []
    for i, image in enumerate(images):
        path = folder / f"{i:04d}.png"
        Image.fromarray(image).save(path)
        paths.append(path)
    return paths


def naive_accuracy(run: Path, images: np.ndarray, labels: np.ndarray) -> float:
    """Resize to 28x28 (bilinear), invert to light on dark, normalise as in training."""
    model, payload = load_model(run)
    from mnistlab.config import TrainConfig

    config = TrainConfig.from_dict(payload["config"])
    resized = np.stack([np.asarray(Image.fromarray(255 - im).resize((28, 28), Image.BILINEAR))
                        for im in images])
    x = to_input(torch.from_numpy(resized).unsqueeze(1), config, payload["mean"], payload["std"])
    model.eval()
    with torch.no_grad():
        predicted = model(x).argmax(1).numpy()
    return float((predicted == labels).mean())


def predict_accuracy(run: Path, paths: list[Path], labels: np.ndarray,
                     tta: bool | None = None) -> float:
    """Through `predict`: as `mnistlab predict` does by default (tta None: with the test-time
    views the run was scored with, if it was), or with `tta` set (--tta / --no-tta)."""
    model, payload = load_model(run)
    predictions = predict((model, payload), [str(p) for p in paths], top=1, tta=tta)
    errors = [p.error for p in predictions if p.error]
    if errors:
        raise SystemExit(f"{len(errors)} images could not be read, e.g.: {errors[0]}")
    predicted = np.array([p.index for p in predictions])
    return float((predicted == labels).mean())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, metavar="RUN_DIR",
                        help="trained MNIST run folders (mnistlab train --out ...)")
    args = parser.parse_args()
    images, labels = load_digits_set()
    print(f"UCI handwritten digits (scikit-learn copy): {len(labels):,} images, 8x8, "
          f"{len(set(labels.tolist()))} classes")
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_scans(images, Path(tmp))
        for run in args.runs:
            through = predict_accuracy(run, paths, labels)
            naive = naive_accuracy(run, images, labels)
            with_tta = bool(load_model(run)[1]["config"].get("tta"))
            alone = (f"  (the image alone, --no-tta: "
                     f"{predict_accuracy(run, paths, labels, tta=False):.4f})" if with_tta else "")
            print(f"{run}: predict {through:.4f}{' with TTA' if with_tta else ''}{alone}  "
                  f"naive resize-and-invert {naive:.4f}  difference {through - naive:+.4f}",
                  flush=True)
    return 0


if __name__ == "__main__":
    run_main(main)
