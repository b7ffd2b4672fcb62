"""One sort of all pixel scores, shared by every ranking metric, and the curve arithmetic on top of it.

All five segmentation metrics are functions of cumulative sums taken at the distinct score values
(thresholds), highest first: how many pixels, anomalous pixels, rwAP weight and PRO overlap lie at or above
each threshold. So the pixel scores are sorted once (values only: np.sort is an order of magnitude faster
than an argsort of all pixels), and only the anomalous pixels (a few percent) are placed on that sorted
array by binary search. Equal scores form one threshold, so ties are handled as scikit-learn and MVTec do.

The curve keeps only the thresholds where it bends: those where some anomalous pixel enters, plus the one
just before each (the end of a run where only normal pixels enter) and the lowest one. Between kept points
the ROC and PRO curves are straight lines and AP gains no recall, so every metric is unchanged while the
arrays shrink from millions of distinct scores to about twice the number of anomalous ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ThresholdCurve:
    """Pixels counted at the kept distinct scores, highest threshold first (point j ~ 'score >= thresholds[j]').

    thresholds: kept distinct scores, descending.
    predicted: int64, number of pixels with score >= thresholds[j].
    anomalous_point: int64 per anomalous pixel (row-major order of the masks), the point j of its own score.
    """

    thresholds: np.ndarray
    predicted: np.ndarray
    anomalous_point: np.ndarray

    @classmethod
    def from_scores(cls, scores: np.ndarray, masks: np.ndarray) -> ThresholdCurve:
        """Sort all scores once and place each anomalous pixel's score on the sorted array."""
        flat = scores.ravel()
        ascending = np.sort(flat)
        anomalous_scores = flat[masks.ravel()]
        # Searching the anomalous scores in increasing order keeps the binary searches cache-friendly.
        order = np.argsort(anomalous_scores)
        searched = anomalous_scores[order]
        # Index of the first sorted pixel equal to each anomalous score: n - index pixels are >= that score.
        first_equal = np.empty_like(order)
        first_equal[order] = np.searchsorted(ascending, searched, side="left")
        # The next higher distinct score starts where the run of equal scores ends: the point just before.
        run_end = np.searchsorted(ascending, searched, side="right")
        candidates = np.sort(np.concatenate((first_equal, run_end[run_end < flat.size], [0])))[::-1]
        kept = candidates[np.diff(candidates, prepend=-1) != 0]
        # kept is descending in sorted position, i.e. ascending in 'pixels at or above the threshold'.
        point = kept.size - 1 - np.searchsorted(kept[::-1], first_equal)
        return cls(thresholds=ascending[kept], predicted=flat.size - kept, anomalous_point=point)

    def cumulative(self, weights: np.ndarray | None = None) -> np.ndarray:
        """float64 sum of the anomalous pixels' weights (1 each when None) with score >= each threshold."""
        per_point = np.bincount(self.anomalous_point, weights=weights, minlength=self.thresholds.size)
        return np.cumsum(per_point, dtype=np.float64)


def average_precision(true_positive: np.ndarray, false_positive: np.ndarray) -> float:
    """AP = sum_j (R_j - R_{j-1}) * P_j over the thresholds (step rule, no interpolation), R_0 = 0.

    true_positive may be weighted (rwAP); both arrays are cumulative and end at the totals.
    """
    precision = true_positive / (true_positive + false_positive)
    recall = true_positive / true_positive[-1]
    recall_gain = np.diff(recall, prepend=0.0)
    return float(np.dot(recall_gain, precision))


def partial_area(x: np.ndarray, y: np.ndarray, x_max: float) -> float:
    """Trapezoid area under the curve (0, 0), (x_j, y_j)... from 0 to x_max, x non-decreasing.

    The curve is cut at x_max by linear interpolation between the last point with x <= x_max and the first
    with x > x_max, as MVTec's reference `trapezoid` and scikit-learn's partial ROC AUC both do.
    """
    x = np.concatenate(([0.0], x))
    y = np.concatenate(([0.0], y))
    inside = int(np.searchsorted(x, x_max, side="right"))
    area = float(np.sum((x[1:inside] - x[: inside - 1]) * (y[1:inside] + y[: inside - 1])) / 2.0)
    if inside < x.size:
        left_x, left_y = x[inside - 1], y[inside - 1]
        y_at_max = left_y + (y[inside] - left_y) * (x_max - left_x) / (x[inside] - left_x)
        area += (x_max - left_x) * (left_y + y_at_max) / 2.0
    return area


def roc_auc(false_positive_rate: np.ndarray, true_positive_rate: np.ndarray, max_fpr: float = 1.0) -> float:
    """ROC AUC; for max_fpr < 1 the partial AUC with McClish standardisation (scikit-learn's max_fpr)."""
    area = partial_area(false_positive_rate, true_positive_rate, max_fpr)
    if max_fpr >= 1.0:
        return area
    chance_area = 0.5 * max_fpr**2
    return 0.5 * (1.0 + (area - chance_area) / (max_fpr - chance_area))
