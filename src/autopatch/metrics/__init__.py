"""Pixel-level anomaly segmentation metrics: rwAP (AutoPatch), AP, AUROC, pAUROC, AUPRO, F1 thresholds."""

from autopatch.metrics.regions import rwap_pixel_weights
from autopatch.metrics.segmentation import METRIC_NAMES, segmentation_metrics
from autopatch.metrics.threshold import best_f1_threshold, precision_recall_f1

__all__ = ["METRIC_NAMES", "best_f1_threshold", "precision_recall_f1", "rwap_pixel_weights", "segmentation_metrics"]
