"""AUPRO: MVTec's per-region-overlap curve, integrated up to a false positive rate and normalised.

PRO at a threshold is the mean, over all defect regions, of the fraction of each region's pixels at or
above it; an anomalous pixel of region r therefore adds 1 / (area_r * region count) to the PRO, which makes
the whole curve one more weighted cumulative sum over the shared threshold curve.
"""

from __future__ import annotations

import numpy as np

from autopatch.metrics.curves import ThresholdCurve, partial_area
from autopatch.metrics.regions import Regions


def aupro(
    curve: ThresholdCurve,
    regions: Regions,
    region_of_anomalous: np.ndarray,
    false_positive_rate: np.ndarray,
    max_fpr: float = 0.3,
) -> float:
    """Area under PRO(FPR) from 0 to max_fpr divided by max_fpr (MVTec AD evaluation, trapezoid rule).

    region_of_anomalous gives, per anomalous pixel in the curve's order, its region index (label - 1).
    """
    overlap_gain = 1.0 / (regions.areas[region_of_anomalous] * float(regions.count))
    per_region_overlap = np.minimum(curve.cumulative(overlap_gain), 1.0)
    return partial_area(false_positive_rate, per_region_overlap, max_fpr) / max_fpr
