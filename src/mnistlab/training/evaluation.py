"""Scoring a model: eval mode (dropout off, batch-norm running statistics), no augmentation;
or, with --tta at the end of a run, the softmax averaged over a few exact copies of each image
(shifted by a pixel or two, and mirrored where the training flipped)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .. import objectives
from ..config import TrainConfig
from ..data.tensors import to_input
from ..ensemble import Ensemble, average_logits
from ..models import EVAL_CHUNK


@dataclass
class Evaluation:
    loss: float
    accuracy: float
    metric: float  # what the configured metric reports (differs only for binary-accuracy)
    predictions: torch.Tensor  # arg-max class per image, on the CPU
    mean_max_prob: float
    # an ensemble's: the accuracy of each member scored alone, from the same pass
    member_accuracies: list[float] | None = None

    def confusion(self, labels: torch.Tensor, num_classes: int) -> list[list[int]]:
        """matrix[true][predicted] = count, for the images these predictions were made on."""
        return confusion_matrix(labels, self.predictions, num_classes)


# Test-time augmentation: the image, and copies moved up, down, left and right by 1 pixel
# (background coming in), and by 2 where training moved images that far (cropped from a padding
# of 2 or more, or shifted by 2 pixels or more); each mirrored too where training mirrored. One
# pixel is well inside what crop and shift train for, and MNIST's digits are centred by mass
# only to about a pixel anyway. fashion-best (crop=2, flip) is why the moves reach 2 and every
# view is mirrored: its three seeds' models scored 94.90% on validation and 93.87% on test with
# 1-pixel moves and one mirror (6 views), 95.02% and 93.97% with these 18. mnist-best
# (shift=0.1: up to 2.8 pixels) is why shift counts: over its five seeds, 2-pixel moves took
# validation up by 1.4 and test by 2.4 digits in 10,000 on average, four seeds up and one down
# on each (BENCHMARKS.md). The views stop at 2 pixels: each farther move costs 4 more views
# (8 mirrored), and none was measured to repay it.
TTA_SHIFT = 1
TTA_MAX_SHIFT = 2


def tta_views(images: torch.Tensor, *, shifts: tuple[int, ...] = (TTA_SHIFT,),
              flip: bool = False, fill: float = 0.0) -> list[torch.Tensor]:
    """`images` (N, C, H, W) and its copies moved by each of `shifts` pixels (4 per shift),
    then, with `flip`, the left-right mirror of each of those; exact pixel moves, `fill`
    brought in (0: a black pixel; the ONNX graph, whose input is scaled, brings in a black
    pixel's scaled value)."""
    views = [images]
    for s in shifts:
        views += [moved(images, dy, dx, fill) for dy, dx in ((-s, 0), (s, 0), (0, -s), (0, s))]
    if flip:
        views += [v.flip(3) for v in views]
    return views


def moved(images: torch.Tensor, dy: int, dx: int, fill: float = 0.0) -> torch.Tensor:
    """`images` (N, C, H, W) seen through a window moved by (dy, dx) pixels: the content moves
    the other way, `fill` comes in at the edge."""
    s, (h, w) = max(abs(dy), abs(dx)), images.shape[2:]
    return F.pad(images, (s, s, s, s), value=fill)[:, :, s + dy:s + dy + h, s + dx:s + dx + w]


def tta_shifts(config: TrainConfig, side: int) -> tuple[int, ...]:
    """The moves TTA views `side`-pixel images at: 1 pixel, and as far as training moved
    them (crop's padding, or shift's fraction of the side, in whole pixels), at most
    TTA_MAX_SHIFT."""
    augmentation = config.augmentation
    trained = max(int(augmentation.get("crop", 0)), int(augmentation.get("shift", 0.0) * side))
    reach = min(max(trained, TTA_SHIFT), TTA_MAX_SHIFT)
    return tuple(range(TTA_SHIFT, reach + 1))


def tta_flips(config: TrainConfig) -> bool:
    """TTA mirrors only what training mirrored (never digits: config refuses flip for them)."""
    return bool(config.augmentation.get("flip"))


def config_views(images: torch.Tensor, config: TrainConfig, fill: float = 0.0
                 ) -> list[torch.Tensor]:
    """The TTA views of `images` (N, C, H, W) for a run trained with `config`."""
    return tta_views(images, shifts=tta_shifts(config, min(images.shape[2:])),
                     flip=tta_flips(config), fill=fill)


def view_average(logits: list[torch.Tensor]) -> torch.Tensor:
    """The logits of several views of the same images -> the log of their softmax averaged
    (a valid logit: its softmax is that average)."""
    return (sum(v.softmax(dim=-1) for v in logits) / len(logits)).log()


def tta_view_count(config: TrainConfig, image_shape: tuple[int, ...]) -> int:
    """How many views TTA scores of each image of `image_shape` (C, H, W) for a run trained
    with `config`."""
    return len(config_views(torch.zeros(1, *image_shape), config))


def scored_logits(model: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor,
            config: TrainConfig, mean: float, std: float, tta: bool) -> torch.Tensor:
    """The model's logits for uint8 `images` (classes last: (B, K), or (N, B, K) for N
    members); with `tta`, the log of the softmax averaged over the views (a valid logit: its
    softmax is that average)."""
    if not tta:
        return model(to_input(images, config, mean, std))
    return view_average([model(to_input(v, config, mean, std))
                         for v in config_views(images, config)])


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, config: TrainConfig,
             mean: float, std: float, num_classes: int, batch_size: int = EVAL_CHUNK, *,
             tta: bool = False) -> Evaluation:
    """Eval mode (dropout off, batch-norm running stats), no augmentation; with `tta`, the
    softmax averaged over tta_views of each image. An ensemble's members are scored alone from
    the same pass (the ensemble's softmax is the mean of theirs, view by view alike), not by
    another pass per member or per set."""
    if len(y) == 0:
        return Evaluation(math.nan, math.nan, math.nan, torch.empty(0, dtype=torch.long), math.nan)
    model.eval()
    loss_fn = objectives.make_loss(config, train=False)
    total_loss, correct, binary, max_prob = 0.0, 0, 0, 0.0
    predictions, member_hits = [], None
    for start in range(0, len(y), batch_size):
        xb, yb = x[start:start + batch_size], y[start:start + batch_size]
        if isinstance(model, Ensemble):
            members = scored_logits(model.member_logits, xb, config, mean, std, tta)
            logits = average_logits(members)
            hits = (members.argmax(dim=-1) == yb).sum(dim=1)
            member_hits = hits if member_hits is None else member_hits + hits
        else:
            logits = scored_logits(model, xb, config, mean, std, tta)
        total_loss += float(loss_fn(logits, yb)) * len(yb)
        correct += int(objectives.correct_count(logits, yb))
        if objectives.counts_binary(config):  # a softmax more per chunk, read only there
            binary += int(objectives.binary_correct_count(logits, yb))
        max_prob += float(logits.softmax(dim=1).max(dim=1).values.sum())
        predictions.append(logits.argmax(dim=1).cpu())
    n = len(y)
    return Evaluation(
        loss=total_loss / n, accuracy=correct / n,
        metric=objectives.metric_value(config, correct, binary, n, num_classes),
        predictions=torch.cat(predictions), mean_max_prob=max_prob / n,
        member_accuracies=(None if member_hits is None
                           else (member_hits.cpu().double() / n).tolist()))


