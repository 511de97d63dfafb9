"""Validation split: stratified, exact size, seeded, disjoint; errors for impossible sizes."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mnistlab.data import stratified_split
from mnistlab.errors import MnistlabError


def test_stratified_exact_and_disjoint():
    labels = torch.tensor([0] * 600 + [1] * 300 + [2] * 100)
    train, val = stratified_split(labels, 100, seed=0)
    assert len(val) == 100 and len(train) == 900
    assert set(train.tolist()).isdisjoint(val.tolist())
    assert sorted(train.tolist() + val.tolist()) == list(range(1000))
    assert torch.bincount(labels[val]).tolist() == [60, 30, 10]


def test_seeded():
    labels = torch.arange(1000) % 10
    a = stratified_split(labels, 100, 3)[1]
    assert torch.equal(a, stratified_split(labels, 100, 3)[1])
    assert not torch.equal(a, stratified_split(labels, 100, 4)[1])


def test_zero_means_no_validation():
    train, val = stratified_split(torch.arange(10) % 2, 0, 0)
    assert len(val) == 0 and len(train) == 10


@pytest.mark.parametrize("size", [10, 11, -1])
def test_impossible_sizes(size):
    with pytest.raises(MnistlabError, match="val-size"):
        stratified_split(torch.arange(10) % 2, size, 0)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 4), min_size=2, max_size=300), st.data())
def test_proportions_within_one(labels, data):
    labels = torch.tensor(labels)
    size = data.draw(st.integers(1, len(labels) - 1))
    train, val = stratified_split(labels, size, 0)
    assert len(val) == size
    for c in labels.unique():
        expected = (labels == c).sum().item() * size / len(labels)
        assert abs((labels[val] == c).sum().item() - expected) <= 1
