"""Best-F1 threshold and precision/recall/F1 at a threshold, against scikit-learn at every distinct score."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.metrics import f1_score, precision_score, recall_score

from autopatch.errors import AutopatchError
from autopatch.metrics import best_f1_threshold, precision_recall_f1


def sklearn_at(scores: np.ndarray, masks: np.ndarray, threshold: float) -> tuple[float, float, float]:
    y_true, y_pred = masks.ravel(), scores.ravel() >= threshold
    return (
        precision_score(y_true, y_pred, zero_division=0),
        recall_score(y_true, y_pred),
        f1_score(y_true, y_pred, zero_division=0),
    )


def counted_f1(scores: np.ndarray, masks: np.ndarray, threshold: float) -> float:
    """F1 = 2 TP / (flagged + anomalous), counted directly (sklearn per threshold is too slow here)."""
    flagged = scores >= threshold
    return 2.0 * np.count_nonzero(flagged & masks) / (np.count_nonzero(flagged) + np.count_nonzero(masks))


@st.composite
def maps_with_defects(draw):
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, 6)), draw(st.integers(1, 6)))
    scores = draw(arrays(np.float64, shape, elements=st.integers(0, 5).map(float) | st.floats(-10, 10)))
    masks = draw(arrays(np.bool_, shape))
    assume(masks.any())
    return scores, masks


@settings(max_examples=50, deadline=None)
@given(maps_with_defects())
def test_best_f1_threshold_is_the_best_distinct_score(case):
    scores, masks = case
    threshold, f1, precision, recall = best_f1_threshold(scores, masks)
    per_threshold = {float(t): counted_f1(scores, masks, t) for t in np.unique(scores)}
    best = max(per_threshold.values())
    assert f1 == pytest.approx(best, rel=1e-12)
    # Ties go to the highest threshold.
    assert threshold == max(t for t, value in per_threshold.items() if value == pytest.approx(best, rel=1e-12))
    assert (precision, recall, f1) == pytest.approx(sklearn_at(scores, masks, threshold), rel=1e-12)


@settings(max_examples=50, deadline=None)
@given(maps_with_defects(), st.floats(-12, 12))
def test_precision_recall_f1_matches_sklearn(case, threshold):
    scores, masks = case
    assert precision_recall_f1(scores, masks, threshold) == pytest.approx(
        sklearn_at(scores, masks, threshold), rel=1e-12
    )


def test_threshold_at_a_score_flags_that_score():
    scores = np.array([[[0.2, 0.8], [0.5, 0.5]]], dtype=np.float32)
    masks = np.array([[[0, 1], [1, 0]]], dtype=bool)
    threshold, f1, precision, recall = best_f1_threshold(scores, masks)
    # t = 0.8: P 1, R 1/2, F1 2/3; t = 0.5: P 2/3, R 1, F1 4/5; t = 0.2: P 1/2, R 1, F1 2/3.
    assert threshold == pytest.approx(0.5)
    assert (f1, precision, recall) == pytest.approx((4 / 5, 2 / 3, 1.0))
    assert precision_recall_f1(scores, masks, threshold) == pytest.approx((2 / 3, 1.0, 4 / 5))


def test_threshold_functions_need_a_defect_pixel_and_a_finite_threshold():
    scores = np.zeros((1, 2, 2))
    with pytest.raises(AutopatchError, match="no anomalous pixel"):
        best_f1_threshold(scores, np.zeros((1, 2, 2), dtype=bool))
    with pytest.raises(AutopatchError, match="finite"):
        precision_recall_f1(scores, np.ones((1, 2, 2), dtype=bool), float("nan"))
