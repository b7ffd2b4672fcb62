"""The reference a pick must beat: its margin against a loop over the paired draws, the fallback without draws,
and the line `pareto` prints of it."""

from __future__ import annotations

import math

import pytest

from autopatch.search.reference import REFERENCE_ATTR, Reference, reference_summary
from autopatch.search.spaces import get_space

REFERENCE = Reference("efficientnet_lite0", "PatchCore efficientnet_lite0 [4,10] coreset 0.1", 0.16,
                      {"rwap": 0.50, "rwap_se": 0.05}, {"rwap": [0.40, 0.55, 0.50, 0.60, float("nan")]})  # fmt: skip


def test_the_margin_is_the_lead_less_the_spread_of_the_paired_differences():
    draws = [0.45, 0.62, 0.52, 0.70, 0.30]
    differences = [a - b for a, b in zip(draws, REFERENCE.draws["rwap"], strict=True) if not math.isnan(a - b)]
    mean = sum(differences) / len(differences)
    spread = math.sqrt(sum((d - mean) ** 2 for d in differences) / (len(differences) - 1))
    assert REFERENCE.margin("rwap", 0.56, draws) == pytest.approx(0.06 - spread, abs=1e-12)


def test_without_draws_the_margin_is_the_plain_difference():
    assert REFERENCE.margin("rwap", 0.56, None) == pytest.approx(0.06, abs=1e-12)
    lacking = Reference(**{**REFERENCE.to_dict(), "draws": {}})
    assert lacking.margin("rwap", 0.44, [0.1] * 5) == pytest.approx(-0.06, abs=1e-12)


def test_the_reference_round_trips_through_the_study_attribute():
    assert Reference.from_dict(REFERENCE.to_dict()) == REFERENCE


@pytest.mark.parametrize(("space", "encoder"), [("pretrained", "efficientnet_lite0"),
                                                ("ofa", "ofa_mbv3_d234_e346_k357_w1.0"),
                                                ("ofa-fixed", "ofa_mbv3_d234_e346_k357_w1.2")])  # fmt: skip
def test_the_reference_encoder_is_the_spaces_smallest_as_trained(space, encoder):
    assert get_space(space).reference_encoder == encoder


def test_pareto_says_what_the_pick_is_compared_with():
    assert reference_summary({"oracle": True}, "rwap", "rwAP") is None
    unfitted = reference_summary({"oracle": False}, "rwap", "rwAP")
    assert unfitted.startswith("export --trial best keeps PatchCore on the space's smallest encoder")
    fitted = reference_summary({"oracle": False, REFERENCE_ATTR: REFERENCE.to_dict()}, "rwap", "rwAP")
    shown = "reference PatchCore efficientnet_lite0 [4,10] coreset 0.1: validation rwAP 0.5000 ± 0.0500"
    assert fitted.startswith(shown)
