"""TrialEvaluator end to end on MVTec bottle with the real EfficientNet-Lite0 weights (small images, fast)."""


import pytest

from autopatch.data import load_splits
from autopatch.search.architecture import Architecture
from autopatch.search.evaluator import TrialEvaluator
from autopatch.search.fidelity import FIDELITIES


@pytest.mark.realdata
@pytest.mark.slow
def test_lite0_trial_on_bottle_scores_well_and_reuses_the_cache(bottle_root):
    splits = load_splits(bottle_root, "bottle", k=1, image_size=96)
    evaluator = TrialEvaluator(splits)
    arch = Architecture("efficientnet_lite0", {}, (2, 6), (3, 3))
    full = evaluator.evaluate(arch)
    # PatchCore-style features separate bottle defects well even at 96 px (random scores: AUROC 0.5,
    # AP = anomalous pixel share, a few percent)
    assert full.metrics["auroc"] > 0.9
    assert full.metrics["rwap"] > 0.2
    assert full.gflops > 0
    low = TrialEvaluator(splits, fidelity=FIDELITIES["fast"], cache=evaluator.cache).evaluate(arch)
    assert evaluator.cache.encodes == 2  # train and val encoded once, shared by both fidelities
    assert abs(low.metrics["rwap"] - full.metrics["rwap"]) < 0.1
