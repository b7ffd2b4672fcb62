"""Pixel decision thresholds: the one with the best F1, and precision/recall/F1 at a chosen one.

A pixel is predicted anomalous when its score is >= the threshold, the same convention as the curves.
"""

from __future__ import annotations

import math

import numpy as np

from autopatch.errors import AutopatchError
from autopatch.metrics.curves import ThresholdCurve
from autopatch.metrics.inputs import checked_maps


def _checked_with_anomalies(scores: object, masks: object) -> tuple[np.ndarray, np.ndarray]:
    scores, masks = checked_maps(scores, masks)
    if not masks.any():
        raise AutopatchError(
            f"masks of shape {masks.shape} mark no anomalous pixel; recall and F1 need at least one defect pixel"
        )
    return scores, masks


def best_f1_threshold(scores: object, masks: object) -> tuple[float, float, float, float]:
    """(threshold, f1, precision, recall) at the distinct score with the highest pixel F1.

    Ties in F1 go to the highest threshold (fewest pixels flagged).
    """
    scores, masks = _checked_with_anomalies(scores, masks)
    curve = ThresholdCurve.from_scores(scores, masks)
    true_positive = curve.cumulative()
    anomalous = true_positive[-1]
    f1 = 2.0 * true_positive / (curve.predicted + anomalous)
    best = int(np.argmax(f1))
    return (
        float(curve.thresholds[best]),
        float(f1[best]),
        float(true_positive[best] / curve.predicted[best]),
        float(true_positive[best] / anomalous),
    )


def precision_recall_f1(scores: object, masks: object, threshold: float) -> tuple[float, float, float]:
    """(precision, recall, f1) of flagging pixels with score >= threshold; precision is 0 if none is flagged."""
    scores, masks = _checked_with_anomalies(scores, masks)
    if not math.isfinite(float(threshold)):
        raise AutopatchError(f"threshold is {threshold}; pass a finite score threshold")
    predicted = scores >= float(threshold)
    flagged = int(np.count_nonzero(predicted))
    true_positive = int(np.count_nonzero(predicted & masks))
    precision = true_positive / flagged if flagged else 0.0
    recall = true_positive / int(np.count_nonzero(masks))
    f1 = 2.0 * precision * recall / (precision + recall) if true_positive else 0.0
    return precision, recall, f1
