"""Validation split: stratified, exact size, seeded, disjoint, covering; errors for sizes that
cannot work."""

from __future__ import annotations

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from mnistlab.config import TrainConfig
from mnistlab.data import stratified_split
from mnistlab.data.tensors import prepare_data
from mnistlab.errors import MnistlabError


def _check_partition(labels: torch.Tensor, train: torch.Tensor, val: torch.Tensor,
                     val_size: int) -> None:
    assert len(val) == val_size and len(train) == len(labels) - val_size
    assert train.dtype == val.dtype == torch.int64
    assert sorted(train.tolist() + val.tolist()) == list(range(len(labels)))  # disjoint, covers
    for c in labels.unique():
        share = (labels == c).sum().item() * val_size / len(labels)
        assert abs((labels[val] == c).sum().item() - share) < 1


def test_proportional_exact_and_disjoint():
    labels = torch.tensor([0] * 600 + [1] * 300 + [2] * 100)
    train, val = stratified_split(labels, 100, seed=0)
    _check_partition(labels, train, val, 100)
    assert torch.bincount(labels[val]).tolist() == [60, 30, 10]


def test_rounding_keeps_the_total_exact():
    labels = torch.tensor([0] * 5 + [1] * 5 + [2] * 5)  # 7 / 3 classes: shares of 2.33 each
    train, val = stratified_split(labels, 7, seed=1)
    _check_partition(labels, train, val, 7)
    assert sorted(torch.bincount(labels[val]).tolist()) == [2, 2, 3]


def test_same_seed_same_split_other_seed_other_split():
    labels = torch.arange(1000) % 10
    train, val = stratified_split(labels, 100, 3)
    again = stratified_split(labels, 100, 3)
    assert torch.equal(train, again[0]) and torch.equal(val, again[1])
    assert not torch.equal(val, stratified_split(labels, 100, 4)[1])


def test_zero_means_no_validation():
    train, val = stratified_split(torch.arange(10) % 2, 0, 0)
    assert val.numel() == 0 and val.dtype == torch.int64 and train.tolist() == list(range(10))


@pytest.mark.parametrize("size", [1, 10, 11, -1], ids=["below-classes", "all", "more", "neg"])
def test_impossible_sizes(size):
    with pytest.raises(MnistlabError, match=f"val-size: {size} is out of range for 10 training "
                                            "images in 2 classes; use 0 .* or from 2 .* to 9"):
        stratified_split(torch.arange(10) % 2, size, 0)


def test_labels_must_be_one_dimensional():
    with pytest.raises(ValueError, match="1-D labels"):
        stratified_split(torch.zeros(4, 2, dtype=torch.long), 2, 0)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 6), min_size=2, max_size=400), st.data())
def test_any_valid_size_is_exact_stratified_and_seeded(labels, data):
    labels = torch.tensor(labels)
    k, n = len(labels.unique()), len(labels)
    assume(k < n)  # otherwise no non-zero size is valid
    size = data.draw(st.integers(k, n - 1), label="val_size")
    seed = data.draw(st.integers(0, 2**31), label="seed")
    train, val = stratified_split(labels, size, seed)
    _check_partition(labels, train, val, size)
    assert torch.equal(val, stratified_split(labels, size, seed)[1])



@pytest.mark.parametrize("subset, left_out", [(5, 5), (10, 0), (300, 0)])
def test_a_training_subset_that_leaves_classes_out_says_so(subset, left_out, recwarn):
    """`--train-subset 5` trained on 5 of 10 classes without a word."""
    from synth import blobs

    from mnistlab.config import TrainConfig
    from mnistlab.data.tensors import prepare_data

    config = TrainConfig(model="mlp", val_size=0, train_subset=subset, device="cpu")
    splits = prepare_data(config, blobs(n_train=400), torch.device("cpu"))
    said = [str(w.message) for w in recwarn if "train-subset" in str(w.message)]
    assert len(splits.train_y) == subset
    assert said == ([f"train-subset {subset}: {left_out} of the 10 classes have no training "
                     "image left, and the model cannot learn them; give at least one image per "
                     "class (a few hundred learn something)"] if left_out else [])


def test_sizes_that_leave_fewer_training_images_than_asked_say_so(recwarn):
    """`--train-subset 55000` on MNIST trained on 50,000 without a word, and a `--val-size`
    that left 5 training images for 10 classes said nothing either."""
    from synth import blobs

    from mnistlab.config import TrainConfig
    from mnistlab.data.tensors import prepare_data

    config = TrainConfig(model="mlp", val_size=100, train_subset=350, device="cpu")
    splits = prepare_data(config, blobs(n_train=400), torch.device("cpu"))
    assert len(splits.train_y) == 300
    assert [str(w.message) for w in recwarn] == [
        "train-subset 350: only 300 training images are left once validation is held out; it "
        "trains on those (give a smaller --train-subset or --val-size to choose)"]
    recwarn.clear()
    prepare_data(TrainConfig(model="mlp", val_size=395, device="cpu"), blobs(n_train=400),
                 torch.device("cpu"))
    assert [str(w.message) for w in recwarn] == [
        "val-size 395: 5 of the 10 classes have no training image left, and the model cannot "
        "learn them; give at least one image per class (a few hundred learn something)"]


def test_the_cache_keeps_the_dataset_once_and_only_the_splits_used_last(tiny_idx_dir,
                                                                       monkeypatch):
    """Each split holds a copy of its training images: a study of four data seeds on 300,000
    images kept four copies in every worker (1.6 GB against 0.9 GB for one)."""
    from mnistlab.data import cache

    loads = []
    real = cache.load_dataset
    monkeypatch.setattr(cache, "load_dataset", lambda *a, **k: loads.append(a) or real(*a, **k))
    kept = cache.DataCache()
    configs = [TrainConfig(dataset=str(tiny_idx_dir), data_seed=s, val_size=100, device="cpu")
               for s in range(3)]
    first = kept.splits(configs[0])
    assert kept.splits(configs[0]) is first  # shared by the runs of one split
    kept.splits(configs[1])
    assert kept.splits(configs[0]) is first  # used last: kept
    kept.splits(configs[2])  # the third: seed 1's, used longest ago, goes
    assert kept.splits(configs[0]) is first and len(kept._splits) == cache.KEPT_SPLITS
    again = kept.splits(configs[1])  # made again, the same split
    assert torch.equal(again.train_y, prepare_data(configs[1]).train_y)
    assert len(loads) == 1
