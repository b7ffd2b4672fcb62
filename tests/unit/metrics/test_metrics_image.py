"""Image-level scores, metrics and thresholds against scikit-learn and brute-force loops (ties included)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score

from autopatch.errors import AutopatchError
from autopatch.metrics import decision_counts, image_metrics, image_scores, image_threshold

# few distinct values, so ties between normal and anomalous images are common
tied_scores = st.lists(st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0, 2.0]), min_size=2, max_size=30)


def brute_f1(scores: np.ndarray, labels: np.ndarray, threshold: float) -> float:
    flagged = scores >= threshold
    tp = int((flagged & labels).sum())
    return 2 * tp / (int(flagged.sum()) + int(labels.sum()))


@settings(max_examples=200, deadline=None)
@given(tied_scores, st.data())
def test_image_metrics_equal_sklearn(values, data):
    scores = np.array(values)
    labels = np.array(data.draw(st.lists(st.booleans(), min_size=len(values), max_size=len(values))))
    assume(0 < labels.sum() < labels.size)
    precision, recall, _ = precision_recall_curve(labels, scores)
    with np.errstate(invalid="ignore", divide="ignore"):
        f1_max = np.nanmax(2 * precision * recall / (precision + recall))
    got = image_metrics(scores, labels)
    assert got["image_auroc"] == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    assert got["image_ap"] == pytest.approx(average_precision_score(labels, scores), abs=1e-12)
    assert got["image_f1_max"] == pytest.approx(f1_max, abs=1e-12)


@settings(max_examples=200, deadline=None)
@given(tied_scores, st.data())
def test_f1_threshold_is_the_highest_with_the_best_f1(values, data):
    scores = np.array(values)
    labels = np.array(data.draw(st.lists(st.booleans(), min_size=len(values), max_size=len(values))))
    assume(labels.any())
    threshold, rule = image_threshold(scores, labels)
    f1 = {float(t): brute_f1(scores, labels, t) for t in np.unique(scores)}
    best = max(f1.values())
    assert threshold == max(t for t, value in f1.items() if value == best)
    assert rule == "image F1-max on validation"


@settings(max_examples=200, deadline=None)
@given(tied_scores, st.sampled_from([0.0, 0.01, 0.1, 0.2, 0.5, 0.9]))
def test_normal_fpr_threshold_is_the_lowest_that_flags_at_most_that_many_normals(values, fpr):
    scores = np.array(values)
    threshold, rule = image_threshold(scores, np.zeros(scores.size, dtype=bool), normal_fpr=fpr)
    allowed = math.floor(fpr * scores.size)
    assert (scores >= threshold).sum() <= allowed
    lower = [s for s in np.unique(scores) if s < threshold]  # any lower candidate flags too many
    assert not lower or (scores >= max(lower)).sum() > allowed
    assert rule == f"normal FPR {fpr}"


def test_image_score_is_the_maximum_of_each_map():
    maps = np.zeros((3, 4, 5), dtype=np.float32)
    maps[0, 1, 2], maps[1, 3, 4], maps[2] = 2.5, -1.0, -3.0
    maps[1, 0, 0] = 0.5
    assert image_scores(maps).tolist() == [2.5, 0.5, -3.0]


def test_decision_counts_by_hand():
    scores = np.array([0.1, 0.4, 0.4, 0.9, 0.2])
    labels = np.array([False, True, False, True, True])
    got = decision_counts(scores, labels, 0.4)  # flags 0.4, 0.4, 0.9: two of three anomalies, one normal of two
    assert got == pytest.approx(
        {"image_precision": 2 / 3, "image_recall": 2 / 3, "image_f1": 2 / 3, "image_fpr": 1 / 2}
    )
    assert decision_counts(scores, labels, 5.0)["image_precision"] == 0.0


@pytest.mark.parametrize(
    ("scores", "labels", "match"),
    [
        ([0.1, 0.2], [True, True], "need normal and anomalous"),
        ([0.1, np.nan], [True, False], "NaN"),
        ([0.1, 0.2], [True], "one score and one label"),
        ([0.1, 0.2], [2, 0], "0/1"),
    ],
)
def test_bad_image_inputs_are_one_line_errors(scores, labels, match):
    with pytest.raises(AutopatchError, match=match):
        image_metrics(np.array(scores), np.array(labels))


@pytest.mark.parametrize("fpr", [-0.1, 1.0, True, "0.01"])
def test_normal_fpr_outside_0_1_is_refused(fpr):
    with pytest.raises(AutopatchError, match="--normal-fpr"):
        image_threshold(np.array([0.1, 0.2]), np.array([False, False]), normal_fpr=fpr)
