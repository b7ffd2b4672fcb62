"""The contract that keeps the search honest about what `export` ships: a trial's validation metrics equal
those of a Segmenter built from the same architecture, fitted on train and scored on val."""

from pathlib import Path

import pytest

from autopatch.backbones import create_encoder
from autopatch.data import load_splits
from autopatch.features.cache import FeatureCache
from autopatch.metrics import BOOTSTRAPPED, IMAGE_METRIC_NAMES, METRIC_NAMES, SE_SUFFIX
from autopatch.search.architecture import Architecture
from autopatch.search.evaluator import TrialEvaluator
from autopatch.segmenter import Segmenter, evaluate_on_split

TOY = Path(__file__).resolve().parents[3] / "examples" / "data" / "hazelnut_toy"
SIZE = 96


@pytest.fixture(scope="module")
def splits():
    return load_splits(TOY, "hazelnut_toy", k=1, image_size=SIZE)


@pytest.mark.parametrize(
    "arch",
    [
        Architecture("efficientnet_lite0", {}, (2, 7), (3, 1)),  # stride 4 + 16
        Architecture("efficientnet_lite0", {}, (4, 8, 11), (2, 5, 1)),  # even patch size, stride 8/16/32
        Architecture("efficientnet_lite1", {}, (5,), (7,)),  # one stride-8 block
    ],
    ids=str,
)
def test_trial_metrics_equal_a_fitted_segmenter(splits, arch):
    evaluator = TrialEvaluator(splits, "cpu", cache=FeatureCache(dtype=__import__("torch").float32))
    trial = evaluator.evaluate(arch).metrics

    encoder = create_encoder(arch.encoder, pretrained=True, **arch.encoder_config)
    segmenter = Segmenter(encoder, arch.block_ids, arch.patch_sizes, SIZE).fit(splits.train.images)
    fitted = evaluate_on_split(segmenter, splits.val)  # what `evaluate` reports for the model

    val = splits.val  # the re-fits of export and the experiment take their standard errors from fit_thresholds
    refit = segmenter.fit_thresholds(val.images, val.masks, val.is_anomalous, types=val.types)["metrics"]
    errors = {name + SE_SUFFIX for name in BOOTSTRAPPED}
    assert set(trial) == {*METRIC_NAMES, *IMAGE_METRIC_NAMES, *errors}
    for name, value in trial.items():
        assert value == pytest.approx({**fitted, **refit}[name], abs=1e-6), name
