"""The classification report read off a confusion matrix: figures worked out by hand, the
0/0 cases, and agreement with scikit-learn on random matrices."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mnistlab.training.evaluation import (
    ClassScores,
    classification_report,
    confusion_matrix,
    per_class_accuracy,
)

# matrix[true][predicted]; class c is never predicted (its precision is 0/0)
MATRIX = [[3, 1, 0],
          [1, 2, 0],
          [2, 1, 0]]


def close(got: ClassScores, precision: float, recall: float, f1: float, support: int) -> None:
    assert (got.precision, got.recall, got.f1) == pytest.approx((precision, recall, f1))
    assert got.support == support


def test_figures_match_a_hand_computed_report():
    report = classification_report(MATRIX, ["a", "b", "c"])
    # a: predicted 6 times, right 3; b: predicted 4 times, right 2
    close(report.classes["a"], 3 / 6, 3 / 4, 0.6, 4)
    close(report.classes["b"], 2 / 4, 2 / 3, 4 / 7, 3)
    close(report.classes["c"], 0.0, 0.0, 0.0, 3)  # never predicted: precision 0, not NaN
    assert report.accuracy == pytest.approx(5 / 10)
    close(report.macro_avg, 1 / 3, 17 / 36, 41 / 105, 10)
    close(report.weighted_avg, 0.35, 0.5, (4 * 0.6 + 3 * 4 / 7) / 10, 10)


def test_recall_is_the_per_class_accuracy():
    report = classification_report(MATRIX, ["a", "b", "c"])
    accuracy = per_class_accuracy(MATRIX, ["a", "b", "c"])
    assert {name: s.recall for name, s in report.classes.items()} == accuracy


def test_a_class_with_no_image_nor_prediction_weighs_nothing_in_either_average():
    matrix = [[2, 0, 0], [1, 1, 0], [0, 0, 0]]
    report = classification_report(matrix, ["a", "b", "c"])
    close(report.classes["c"], 0.0, 0.0, 0.0, 0)
    assert per_class_accuracy(matrix, ["a", "b", "c"])["c"] is None  # the per-class view: none
    # as scikit-learn averages the labels present: a split that holds a few of the classes
    # is not marked down for the others
    close(report.macro_avg, (2 / 3 + 1) / 2, (1 + 0.5) / 2, (0.8 + 2 / 3) / 2, 4)
    close(report.weighted_avg, (2 * 2 / 3 + 2 * 1) / 4, (2 * 1 + 2 * 0.5) / 4,
          (2 * 0.8 + 2 * 2 / 3) / 4, 4)


def test_report_of_nothing_is_zeros_not_an_error():
    report = classification_report([[0, 0], [0, 0]], ["a", "b"])
    assert report.accuracy == 0.0
    close(report.weighted_avg, 0.0, 0.0, 0.0, 0)


def test_report_as_json_keeps_every_figure():
    data = classification_report(MATRIX, ["a", "b", "c"]).to_dict()
    assert set(data) == {"classes", "macro_avg", "weighted_avg", "accuracy"}
    assert data["classes"]["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 3}


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 5).flatmap(lambda k: st.lists(
    st.lists(st.integers(0, 9), min_size=k, max_size=k), min_size=k, max_size=k)))
def test_agrees_with_scikit_learn(matrix):
    metrics = pytest.importorskip("sklearn.metrics")
    k = len(matrix)
    labels = [i for i in range(k) for j in range(k) for _ in range(matrix[i][j])]
    predicted = [j for i in range(k) for j in range(k) for _ in range(matrix[i][j])]
    if not labels:
        return
    assert confusion_matrix(torch.tensor(labels), torch.tensor(predicted), k) == matrix
    names = [f"c{i}" for i in range(k)]
    ours = classification_report(matrix, names)
    theirs = metrics.classification_report(labels, predicted, labels=list(range(k)),
                                           target_names=names, output_dict=True,
                                           zero_division=0)
    for name, scores in [*ours.classes.items(), ("weighted avg", ours.weighted_avg)]:
        expected = theirs[name]
        close(scores, expected["precision"], expected["recall"], expected["f1-score"],
              int(expected["support"]))
    # the macro average over the labels present, scikit-learn's own choice without labels=
    macro = metrics.precision_recall_fscore_support(labels, predicted, average="macro",
                                                    zero_division=0)
    close(ours.macro_avg, *macro[:3], len(labels))
    # scikit-learn leaves "accuracy" out when some class is never a label
    if "accuracy" in theirs:
        assert ours.accuracy == pytest.approx(theirs["accuracy"])
