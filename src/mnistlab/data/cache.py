"""Datasets and splits kept in memory for many runs in one process (a study's worker, a
search, a Ray task): each dataset is read once, each split made once, and runs share them.

Each split holds a copy of its training images, so only the splits used last are kept: a study
of four data seeds on 300,000 images held four copies (1.6 GB against 0.9 GB), and making a
split again from the dataset in memory takes a fraction of a second per 100,000 images."""

from __future__ import annotations

from ..config import TrainConfig
from ..device import resolve_device
from .dataset import Dataset, load_dataset
from .tensors import Splits, prepare_data

KEPT_SPLITS = 2  # the most recently used


class DataCache:
    """Load each dataset once and each split once per process: runs share the tensors."""

    def __init__(self) -> None:
        self._datasets: dict[tuple, Dataset] = {}
        self._splits: dict[tuple, Splits] = {}

    def add(self, name: str, data_dir: str | None, dataset: Dataset) -> None:
        """Use `dataset` for configs naming (name, data_dir), e.g. one shipped by Ray."""
        self._datasets[(name, data_dir)] = dataset
        self._splits = {k: v for k, v in self._splits.items() if k[0] != (name, data_dir)}

    def dataset(self, config: TrainConfig) -> Dataset:
        """The dataset `config` names, read once."""
        data_key = (config.dataset, config.data_dir)
        if data_key not in self._datasets:
            self._datasets[data_key] = load_dataset(config.dataset, data_dir=config.data_dir)
        return self._datasets[data_key]

    def splits(self, config: TrainConfig) -> Splits:
        data_key = (config.dataset, config.data_dir)
        self.dataset(config)
        split_key = (data_key, config.val_size, config.val_from, config.train_subset,
                     config.data_seed, config.shuffle_labels, config.eval_train_size, config.device)
        split = self._splits.pop(split_key, None)  # and put back last: the newest
        if split is None:
            split = prepare_data(config, self._datasets[data_key], resolve_device(config.device))
        self._splits[split_key] = split
        while len(self._splits) > KEPT_SPLITS:  # the one used longest ago goes
            del self._splits[next(iter(self._splits))]
        return split
