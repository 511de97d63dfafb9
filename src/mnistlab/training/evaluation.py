"""Scoring a model: eval mode (dropout off, batch-norm running statistics), no augmentation."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .. import objectives
from ..config import TrainConfig
from ..data.tensors import to_input


@dataclass
class Evaluation:
    loss: float
    accuracy: float
    metric: float  # what the configured metric reports (differs only for binary-accuracy)
    predictions: torch.Tensor  # arg-max class per image, on the CPU
    mean_max_prob: float

    def per_class_accuracy(self, labels: torch.Tensor, class_names: list[str]
                           ) -> dict[str, float | None]:
        """Accuracy of each true class (None for a class with no image)."""
        matrix = confusion_matrix(labels, self.predictions, len(class_names))
        return per_class_accuracy(matrix, class_names)


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, config: TrainConfig,
             mean: float, std: float, num_classes: int, batch_size: int = 2000) -> Evaluation:
    """Eval mode (dropout off, batch-norm running stats), no augmentation."""
    if len(y) == 0:
        return Evaluation(math.nan, math.nan, math.nan, torch.empty(0, dtype=torch.long), math.nan)
    model.eval()
    loss_fn = objectives.make_loss(config, train=False)
    total_loss, correct, binary, max_prob = 0.0, 0, 0, 0.0
    predictions = []
    for start in range(0, len(y), batch_size):
        xb = to_input(x[start:start + batch_size], config, mean, std)
        yb = y[start:start + batch_size]
        logits = model(xb)
        total_loss += float(loss_fn(logits, yb)) * len(yb)
        correct += int(objectives.correct_count(logits, yb))
        binary += int(objectives.binary_correct_count(logits, yb))
        max_prob += float(logits.softmax(dim=1).max(dim=1).values.sum())
        predictions.append(logits.argmax(dim=1).cpu())
    n = len(y)
    return Evaluation(
        loss=total_loss / n, accuracy=correct / n,
        metric=objectives.metric_value(config, correct, binary, n, num_classes),
        predictions=torch.cat(predictions), mean_max_prob=max_prob / n)


def confusion_matrix(labels: torch.Tensor, predictions: torch.Tensor, k: int) -> list[list[int]]:
    """matrix[true][predicted] = count."""
    flat = labels.cpu().long() * k + predictions.cpu().long()
    return torch.bincount(flat, minlength=k * k).reshape(k, k).tolist()


def per_class_accuracy(matrix: list[list[int]], class_names: list[str]
                       ) -> dict[str, float | None]:
    return {name: (row[i] / sum(row) if sum(row) else None)
            for i, (name, row) in enumerate(zip(class_names, matrix))}
