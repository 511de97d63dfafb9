"""The end of a run, for each member alike: score validation (and the test set, for a final
model), write the summary with the doctor's diagnoses, and the run folder."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .. import doctor, runs
from ..config import TrainConfig
from ..data.tensors import Splits
from ..device import resolve_precision, to_fast_layout
from ..ensemble import Ensemble
from ..models import count_parameters
from ..records import EpochRecord, RunResult, RunSummary, versions_text
from .engine import Run
from .evaluation import (
    Evaluation,
    confusion_matrix,
    evaluate,
    per_class_accuracy,
    tta_view_count,
)


def make_summary(config: TrainConfig, splits: Splits, model: nn.Module,
                 history: list[EpochRecord], *, status: str, seconds: float,
                 test: Evaluation | None, val: Evaluation | None, trace: list[list[float]],
                 device: torch.device, versions: list[str]) -> RunSummary:
    # the epoch whose weights are scored: an early-stopped run goes back to its best (the
    # first of the highest validation accuracy, as EarlyStopping keeps it); its train figures
    # were the last epoch's, beside the best epoch's val and test
    last = (max(history, key=lambda r: r.val_accuracy) if status == "early-stopped" else
            history[-1]) if history else None
    k = splits.num_classes
    return RunSummary(
        status=status, dataset=splits.dataset_name, model=config.model,
        variant=config.variant if config.model == "lenet5" else None,
        parameters=count_parameters(model), epochs=len(history), epochs_planned=config.epochs,
        seconds=round(seconds, 3), metric=config.metric,
        train_accuracy_eval=last.train_accuracy_eval if last else None,
        train_accuracy_running=last.train_accuracy_running if last else None,
        train_loss=last.train_loss if last else None,
        # no validation set (--val-size 0): not measured, not NaN
        val_accuracy=_number(val.accuracy if val else (last.val_accuracy if last else None)),
        val_loss=_number(val.loss if val else (last.val_loss if last else None)),
        val_metric=_number(val.metric if val else (last.val_metric if last else None)),
        val_source=splits.val_source,
        **_test_fields(test, splits),
        class_names=list(splits.class_names), train_size=len(splits.train_y),
        val_size=len(splits.val_y), device=str(device), torch=torch.__version__,
        code_version=versions_text(versions),
        val_label_counts=torch.bincount(splits.val_y.cpu(), minlength=k).tolist(),
        val_pred_counts=(torch.bincount(val.predictions, minlength=k).tolist() if val
                         else None),
        val_mean_max_prob=_number(val.mean_max_prob) if val else None,
        loss_trace=trace,
        tta_views=tta_view_count(config, splits.image_shape) if config.tta else None,
        precision=(resolve_precision(config.precision, device) if config.precision != "fp32"
                   else None),
        best_epoch=last.epoch if status == "early-stopped" and last else None)


def _test_fields(test: Evaluation | None, splits: Splits) -> dict[str, Any]:
    """A summary's test scores from `test` (None: not scored, or a dataset without test
    images: not measured either)."""
    if test is None:
        return dict(test_accuracy=None, test_loss=None, per_class_test_accuracy=None,
                    test_confusion=None)
    matrix = confusion_matrix(splits.test_y, test.predictions, splits.num_classes)
    return dict(test_accuracy=_number(test.accuracy), test_loss=_number(test.loss),
                per_class_test_accuracy=per_class_accuracy(matrix, splits.class_names),
                test_confusion=matrix)


def _members(model: nn.Module, config: TrainConfig, test: Evaluation | None,
             val: Evaluation | None) -> list[dict[str, Any]] | None:
    """An ensemble's members, each scored alone like the ensemble (with its TTA, if any), as
    the ensemble's own scoring read them off."""
    if not isinstance(model, Ensemble):
        return None

    def accuracy(scores: Evaluation | None, index: int) -> float | None:
        values = scores.member_accuracies if scores is not None else None
        return _number(values[index]) if values else None

    return [{"seed": config.seed + index, "val_accuracy": accuracy(val, index),
             "test_accuracy": accuracy(test, index)} for index in range(model.size)]


def _final_scoring(config: TrainConfig, splits: Splits) -> dict[str, Any]:
    """evaluate()'s settings for a run's final scores (with its TTA, which epochs go without)."""
    return dict(config=config, mean=splits.mean, std=splits.std, num_classes=splits.num_classes,
                tta=config.tta)


def _number(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else value


def finish_member(run: Run, member: int, model: nn.Module, *, evaluate_test: bool,
                  out: Path | None, write_plots: bool, lang: str = "en") -> RunResult:
    """Score member `member` (its trained `model`), summarise, diagnose, write its folder (its
    figures' words in `lang`)."""
    config, splits = run.learner.configs[member], run.splits
    status = run.statuses[member]
    history = run.histories[member]
    ok = status != "diverged"  # a diverged model has nothing worth scoring
    # the final scores, with test-time augmentation when asked for (the epochs' are without)
    scored = _final_scoring(config, splits)
    test = evaluate(model, splits.test_x, splits.test_y, **scored) if ok and evaluate_test \
        else None
    val = evaluate(model, splits.val_x, splits.val_y, **scored) if ok else None
    device = next(model.parameters()).device
    summary = make_summary(config, splits, model, history, status=status,
                           seconds=run.seconds / run.size, test=test, val=val,
                           trace=run.traces[member], device=device, versions=run.code_versions)
    # an ensemble's members scored alone, before the doctor reads them
    summary = summary.replace(members=_members(model, config, test, val) if ok else None)
    findings = doctor.merge(run.findings[member],
                            doctor.diagnose(config, history, summary.observation()))
    summary = summary.replace(diagnoses=tuple(findings), partial_epoch=run.partial[member],
                              cohort_size=run.size if run.size > 1 else None,
                              cuda_graphs=run.learner.graphed.replayed())
    result = RunResult(config=config, summary=summary, history=history, out=out, model=model)
    if out is not None:
        runs.write_run(out, result, splits, plots=write_plots, lang=lang)
    for hook in run.hooks:
        hook.on_member_finished(run, member, result)
    return result


def score_on_test(source: Path, out: Path, config: TrainConfig, splits: Splits,
                  lang: str = "en") -> RunResult:
    """The finished run of `config` in `source`, trained without the test set, scored on it as
    its training would have scored it at its end (same weights, same views) and written with
    its figures (their words in `lang`) into `out`: a study's final model whose settings a
    variant trained already.
    Its history, validation scores, diagnoses and training time are that run's."""
    kept = runs.load_result(source, config)
    device = splits.test_x.device
    model = to_fast_layout(kept.model, device)  # as training holds it, so scores as training's
    test = evaluate(model, splits.test_x, splits.test_y, **_final_scoring(config, splits))
    members = kept.summary.members
    if members is not None and test.member_accuracies:
        members = [{**m, "test_accuracy": _number(a)}
                   for m, a in zip(members, test.member_accuracies)]
    summary = kept.summary.replace(**_test_fields(test, splits), members=members,
                                   scored_from=source.name)
    result = RunResult(config=config, summary=summary, history=kept.history, out=out,
                       model=model)
    runs.write_run(out, result, splits, plots=True, lang=lang)
    return result
