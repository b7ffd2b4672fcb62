"""Score a fitted Segmenter on one labelled split: the paper's metrics, the threshold's F1, cost and speed."""

from __future__ import annotations

import time
from typing import Any

from autopatch.data import Split
from autopatch.metrics import precision_recall_f1, segmentation_metrics
from autopatch.segmenter.segmenter import Segmenter


def evaluate_on_split(
    segmenter: Segmenter, split: Split, batch_size: int = 32, progress: bool = False
) -> dict[str, Any]:
    """Metrics dict: rwap, ap, auroc, pauroc_0.3, aupro_0.3; f1/precision/recall at the stored threshold
    (None without one); gflops of the encoder; images_per_s of predict (encode + 1-NN + upsample) on
    already decoded images."""
    start = time.perf_counter()
    scores = segmenter.predict(split.images, batch_size=batch_size, progress=progress).numpy()
    seconds = time.perf_counter() - start
    masks = split.masks.cpu().numpy().astype(bool)
    result: dict[str, Any] = dict(segmentation_metrics(scores, masks, list(split.types)))
    precision = recall = f1 = None
    if segmenter.threshold is not None:
        precision, recall, f1 = precision_recall_f1(scores, masks, segmenter.threshold)
    result.update(
        threshold=segmenter.threshold,
        f1=f1,
        precision=precision,
        recall=recall,
        gflops=segmenter.gflops,
        images_per_s=len(split) / seconds if seconds > 0 else float("inf"),
        images=len(split),
    )
    return result
