"""How much a validation objective would move with other validation images: bootstrap resamples, standard errors
and the paired comparison of two models.

A resample draws the anomalous images and the normal images separately, each with replacement and each
keeping its count (so every resample holds both classes), and is written as the multiplicity of every image:
`counts[b, i]` copies of image i in resample b. A metric of a resample is the metric of the stack that holds
those copies; the standard error is the standard deviation of the metric over the resamples.

rwAP is computed for every resample from one shared sort: the kept thresholds of the whole stack's
`ThresholdCurve` are a superset of any resample's (a resample only drops or repeats images), so per image the
pixels at or above each kept threshold are counted once, and a resample's curve is a weighted sum of those
counts. Its region weights are recomputed from the regions it holds (mean area, regions per defect type), as
the metric defines them on a stack with the copies in it.

The draws are seeded, so two architectures scored on the same split are judged on the same resamples.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from autopatch.metrics.curves import ThresholdCurve, average_precision
from autopatch.metrics.image import image_metrics, image_scores
from autopatch.metrics.inputs import checked_maps, checked_types
from autopatch.metrics.regions import find_regions, rwap_region_weights

BOOTSTRAP_DRAWS = 100
SE_SUFFIX = "_se"
BOOTSTRAPPED = ("rwap", "image_ap", "image_auroc")  # the metrics a search can maximise (search.names.OBJECTIVES)


def bootstrap_counts(anomalous: Sequence[bool] | np.ndarray, draws: int = BOOTSTRAP_DRAWS, seed: int = 0) -> np.ndarray:
    """int64 [draws, N]: per resample, how many copies of each image it holds; the anomalous and the normal
    images are each drawn with replacement, as many as there are of them."""
    labels = np.asarray(anomalous, dtype=bool)
    rng = np.random.default_rng(seed)
    counts = np.zeros((draws, labels.size), dtype=np.int64)
    for group in (np.flatnonzero(labels), np.flatnonzero(~labels)):
        if group.size:
            picks = group[rng.integers(0, group.size, size=(draws, group.size))]
            np.add.at(counts, (np.arange(draws)[:, None], picks), 1)
    return counts


def resampled_rwap(scores: object, masks: object, types: Sequence[str], counts: np.ndarray) -> np.ndarray:
    """float64 [B]: the rwAP of each resample `counts[b]` (copies per image) of the [N, H, W] stack; NaN for
    a resample without an anomalous pixel."""
    scores, masks = checked_maps(scores, masks)
    types = checked_types(types, masks)
    counts = np.asarray(counts, dtype=np.int64)
    regions = find_regions(masks)
    curve = ThresholdCurve.from_scores(scores, masks)
    points = curve.thresholds.size
    images = scores.shape[0]
    region_of_anomalous = regions.labels.ravel()[masks.ravel()] - 1
    at_or_above = np.empty((points, images))
    for index in range(images):
        ascending = np.sort(scores[index].ravel())
        at_or_above[:, index] = ascending.size - np.searchsorted(ascending, curve.thresholds, side="left")
    image_of_anomalous = regions.images[region_of_anomalous]
    anomalous_at_or_above = np.bincount(
        curve.anomalous_point * images + image_of_anomalous, minlength=points * images
    ).reshape(points, images).cumsum(axis=0)  # fmt: skip
    normal_at_or_above = at_or_above - anomalous_at_or_above
    values = np.full(counts.shape[0], np.nan)
    for draw, copies in enumerate(counts):
        weights = rwap_region_weights(regions, types, copies)
        if not weights.any():
            continue
        false_positive = normal_at_or_above @ copies
        pixel_weights = (weights * copies[regions.images])[region_of_anomalous]
        true_positive = np.cumsum(np.bincount(curve.anomalous_point, pixel_weights, minlength=points))
        flagged = true_positive + false_positive > 0  # a threshold above every pixel it holds adds no recall
        values[draw] = average_precision(true_positive[flagged], false_positive[flagged])
    return values


def resampled_metrics(
    scores: object,
    anomalous: Sequence[bool] | np.ndarray,
    masks: object | None = None,
    types: Sequence[str] | None = None,
    *,
    draws: int = BOOTSTRAP_DRAWS,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """float64 [draws] per metric: image AP and image AUROC of every resample, and rwAP when `masks` and `types`
    are given, for the [N, H, W] anomaly maps `scores`; empty unless both classes occur. Two models scored on the
    same images with the same seed are resampled alike, so their values pair up draw by draw."""
    maps = np.asarray(scores)
    labels = np.asarray(anomalous, dtype=bool)
    if labels.all() or not labels.any():
        return {}
    counts = bootstrap_counts(labels, draws, seed)
    per_image = image_scores(maps)
    samples = {"image_ap": [], "image_auroc": []}
    for copies in counts:
        chosen = np.repeat(np.arange(labels.size), copies)
        values = image_metrics(per_image[chosen], labels[chosen])
        for name, draws_of in samples.items():
            draws_of.append(values[name])
    found = {name: np.asarray(values, dtype=np.float64) for name, values in samples.items()}
    if masks is not None and types is not None:
        found["rwap"] = resampled_rwap(maps, masks, types, counts)
    return found


def standard_errors(resampled: dict[str, np.ndarray]) -> dict[str, float]:
    """`<metric>_se`: the standard deviation of each metric over its resamples (`resampled_metrics`)."""
    return {name + SE_SUFFIX: float(np.nanstd(values, ddof=1)) for name, values in resampled.items()}


def paired_lower_bound(
    value: float, draws: Sequence[float] | np.ndarray, other: float, other_draws: Sequence[float] | np.ndarray
) -> float:
    """How far `value` is above `other` less the bootstrap standard error of that difference, computed draw by draw
    on the same resamples (so what both models find easy or hard cancels out); above 0 when the evidence says
    the first model is better."""
    if len(draws) != len(other_draws):
        raise ValueError(f"paired draws must come from the same resamples, got {len(draws)} and {len(other_draws)}")
    differences = np.asarray(draws, dtype=np.float64) - np.asarray(other_draws, dtype=np.float64)
    return float(value - other - np.nanstd(differences, ddof=1))
