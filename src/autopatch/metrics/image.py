"""Image-level anomaly scores, metrics and the OK/NG decision threshold.

An image's anomaly score is the maximum of its (smoothed) anomaly map, PatchCore's convention. An image is
NG (anomalous) when its score is >= the image threshold, the same convention as the pixel curves, which the
image metrics share (`ThresholdCurve` over one score per image).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from autopatch.errors import AutopatchError
from autopatch.metrics.curves import ThresholdCurve, average_precision, roc_auc
from autopatch.metrics.inputs import _as_array

IMAGE_METRIC_NAMES = ("image_auroc", "image_ap", "image_f1_max")
DEFAULT_NORMAL_FPR = 0.01
"""Without validation anomalies, the image threshold lets at most this fraction of holdout normals be NG."""


def image_scores(maps: object) -> np.ndarray:
    """float64 [N]: the maximum of each [H, W] anomaly map of an [N, H, W] stack."""
    maps = _as_array(maps, "anomaly maps")
    if maps.ndim != 3 or maps.shape[0] == 0:
        raise AutopatchError(f"anomaly maps have shape {maps.shape}; pass one map per image as an [N, H, W] array")
    return maps.reshape(maps.shape[0], -1).max(axis=1).astype(np.float64)


def _checked(scores: object, labels: Sequence[bool] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scores = _as_array(scores, "image scores").astype(np.float64, copy=False)
    labels = _as_array(labels, "image labels")
    if scores.ndim != 1 or labels.shape != scores.shape:
        raise AutopatchError(
            f"image scores have shape {scores.shape} and labels {labels.shape}; pass one score and one label per image"
        )
    if not np.isfinite(scores).all():
        raise AutopatchError("image scores contain NaN or infinite values; replace them before computing metrics")
    if labels.dtype != np.bool_:
        if not np.isin(labels, (0, 1)).all():
            raise AutopatchError("image labels must be booleans or 0/1 (True = anomalous image)")
        labels = labels.astype(np.bool_)
    return scores, labels


def _checked_both_classes(scores: object, labels: Sequence[bool] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scores, labels = _checked(scores, labels)
    anomalous = int(labels.sum())
    if anomalous in (0, labels.size):
        raise AutopatchError(
            f"{labels.size} images, {anomalous} of them anomalous; image metrics need normal and anomalous images"
        )
    return scores, labels


def image_metrics(scores: object, labels: Sequence[bool] | np.ndarray) -> dict[str, float]:
    """Image AUROC, AP (step rule, as scikit-learn) and the best F1 over all thresholds of per-image scores.

    scores: float [N] (e.g. `image_scores(maps)`); labels: bool [N], True = anomalous image. Both classes
    must occur. Returns keys IMAGE_METRIC_NAMES.
    """
    scores, labels = _checked_both_classes(scores, labels)
    anomalous = int(labels.sum())
    curve = ThresholdCurve.from_scores(scores, labels)
    true_positive = curve.cumulative()
    false_positive = curve.predicted - true_positive
    return {
        "image_auroc": roc_auc(false_positive / false_positive[-1], true_positive / true_positive[-1]),
        "image_ap": average_precision(true_positive, false_positive),
        "image_f1_max": float(np.max(2.0 * true_positive / (curve.predicted + anomalous))),
    }


def image_threshold(
    scores: object, labels: Sequence[bool] | np.ndarray, normal_fpr: float = DEFAULT_NORMAL_FPR
) -> tuple[float, str]:
    """(threshold, rule): with anomalous images among `labels`, the score with the best image F1 (ties go to
    the highest threshold); without, the lowest threshold that flags at most floor(normal_fpr * N) of the N
    normal images, i.e. just above the (floor(normal_fpr * N) + 1)-th highest normal score."""
    if isinstance(normal_fpr, bool) or not isinstance(normal_fpr, int | float) or not 0.0 <= normal_fpr < 1.0:
        raise AutopatchError(f"--normal-fpr {normal_fpr!r} must be in [0, 1), e.g. 0.01 (1 % of good parts NG)")
    scores, labels = _checked(scores, labels)
    if labels.any():
        curve = ThresholdCurve.from_scores(scores, labels)
        true_positive = curve.cumulative()
        best = int(np.argmax(2.0 * true_positive / (curve.predicted + true_positive[-1])))
        return float(curve.thresholds[best]), "image F1-max on validation"
    allowed = math.floor(normal_fpr * scores.size)  # < N since normal_fpr < 1
    highest_first = np.sort(scores)[::-1]
    return float(np.nextafter(highest_first[allowed], np.inf)), f"normal FPR {normal_fpr}"


def decision_counts(scores: object, labels: Sequence[bool] | np.ndarray, threshold: float) -> dict[str, float]:
    """image_precision, image_recall, image_f1 and image_fpr (normal images flagged) of 'NG when score >=
    threshold'; precision is 0 when no image is flagged. Both classes must occur."""
    scores, labels = _checked_both_classes(scores, labels)
    flagged = scores >= float(threshold)
    true_positive = int(np.count_nonzero(flagged & labels))
    anomalous, flagged_count = int(labels.sum()), int(flagged.sum())
    return {
        "image_precision": true_positive / flagged_count if flagged_count else 0.0,
        "image_recall": true_positive / anomalous,
        "image_f1": 2.0 * true_positive / (flagged_count + anomalous),
        "image_fpr": (flagged_count - true_positive) / (labels.size - anomalous),
    }
