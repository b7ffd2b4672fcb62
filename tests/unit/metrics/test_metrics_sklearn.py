"""rwAP, AP, AUROC and pAUROC against scikit-learn; rwAP weights against a plain loop over skimage regions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from skimage.measure import label
from sklearn.metrics import average_precision_score, roc_auc_score

from autopatch.metrics import rwap_pixel_weights, segmentation_metrics

DEFECT_TYPES = ("crack", "scratch", "stain")


def oracle_rwap_weights(masks: np.ndarray, types: list[str]) -> np.ndarray:
    """The paper's Eq. 1-4 written out: one entry per 8-connected region, then a per-pixel fill."""
    regions = []  # (image index, boolean region mask)
    for image, mask in enumerate(masks):
        labelled = label(mask, connectivity=2)
        for region_id in range(1, labelled.max() + 1):
            regions.append((image, labelled == region_id))
    count_per_type = {kind: 0 for kind in types if kind != "good"}
    for image, _ in regions:
        count_per_type[types[image]] += 1
    mean_area = sum(int(region.sum()) for _, region in regions) / len(regions)
    mean_count = sum(count_per_type.values()) / len(count_per_type)
    weights = np.ones(masks.shape)
    for image, region in regions:
        weights[image][region] = (mean_area / region.sum()) * (mean_count / count_per_type[types[image]])
    return weights


def sklearn_metrics(scores: np.ndarray, masks: np.ndarray, types: list[str]) -> dict[str, float]:
    y_true, y_score = masks.ravel(), scores.ravel()
    return {
        "rwap": average_precision_score(y_true, y_score, sample_weight=oracle_rwap_weights(masks, types).ravel()),
        "ap": average_precision_score(y_true, y_score),
        "auroc": roc_auc_score(y_true, y_score),
        "pauroc_0.3": roc_auc_score(y_true, y_score, max_fpr=0.3),
    }


@st.composite
def labelled_maps(draw, tied: bool):
    n = draw(st.integers(1, 4))
    h = draw(st.integers(1, 7))
    w = draw(st.integers(1, 7))
    if tied:
        scores = draw(arrays(np.float64, (n, h, w), elements=st.integers(0, 3).map(float)))
    else:
        scores = draw(arrays(np.float64, (n, h, w), elements=st.floats(-1e3, 1e3, allow_nan=False)))
    masks = draw(arrays(np.bool_, (n, h, w)))
    assume(masks.any() and not masks.all())
    types = [
        draw(st.sampled_from(DEFECT_TYPES)) if mask.any() else draw(st.sampled_from(("good", "good", "crack")))
        for mask in masks
    ]
    return scores, masks, types


def assert_close_to_sklearn(scores: np.ndarray, masks: np.ndarray, types: list[str]) -> None:
    ours = segmentation_metrics(scores, masks, types)
    expected = sklearn_metrics(scores, masks, types)
    for name, value in expected.items():
        assert ours[name] == pytest.approx(value, rel=1e-9, abs=1e-12), name
    assert set(ours) == {"rwap", "ap", "auroc", "pauroc_0.3", "aupro_0.3"}
    assert all(isinstance(value, float) for value in ours.values())


@settings(max_examples=80, deadline=None)
@given(labelled_maps(tied=True))
def test_matches_sklearn_with_many_ties(case):
    assert_close_to_sklearn(*case)


@settings(max_examples=80, deadline=None)
@given(labelled_maps(tied=False))
def test_matches_sklearn_with_continuous_scores(case):
    assert_close_to_sklearn(*case)


@settings(max_examples=40, deadline=None)
@given(labelled_maps(tied=True), st.floats(-5, 5, allow_nan=False))
def test_all_equal_scores(case, value):
    _, masks, types = case
    scores = np.full(masks.shape, value)
    assert_close_to_sklearn(scores, masks, types)
    ours = segmentation_metrics(scores, masks, types)
    assert ours["ap"] == pytest.approx(masks.mean())
    assert ours["auroc"] == pytest.approx(0.5)
    assert ours["pauroc_0.3"] == pytest.approx(0.5)
    # One threshold: the PRO curve is the straight line (0,0)-(1,1); its area up to 0.3 is 0.045, / 0.3.
    assert ours["aupro_0.3"] == pytest.approx(0.15)


def blob_case(seed: int, n: int = 12, size: int = 32) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Bottle-like: normal images plus three defect types with 1-3 round blobs of varied size."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    masks = np.zeros((n, size, size), dtype=bool)
    types = []
    for image in range(n):
        kind = "good" if image < n // 3 else DEFECT_TYPES[image % 3]
        types.append(kind)
        if kind != "good":
            for _ in range(rng.integers(1, 4)):
                cy, cx = rng.integers(3, size - 3, 2)
                radius = rng.integers(1, 7)
                masks[image] |= (yy - cy) ** 2 + (xx - cx) ** 2 < radius**2
    scores = rng.normal(size=masks.shape).astype(np.float32) + masks * rng.uniform(0.0, 2.0)
    return scores, masks, types


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_sklearn_on_blob_masks_with_float32_scores(seed):
    assert_close_to_sklearn(*blob_case(seed))


def test_rwap_weights_match_the_loop_oracle():
    for seed in range(5):
        _, masks, types = blob_case(seed)
        np.testing.assert_allclose(rwap_pixel_weights(masks, types), oracle_rwap_weights(masks, types), rtol=1e-12)


@settings(max_examples=60, deadline=None)
@given(labelled_maps(tied=True))
def test_rwap_weights_match_the_loop_oracle_on_random_masks(case):
    _, masks, types = case
    np.testing.assert_allclose(rwap_pixel_weights(masks, types), oracle_rwap_weights(masks, types), rtol=1e-12)


@settings(max_examples=60, deadline=None)
@given(labelled_maps(tied=True))
def test_anomalous_weights_sum_to_the_anomalous_pixel_count(case):
    _, masks, types = case
    # The property holds when every defect type that occurs has at least one region.
    types = [kind if mask.any() else "good" for kind, mask in zip(types, masks, strict=True)]
    weights = rwap_pixel_weights(masks, types)
    assert weights[masks].sum() == pytest.approx(masks.sum(), rel=1e-12)
    assert np.all(weights[~masks] == 1.0)


def test_rare_type_and_small_regions_weigh_more():
    masks = np.zeros((3, 8, 8), dtype=bool)
    masks[0, 0:4, 0:4] = True  # type a: one big region
    masks[1, 0, 0] = True  # type a: one small region
    masks[2, 6:8, 6:8] = True  # type b: one region of area 4
    weights = rwap_pixel_weights(masks, ["a", "a", "b"])
    mean_area = (16 + 1 + 4) / 3
    mean_count = (2 + 1) / 2
    assert weights[0, 0, 0] == pytest.approx(mean_area / 16 * mean_count / 2)
    assert weights[1, 0, 0] == pytest.approx(mean_area / 1 * mean_count / 2)
    assert weights[2, 7, 7] == pytest.approx(mean_area / 4 * mean_count / 1)


def test_cpu_tensors_give_the_same_values_as_numpy():
    scores, masks, types = blob_case(3)
    from_numpy = segmentation_metrics(scores, masks, types)
    from_torch = segmentation_metrics(torch.from_numpy(scores), torch.from_numpy(masks), types)
    assert from_torch == from_numpy
