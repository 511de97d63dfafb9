"""What a run trains and scores on: the splits as tensors on the training device, and the one
transform from stored uint8 pixels to what a model sees.

The data lives on the device as uint8 tensors (no DataLoader: it fits in memory). Validation is
held out of the training set (stratified, seeded by `data_seed`), unless `val_from = "test"`
reproduces studies that validated on the test set.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch

from ..augment import augment_batch
from ..config import TrainConfig, torch_seed
from ..device import resolve_device
from .dataset import Dataset, load_dataset
from .sources import KNOWN_DATASETS
from .splits import stratified_split


@dataclass
class Splits:
    """Everything a run trains and scores on, as tensors on the training device."""

    train_x: torch.Tensor  # uint8 (N, C, H, W)
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    eval_idx: torch.Tensor  # fixed training sample scored in eval mode each epoch
    mean: float
    std: float
    class_names: list[str]
    dataset_name: str
    val_source: str
    # Dataset.digest unless the data is the known dataset the config names (checked against
    # its published checksums instead): kept in checkpoints and models
    data_digest: str = ""
    published: bool = False  # its checksums are a known dataset's: dataset_name is that one

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.train_x.shape[1:])  # type: ignore[return-value]

    def train_label_counts(self) -> list[int]:
        """Class counts of the training labels before the validation split (train + val):
        the file's own histogram when validation was held out of it (stratified)."""
        labels = torch.cat([self.train_y.cpu(), self.val_y.cpu()])
        return torch.bincount(labels, minlength=self.num_classes).tolist()


def prepare_data(config: TrainConfig, dataset: Dataset | None = None,
                 device: torch.device | None = None) -> Splits:
    """Load (or take) the dataset, hold out validation, subset, and move it to the device."""
    dataset = dataset or load_dataset(config.dataset, data_dir=config.data_dir)
    device = device or resolve_device(config.device)
    images, labels = dataset.train_images, dataset.train_labels
    if config.val_from == "test":
        warnings.warn(
            "val-from=test: validating on the test set; the test accuracy is then no longer an "
            "unbiased estimate", stacklevel=2)
        train_idx = torch.arange(len(labels))
        val_x, val_y = dataset.test_images, dataset.test_labels
    else:
        train_idx, val_idx = stratified_split(labels, config.val_size, config.data_seed)
        val_x, val_y = images[val_idx], labels[val_idx]
    if config.train_subset and config.train_subset < len(train_idx) - splits_floor(labels):
        keep, _ = stratified_split(labels[train_idx], len(train_idx) - config.train_subset,
                                   config.data_seed + 1)
        train_idx = train_idx[keep]
    train_x, train_y = images[train_idx], labels[train_idx]
    if config.train_subset > len(train_y):  # asked for more than there is: said, not silent
        warnings.warn(f"train-subset {config.train_subset:,}: only {len(train_y):,} training "
                      "images are left once validation is held out; it trains on those (give "
                      "a smaller --train-subset or --val-size to choose)", stacklevel=2)
    _warn_if_classes_left_out(f"train-subset {config.train_subset:,}" if config.train_subset
                              else f"val-size {config.val_size:,}", labels, train_y,
                              len(dataset.class_names))
    if config.shuffle_labels:  # teaching aid: the labels stop describing the images
        g = torch.Generator().manual_seed(torch_seed(config.data_seed + 7))
        train_y = train_y[torch.randperm(len(train_y), generator=g)]
    g = torch.Generator().manual_seed(torch_seed(config.data_seed + 11))
    eval_n = min(config.eval_train_size, len(train_y))
    eval_idx = torch.randperm(len(train_y), generator=g)[:eval_n]

    test_x, test_y = test_tensors(dataset, device)
    return Splits(
        train_x=as_images(train_x, device), train_y=train_y.to(device),
        val_x=as_images(val_x, device), val_y=val_y.to(device), test_x=test_x, test_y=test_y,
        eval_idx=eval_idx.to(device),
        mean=dataset.mean, std=dataset.std, class_names=list(dataset.class_names),
        dataset_name=dataset.name, val_source=config.val_from, published=dataset.published,
        # a known dataset's own files need none; other data given under its name does
        data_digest=("" if config.dataset in KNOWN_DATASETS and dataset.published
                     else dataset.digest),
    )


def as_images(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """N x H x W images as the models take them, N x 1 x H x W, on `device`."""
    return (x.unsqueeze(1) if x.dim() == 3 else x).to(device)


def test_tensors(dataset: Dataset, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The test images and labels as a run scores them: what `evaluate --split test` reads
    without splitting (and copying) the training set, which it does not use."""
    return as_images(dataset.test_images, device), dataset.test_labels.to(device)


def _warn_if_classes_left_out(why: str, labels: torch.Tensor, kept: torch.Tensor,
                              classes: int) -> None:
    """A training subset too small to hold every class (or a validation split that leaves too
    few images: `why` names the setting) trains without a word, and the model can never
    answer the classes it left out."""
    present = labels.bincount(minlength=classes) > 0
    left_out = int((present & (kept.bincount(minlength=classes) == 0)).sum())
    if left_out:
        warnings.warn(f"{why}: {left_out:,} of the {int(present.sum()):,} "
                      f"classes {'has' if left_out == 1 else 'have'} no training image left, "
                      f"and the model cannot learn {'it' if left_out == 1 else 'them'}; "
                      "give at least one image per class (a few hundred learn something)",
                      stacklevel=3)


def splits_floor(labels: torch.Tensor) -> int:
    """A subset must leave at least one image per class out (the split it is drawn with)."""
    return int(labels.max()) + 1 if len(labels) else 0


def to_input(x: torch.Tensor, config: TrainConfig, mean: float, std: float,
             augment: dict[str, float] | None = None) -> torch.Tensor:
    """uint8 images -> the float tensor the model sees (augmented first, then scaled)."""
    x = x.float().div_(255)
    if augment:
        x = augment_batch(x, augment)
    if config.input_scaling == "standardize":
        return x.sub_(mean).div_(std)
    if config.input_scaling == "raw":  # teaching aid: pixels in 0..255
        return x.mul_(255)
    return x
