"""The engine's batches: gathered and scaled in chunks, the same numbers as batch by batch."""

from __future__ import annotations

import pytest
import torch
from synth import blobs

from mnistlab import TrainConfig, train
from mnistlab.data.tensors import prepare_data, to_input
from mnistlab.training import engine

CPU = torch.device("cpu")


def one_by_one(splits, config, order, copies=1):
    """What a step took before chunks: its own gather, augmentation and scaling."""
    for first in range(0, len(order), config.batch_size):
        idx = order[first:first + config.batch_size]
        inputs = [to_input(splits.train_x[idx], config, splits.mean, splits.std,
                           config.augmentation) for _ in range(copies)]
        yield (inputs[0] if copies == 1 else torch.cat(inputs, dim=1)), splits.train_y[idx]


def taken(batches, seed):
    torch.manual_seed(seed)  # augmentation draws from the epoch's seeded stream
    return [(x.clone(), y.clone()) for x, y in batches]


@pytest.mark.parametrize("augment, copies, scaling", [
    ("", 1, "standardize"), ("", 1, "unit"), ("", 1, "raw"),
    ("rotate=10,shift=0.1", 1, "standardize"), ("crop=2,erase=0.5", 3, "standardize")])
def test_chunks_give_every_batch_exactly_as_one_by_one(monkeypatch, augment, copies, scaling):
    # 7-image chunks of 3-image batches: chunks of 6, a last chunk and a last batch cut short
    monkeypatch.setattr(engine, "CHUNK_IMAGES", 7)
    config = TrainConfig(dataset="synthetic", val_size=100, batch_size=3, augment=augment,
                         input_scaling=scaling)
    splits = prepare_data(config, blobs(n_train=140), CPU)
    order = engine.epoch_order(len(splits.train_y), 0, 1, CPU)
    chunked = taken(engine.batches(splits, config, order, copies), seed=5)
    expected = taken(one_by_one(splits, config, order, copies), seed=5)
    assert [len(y) for _, y in chunked] == [3] * 13 + [1]
    assert len(chunked) == len(expected)
    for (x, y), (x0, y0) in zip(chunked, expected):
        assert x.shape == x0.shape and x.dtype == x0.dtype
        assert torch.equal(x, x0) and torch.equal(y, y0)


def test_a_whole_run_is_the_same_whatever_the_chunk(monkeypatch):
    config = TrainConfig(dataset="synthetic", model="mlp", hidden=[32], dropout=0.2,
                         val_size=200, batch_size=32, epochs=2, eval_train_size=200)
    reference = train(config, dataset=blobs())
    monkeypatch.setattr(engine, "CHUNK_IMAGES", 100)  # 96-image chunks: 11 per epoch
    chunked = train(config, dataset=blobs())
    assert [r.replace(seconds=0) for r in chunked.history] == \
        [r.replace(seconds=0) for r in reference.history]
