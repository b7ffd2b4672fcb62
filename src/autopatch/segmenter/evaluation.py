"""Score a fitted Segmenter on labelled splits: the paper's metrics, the threshold's F1, cost and speed.

`fit_and_evaluate` is the one protocol behind every reported number (export, baseline, experiment
re-fits): bank from the train split, best-F1 pixel and image thresholds on the validation split, metrics on test.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from autopatch.data import Split, Splits
from autopatch.metrics import (
    DEFAULT_NORMAL_FPR,
    METRIC_NAMES,
    decision_counts,
    image_metrics,
    image_scores,
    precision_recall_f1,
    segmentation_metrics,
)
from autopatch.segmenter.segmenter import Segmenter


def evaluate_on_split(
    segmenter: Segmenter, split: Split, batch_size: int = 32, progress: bool = False
) -> dict[str, Any]:
    """Metrics dict: rwap, ap, auroc, pauroc_0.3, aupro_0.3 (None when the split has no masks); image_auroc,
    image_ap, image_f1_max of the maps' maxima; f1/precision/recall at the stored pixel threshold and
    image_precision/recall/f1/fpr of the OK/NG decision at the stored image threshold (None without one);
    gflops of the encoder; images_per_s of predict (encode + 1-NN + upsample) on already decoded images."""
    return _score_split(segmenter, split, batch_size, progress)[0]


def _score_split(
    segmenter: Segmenter, split: Split, batch_size: int, progress: bool
) -> tuple[dict[str, Any], np.ndarray]:
    """`evaluate_on_split`'s dict and the score maps it was computed from."""
    start = time.perf_counter()
    scores = segmenter.predict(split.images, batch_size=batch_size, progress=progress).numpy()
    seconds = time.perf_counter() - start
    masks = split.masks.cpu().numpy().astype(bool)
    result: dict[str, Any] = dict.fromkeys(METRIC_NAMES)  # pixel metrics need masks
    if split.pixel_labels:
        result.update(segmentation_metrics(scores, masks, list(split.types)))
    per_image = image_scores(scores)
    result.update(image_metrics(per_image, split.is_anomalous))
    precision = recall = f1 = None
    if segmenter.threshold is not None and split.pixel_labels:
        precision, recall, f1 = precision_recall_f1(scores, masks, segmenter.threshold)
    decisions = dict.fromkeys(("image_precision", "image_recall", "image_f1", "image_fpr"))
    if segmenter.image_threshold is not None:
        decisions = decision_counts(per_image, split.is_anomalous, segmenter.image_threshold)
    result.update(
        threshold=segmenter.threshold,
        f1=f1,
        precision=precision,
        recall=recall,
        image_threshold=segmenter.image_threshold,
        **decisions,
        gflops=segmenter.gflops,
        images_per_s=len(split) / seconds if seconds > 0 else float("inf"),
        images=len(split),
    )
    return result, scores


def fit_on_splits(
    segmenter: Segmenter,
    splits: Splits,
    batch_size: int = 32,
    progress: bool = False,
    normal_fpr: float = DEFAULT_NORMAL_FPR,
) -> dict[str, Any]:
    """Bank from the train split, pixel (with masks) and image thresholds on the val split; returns the
    threshold record with the val split's metrics (`Segmenter.fit_thresholds`)."""
    val = splits.val
    if val.pixel_labels:
        val.check_marks_anomalies("validation")
    segmenter.fit(splits.train.images, batch_size=batch_size, progress=progress)
    masks = val.masks if val.pixel_labels else None
    return segmenter.fit_thresholds(
        val.images, masks, val.is_anomalous, normal_fpr=normal_fpr, batch_size=batch_size, progress=progress,
        types=val.types,
    )


@dataclass(frozen=True)
class SplitsEvaluation:
    """What `fit_and_evaluate` found: the val threshold record, the test metrics and the test score maps."""

    val: dict[str, Any]
    test: dict[str, Any]
    test_scores: np.ndarray


def fit_and_evaluate(
    segmenter: Segmenter,
    splits: Splits,
    batch_size: int = 32,
    progress: bool = False,
    normal_fpr: float = DEFAULT_NORMAL_FPR,
) -> SplitsEvaluation:
    """Fit on train, thresholds on val, score on test (one predict gives both metrics and score maps)."""
    val = fit_on_splits(segmenter, splits, batch_size, progress, normal_fpr)
    test, scores = _score_split(segmenter, splits.test, batch_size, progress)
    return SplitsEvaluation(val=val, test=test, test_scores=scores)
