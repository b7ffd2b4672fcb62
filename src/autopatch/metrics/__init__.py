"""Segmentation metrics (rwAP (AutoPatch), AP, AUROC, pAUROC, AUPRO), image-level metrics and thresholds."""

from autopatch.metrics.bootstrap import (
    BOOTSTRAPPED,
    SE_SUFFIX,
    paired_lower_bound,
    resampled_metrics,
    standard_errors,
)
from autopatch.metrics.image import (
    DEFAULT_NORMAL_FPR,
    IMAGE_METRIC_NAMES,
    decision_counts,
    image_metrics,
    image_scores,
    image_threshold,
)
from autopatch.metrics.regions import rwap_pixel_weights
from autopatch.metrics.segmentation import METRIC_NAMES, segmentation_metrics
from autopatch.metrics.threshold import best_f1_threshold, precision_recall_f1

__all__ = [
    "BOOTSTRAPPED",
    "DEFAULT_NORMAL_FPR",
    "IMAGE_METRIC_NAMES",
    "METRIC_NAMES",
    "SE_SUFFIX",
    "best_f1_threshold",
    "decision_counts",
    "image_metrics",
    "image_scores",
    "image_threshold",
    "paired_lower_bound",
    "precision_recall_f1",
    "resampled_metrics",
    "rwap_pixel_weights",
    "segmentation_metrics",
    "standard_errors",
]
