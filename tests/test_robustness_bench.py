"""benchmarks/robustness.py: the UCI digits arrive as dark ink on white 8x8 scans, and both
paths (predict, naive resize) score a run folder."""

import sys
from pathlib import Path

import numpy as np
import pytest
from drawn import make_run

pytest.importorskip("sklearn", reason="the digits come from scikit-learn (the tune extra)")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import robustness  # noqa: E402


def test_the_set_is_1797_scans_of_dark_ink_on_white():
    images, labels = robustness.load_digits_set()
    assert images.shape == (1797, 8, 8) and images.dtype == np.uint8
    assert sorted(set(labels.tolist())) == list(range(10))
    border = np.concatenate([images[:, 0], images[:, -1]], axis=1)
    assert np.median(border) == 255  # paper
    assert images.min() == 0  # full-strength ink somewhere


def test_both_paths_score_a_run(tmp_path):
    images, labels = robustness.load_digits_set()
    images, labels = images[:40], labels[:40]
    run = make_run(tmp_path / "run", model="cnn", filters=(4, 8), dense=(16,))
    paths = robustness.write_scans(images, tmp_path)
    through = robustness.predict_accuracy(run, paths, labels)
    naive = robustness.naive_accuracy(run, images, labels)
    assert 0 <= through <= 1 and 0 <= naive <= 1
    assert through * 40 == int(round(through * 40))  # a count of 40 images