def confusion_matrix(labels: torch.Tensor, predictions: torch.Tensor, k: int) -> list[list[int]]:
    """matrix[true][predicted] = count."""
    flat = labels.cpu().long() * k + predictions.cpu().long()
    return torch.bincount(flat, minlength=k * k).reshape(k, k).tolist()


def per_class_accuracy(matrix: list[list[int]], class_names: list[str]
                       ) -> dict[str, float | None]:
    return {name: (row[i] / sum(row) if sum(row) else None)
            for i, (name, row) in enumerate(zip(class_names, matrix))}


@dataclass(frozen=True)
class ClassScores:
    precision: float
    recall: float
    f1: float
    support: int  # images of the class (for an average: images counted)


@dataclass(frozen=True)
class ClassificationReport:
    """Precision, recall, F1 and support of each class, their macro (every class present alike:
    one with neither an image nor a prediction is left out) and weighted (by support)
    averages, and accuracy: the figures of scikit-learn's classification_report, read off a
    confusion matrix."""

    classes: dict[str, ClassScores]
    macro_avg: ClassScores
    weighted_avg: ClassScores
    accuracy: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# A ratio whose denominator is 0 is reported as 0, as scikit-learn does: the precision of a class
# never predicted, the recall of a class with no image, the F1 of a class with both at 0. The
# averages then count such a class as 0 (a never-predicted class lowers the macro precision).
# A class with neither an image nor a prediction here (a split that holds a few of the classes)
# is left out of the macro average, as scikit-learn leaves out labels absent from both.
UNDEFINED = 0.0


def classification_report(matrix: list[list[int]], class_names: list[str]
                          ) -> ClassificationReport:
    """The report of a confusion matrix (matrix[true][predicted] = count); recall is the
    per-class accuracy."""
    k = len(class_names)
    recalls = list(per_class_accuracy(matrix, class_names).values())
    predicted = [sum(row[j] for row in matrix) for j in range(k)]
    scores = []
    for i in range(k):
        precision = matrix[i][i] / predicted[i] if predicted[i] else UNDEFINED
        recall = UNDEFINED if recalls[i] is None else recalls[i]
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else UNDEFINED
        scores.append(ClassScores(precision, recall, f1, sum(matrix[i])))
    total = sum(s.support for s in scores)
    return ClassificationReport(
        classes=dict(zip(class_names, scores)),
        macro_avg=_average(scores, [int(s.support > 0 or predicted[i] > 0)
                                    for i, s in enumerate(scores)], total),
        weighted_avg=_average(scores, [s.support for s in scores], total),
        accuracy=sum(matrix[i][i] for i in range(k)) / total if total else UNDEFINED)


def _average(scores: list[ClassScores], weights: list[int], support: int) -> ClassScores:
    weight = sum(weights)

    def mean(values: list[float]) -> float:
        return sum(w * v for w, v in zip(weights, values)) / weight if weight else UNDEFINED

    return ClassScores(mean([s.precision for s in scores]), mean([s.recall for s in scores]),
                       mean([s.f1 for s in scores]), support)
