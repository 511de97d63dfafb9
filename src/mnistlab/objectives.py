"""Losses and metrics, including the wrong ones that exist to be recognised.

`ce` (softmax cross-entropy on logits) is right for one-label classification. Two teaching aids
reproduce classic mistakes on purpose:
- `bce`: a softmax output scored with binary cross-entropy against one-hot targets, as Keras does
  with `loss="binary_crossentropy"`; with `metric="binary-accuracy"` each of the K outputs
  counts as a separate yes/no answer, so a model that predicts 1/K everywhere scores 1 - 1/K.
- `ce-on-softmax`: softmax applied twice (probabilities fed to a loss that expects logits).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from .config import TrainConfig

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
_EPS = 1e-7  # Keras clips probabilities to [eps, 1 - eps] before the binary log loss


def make_loss(config: TrainConfig, *, train: bool = True) -> LossFn:
    """The loss the run optimises. Label smoothing applies during training only."""
    smoothing = config.label_smoothing if train else 0.0
    if config.loss == "bce":
        def bce(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
            # in float32 outside autocast: CUDA's autocast refuses binary_cross_entropy (its
            # log of bf16 probabilities is unsafe), under bf16 every step failed there
            with torch.autocast(logits.device.type, enabled=False):
                probs = logits.float().softmax(dim=1).clamp(_EPS, 1 - _EPS)
                target = F.one_hot(labels, logits.shape[1]).to(probs.dtype)
                return F.binary_cross_entropy(probs, target)
        return bce
    if config.loss == "ce-on-softmax":
        def ce_on_softmax(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
            return F.cross_entropy(logits.softmax(dim=1), labels, label_smoothing=smoothing)
        return ce_on_softmax

    def ce(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, labels, label_smoothing=smoothing)
    return ce


def correct_count(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Categorical accuracy numerator: the arg-max is the label."""
    return (logits.argmax(dim=1) == labels).sum()


def binary_correct_count(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-output binary accuracy numerator, divided later by N*K: Keras' 'accuracy' under BCE."""
    predicted = logits.softmax(dim=1) > 0.5
    target = F.one_hot(labels, logits.shape[1]).bool()
    return (predicted == target).sum()


def counts_binary(config: TrainConfig) -> bool:
    """Whether the run reports per-output binary accuracy, so needs binary_correct_count (a
    softmax more per batch; a teaching aid's metric)."""
    return config.metric == "binary-accuracy"


def metric_value(config: TrainConfig, correct: float, binary_correct: float, n: int,
                 num_classes: int) -> float:
    """The figure the configured metric reports (what a Keras user would have seen)."""
    if counts_binary(config):
        return binary_correct / max(1, n * num_classes)
    return correct / max(1, n)
