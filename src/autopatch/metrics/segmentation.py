"""The five pixel-level segmentation metrics the search and the reports use, from one shared sort."""

from __future__ import annotations

from collections.abc import Sequence

from autopatch.metrics.curves import ThresholdCurve, average_precision, roc_auc
from autopatch.metrics.inputs import checked_maps, checked_types, require_both_classes
from autopatch.metrics.pro import aupro
from autopatch.metrics.regions import find_regions, rwap_region_weights

PARTIAL_FPR = 0.3


METRIC_NAMES = ("rwap", "ap", "auroc", f"pauroc_{PARTIAL_FPR}", f"aupro_{PARTIAL_FPR}")


def segmentation_metrics(scores: object, masks: object, types: Sequence[str]) -> dict[str, float]:
    """rwAP, AP, AUROC, pAUROC (FPR <= 0.3, McClish) and AUPRO (FPR <= 0.3) of pixel anomaly scores.

    scores: float [N, H, W] (numpy array or CPU tensor), higher = more anomalous.
    masks: bool [N, H, W], True = anomalous pixel.
    types: one defect type per image, 'good' for normal images (they weight rwAP's defect types).
    Returns a dict with keys 'rwap', 'ap', 'auroc', 'pauroc_0.3', 'aupro_0.3', each a float in [0, 1].
    """
    scores, masks = checked_maps(scores, masks)
    require_both_classes(masks)
    types = checked_types(types, masks)
    regions = find_regions(masks)
    # Anomalous pixels in row-major order: the same order ThresholdCurve ranks them in.
    region_of_anomalous = regions.labels.ravel()[masks.ravel()] - 1
    curve = ThresholdCurve.from_scores(scores, masks)

    true_positive = curve.cumulative()
    false_positive = curve.predicted - true_positive
    weighted_true_positive = curve.cumulative(rwap_region_weights(regions, types)[region_of_anomalous])
    false_positive_rate = false_positive / false_positive[-1]
    true_positive_rate = true_positive / true_positive[-1]

    values = {
        "rwap": average_precision(weighted_true_positive, false_positive),
        "ap": average_precision(true_positive, false_positive),
        "auroc": roc_auc(false_positive_rate, true_positive_rate),
        f"pauroc_{PARTIAL_FPR}": roc_auc(false_positive_rate, true_positive_rate, max_fpr=PARTIAL_FPR),
        f"aupro_{PARTIAL_FPR}": aupro(curve, regions, region_of_anomalous, false_positive_rate, PARTIAL_FPR),
    }
    # Rounding in the last bit must not push a score outside the documented range.
    return {name: float(min(max(value, 0.0), 1.0)) for name, value in values.items()}
