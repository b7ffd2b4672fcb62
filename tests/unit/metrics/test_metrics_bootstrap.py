"""Bootstrap resamples and standard errors against oracles: a resample's rwAP equals the metric of the stack that
holds the copies, image AP / AUROC equal scikit-learn's with the copies as sample weights; the paired lower bound
equals a loop over the draws."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from autopatch.metrics import paired_lower_bound, resampled_metrics, segmentation_metrics, standard_errors
from autopatch.metrics.bootstrap import bootstrap_counts, resampled_rwap


def random_stack(seed: int, images: int = 10, height: int = 12, width: int = 14):
    """Coarse scores (many ties), 1-3 regions per anomalous image, three defect types and normals."""
    rng = np.random.default_rng(seed)
    kinds = ["good"] * (images - 5) + ["crack", "crack", "dent", "dent", "hole"]
    masks = np.zeros((images, height, width), dtype=bool)
    for index, kind in enumerate(kinds):
        if kind == "good":
            continue
        for _ in range(int(rng.integers(1, 4))):
            top, left = int(rng.integers(0, height - 3)), int(rng.integers(0, width - 3))
            masks[index, top : top + int(rng.integers(1, 4)), left : left + int(rng.integers(1, 4))] = True
    scores = rng.integers(0, 6, size=masks.shape) / 4 + masks * rng.integers(0, 3, size=masks.shape) / 4
    return scores, masks, kinds


@pytest.mark.parametrize("seed", range(6))
def test_each_resampled_rwap_equals_the_metric_of_the_stack_with_the_copies(seed):
    scores, masks, kinds = random_stack(seed)
    anomalous = np.array([kind != "good" for kind in kinds])
    counts = bootstrap_counts(anomalous, draws=25, seed=seed)
    got = resampled_rwap(scores, masks, kinds, counts)
    for copies, value in zip(counts, got, strict=True):
        held = np.repeat(np.arange(len(kinds)), copies)
        want = segmentation_metrics(scores[held], masks[held], [kinds[i] for i in held])["rwap"]
        assert value == pytest.approx(want, abs=1e-12)


def test_resamples_keep_each_class_count_and_draw_only_within_it():
    anomalous = np.array([True, False, False, True, False, True, False])
    counts = bootstrap_counts(anomalous, draws=200, seed=3)
    assert (counts[:, anomalous].sum(axis=1) == 3).all()
    assert (counts[:, ~anomalous].sum(axis=1) == 4).all()
    assert (counts > 0).mean() < 1  # images are left out: it is a resample, not the split itself
    assert (bootstrap_counts(anomalous, draws=200, seed=3) == counts).all()
    assert not (bootstrap_counts(anomalous, draws=200, seed=4) == counts).all()


def test_standard_errors_equal_the_spread_of_the_oracle_over_the_same_resamples():
    scores, masks, kinds = random_stack(7, images=12)
    anomalous = np.array([kind != "good" for kind in kinds])
    resampled = resampled_metrics(scores, anomalous, masks, kinds, draws=40, seed=11)
    got = standard_errors(resampled)
    per_image = scores.reshape(len(kinds), -1).max(axis=1)
    oracle = {"image_ap": [], "image_auroc": [], "rwap": []}
    for copies in bootstrap_counts(anomalous, draws=40, seed=11):
        oracle["image_ap"].append(average_precision_score(anomalous, per_image, sample_weight=copies))
        oracle["image_auroc"].append(roc_auc_score(anomalous, per_image, sample_weight=copies))
        held = np.repeat(np.arange(len(kinds)), copies)
        oracle["rwap"].append(segmentation_metrics(scores[held], masks[held], [kinds[i] for i in held])["rwap"])
    for name, values in oracle.items():
        assert resampled[name] == pytest.approx(values, abs=1e-12)
        assert got[name + "_se"] == pytest.approx(np.std(values, ddof=1), abs=1e-12)
    assert got["rwap_se"] > 0  # the oracle's spread is not trivially zero on this stack


def test_without_masks_only_the_image_metrics_and_with_one_class_nothing():
    scores, masks, kinds = random_stack(2)
    anomalous = [kind != "good" for kind in kinds]
    assert set(standard_errors(resampled_metrics(scores, anomalous))) == {"image_ap_se", "image_auroc_se"}
    assert resampled_metrics(scores, [False] * len(kinds)) == {}


@pytest.mark.parametrize("seed", range(4))
def test_the_paired_lower_bound_is_the_lead_less_the_spread_of_the_draw_by_draw_differences(seed):
    rng = np.random.default_rng(seed)
    common = rng.normal(0.5, 0.2, size=50)  # what both models find easy or hard on a resample
    mine, other = common + rng.normal(0.03, 0.01, size=50), common + rng.normal(0.0, 0.01, size=50)
    mine[int(rng.integers(50))] = np.nan  # a resample without an anomalous pixel
    differences = [a - b for a, b in zip(mine, other, strict=True) if not np.isnan(a - b)]
    mean = sum(differences) / len(differences)
    spread = (sum((d - mean) ** 2 for d in differences) / (len(differences) - 1)) ** 0.5
    assert paired_lower_bound(0.6, mine, 0.55, other) == pytest.approx(0.05 - spread, abs=1e-12)
    # unpaired, the common part would swamp the lead: each model's own spread is about 0.2
    assert 0.05 - spread > 0 > 0.05 - np.nanstd(mine, ddof=1)


def test_paired_draws_of_other_resamples_are_refused():
    with pytest.raises(ValueError, match="same resamples"):
        paired_lower_bound(0.5, [0.1, 0.2], 0.4, [0.1, 0.2, 0.3])
