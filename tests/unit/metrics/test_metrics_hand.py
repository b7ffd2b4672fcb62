"""Hand-computed values on two 2x2 images, worked out in the comments (no library involved)."""

from __future__ import annotations

import numpy as np
import pytest

from autopatch.metrics import segmentation_metrics

# Image 0 (type a): region of 2 pixels with scores 0.9, 0.2; normal pixels 0.1, 0.3.
# Image 1 (type b): region of 1 pixel with score 0.4; normal pixels 0.5, 0.6, 0.05.
SCORES = np.array([[[0.9, 0.2], [0.1, 0.3]], [[0.4, 0.5], [0.6, 0.05]]])
MASKS = np.array([[[1, 1], [0, 0]], [[1, 0], [0, 0]]], dtype=bool)
TYPES = ["a", "b"]


def test_hand_computed_metrics():
    values = segmentation_metrics(SCORES, MASKS, TYPES)
    # Ranking: 0.9 A | 0.6 N | 0.5 N | 0.4 A | 0.3 N | 0.2 A | 0.1 N | 0.05 N  (3 anomalous, 5 normal).
    # AP: recall steps of 1/3 at 0.9 (P = 1), 0.4 (P = 2/4), 0.2 (P = 3/6) -> (1 + 1/2 + 1/2) / 3 = 2/3.
    assert values["ap"] == pytest.approx(2 / 3)
    # rwAP: mean area 1.5, one region per type -> weights 1.5/2 = 0.75 (region of 2), 1.5/1 = 1.5 (region of 1);
    # total weight 3. At 0.9: tp 0.75, P = 1, R = 1/4; at 0.4: tp 2.25, fp 2, P = 9/17, R = 3/4;
    # at 0.2: tp 3, fp 3, P = 1/2, R = 1 -> 1/4 + (1/2)(9/17) + (1/4)(1/2) = 87/136.
    assert values["rwap"] == pytest.approx(87 / 136)
    # AUROC: pairs (anomalous > normal): 0.9 beats 5, 0.4 beats 3, 0.2 beats 2 -> 10/15.
    assert values["auroc"] == pytest.approx(2 / 3)
    # pAUROC: TPR is 1/3 over FPR [0, 0.4] -> area to 0.3 is 0.1; McClish: 0.5 (1 + (0.1 - 0.045) / 0.255) = 31/51.
    assert values["pauroc_0.3"] == pytest.approx(31 / 51)
    # AUPRO: PRO = (1/2 + 0)/2 = 1/4 from FPR 0 until FPR 0.4 (score 0.4) -> area 0.075, / 0.3 = 1/4.
    assert values["aupro_0.3"] == pytest.approx(1 / 4)


def test_hand_computed_perfect_and_inverted_rankings():
    masks = np.array([[[1, 0], [0, 0]]], dtype=bool)
    perfect = np.array([[[1.0, 0.0], [0.0, 0.0]]])
    values = segmentation_metrics(perfect, masks, ["a"])
    assert values == pytest.approx({"rwap": 1.0, "ap": 1.0, "auroc": 1.0, "pauroc_0.3": 1.0, "aupro_0.3": 1.0})
    inverted = 1.0 - perfect
    values = segmentation_metrics(inverted, masks, ["a"])
    # Anomalous pixel last: AP = precision at full recall = 1/4; AUROC 0; the PRO is 0 up to FPR 1.
    assert values["ap"] == pytest.approx(1 / 4)
    assert values["rwap"] == pytest.approx(1 / 4)
    assert values["auroc"] == pytest.approx(0.0)
    assert values["aupro_0.3"] == pytest.approx(0.0)
    # pAUROC: partial area 0 -> 0.5 (1 - 0.045 / 0.255) = 0.5 - 0.045 / 0.51.
    assert values["pauroc_0.3"] == pytest.approx(0.5 - 0.045 / 0.51)
