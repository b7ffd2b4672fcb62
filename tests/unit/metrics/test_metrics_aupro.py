"""AUPRO against a brute-force PRO curve: every threshold of a dense grid, regions from skimage, plain loops."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from skimage.measure import label

from autopatch.metrics import segmentation_metrics


def brute_force_aupro(scores: np.ndarray, masks: np.ndarray, max_fpr: float = 0.3) -> float:
    regions = []
    for image, mask in enumerate(masks):
        labelled = label(mask, connectivity=2)
        regions += [(image, labelled == region_id) for region_id in range(1, labelled.max() + 1)]
    normal = ~masks
    # Every distinct score plus a dense grid between and beyond them (extra points lie on the same curve).
    grid = np.linspace(scores.min() - 1.0, scores.max() + 1.0, 401)
    thresholds = np.sort(np.concatenate((np.unique(scores), grid)))[::-1]
    points = [(0.0, 0.0)]
    for threshold in thresholds:
        flagged = scores >= threshold
        fpr = np.count_nonzero(flagged & normal) / np.count_nonzero(normal)
        pro = np.mean([flagged[image][region].mean() for image, region in regions])
        points.append((fpr, pro))
    area = 0.0
    for (x0, y0), (x1, y1) in zip(points, points[1:], strict=False):
        if x1 <= max_fpr:
            area += (x1 - x0) * (y0 + y1) / 2.0
        else:
            y_at_max = y0 + (y1 - y0) * (max_fpr - x0) / (x1 - x0)
            area += (max_fpr - x0) * (y0 + y_at_max) / 2.0
            break
    return area / max_fpr


@st.composite
def tiny_maps(draw):
    n = draw(st.integers(1, 3))
    h = draw(st.integers(2, 6))
    w = draw(st.integers(2, 6))
    scores = draw(arrays(np.float64, (n, h, w), elements=st.integers(0, 6).map(lambda v: v / 4.0)))
    masks = draw(arrays(np.bool_, (n, h, w)))
    assume(masks.any() and not masks.all())
    return scores, masks


@settings(max_examples=60, deadline=None)
@given(tiny_maps())
def test_aupro_matches_brute_force_on_tiny_inputs(case):
    scores, masks = case
    types = ["crack" if mask.any() else "good" for mask in masks]
    assert segmentation_metrics(scores, masks, types)["aupro_0.3"] == pytest.approx(
        brute_force_aupro(scores, masks), rel=1e-9, abs=1e-12
    )


def test_aupro_matches_brute_force_with_small_and_large_regions():
    rng = np.random.default_rng(7)
    masks = np.zeros((3, 12, 12), dtype=bool)
    masks[0, 1:7, 1:7] = True  # one large region
    masks[1, 2, 2] = masks[1, 3, 3] = True  # diagonal pixels: one 8-connected region
    masks[1, 8, 9] = True  # and a separate single pixel
    scores = rng.normal(size=masks.shape) + masks * 1.5
    types = ["a", "b", "good"]
    assert segmentation_metrics(scores, masks, types)["aupro_0.3"] == pytest.approx(
        brute_force_aupro(scores, masks), rel=1e-9
    )


def test_perfect_separation_gives_aupro_one():
    masks = np.zeros((2, 5, 5), dtype=bool)
    masks[0, 1:3, 1:3] = True
    scores = masks.astype(float) + 0.1
    assert segmentation_metrics(scores, masks, ["a", "good"])["aupro_0.3"] == pytest.approx(1.0)
