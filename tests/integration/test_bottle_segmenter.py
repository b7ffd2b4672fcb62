"""Real data: EfficientNet-Lite0 (strides 8 and 16, patch size 3) on MVTec bottle beats random scores by far."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch.nn.functional as F
from PIL import Image

from autopatch.backbones import create_encoder
from autopatch.data import load_splits
from autopatch.deploy import TorchInferencer, predict_files
from autopatch.metrics import segmentation_metrics
from autopatch.segmenter import Segmenter, evaluate_on_split

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def fitted(bottle_root: Path) -> tuple[Segmenter, object]:
    splits = load_splits(bottle_root, "bottle", k=1)
    encoder = create_encoder("efficientnet_lite0")
    assert (encoder.block(4).stride, encoder.block(10).stride) == (8, 16)
    # bank fraction 0.1 keeps the CPU test short; the full bank only scores higher
    segmenter = Segmenter(encoder, [4, 10], [3, 3], 224, bank_fraction=0.1).fit(splits.train.images)
    segmenter.fit_thresholds(splits.val.images, splits.val.masks, splits.val.is_anomalous)
    return segmenter, splits


def test_bottle_test_rwap_far_above_random_scores(fitted: tuple[Segmenter, object]) -> None:
    segmenter, splits = fitted
    result = evaluate_on_split(segmenter, splits.test)
    generator = np.random.default_rng(0)
    random_scores = generator.random(tuple(splits.test.masks.shape), dtype=np.float32)
    baseline = segmentation_metrics(random_scores, splits.test.masks.numpy(), splits.test.types)["rwap"]
    print(f"bottle k=1 test rwAP {result['rwap']:.4f} vs random-score rwAP {baseline:.4f}; "
          f"F1 {result['f1']:.4f} at the val threshold {result['threshold']:.4g}")
    assert result["rwap"] > baseline + 0.2
    assert result["auroc"] > 0.9
    assert 0.0 < result["f1"] <= 1.0


def test_bottle_predict_folder_writes_one_png_per_image(fitted: tuple[Segmenter, object], tmp_path: Path) -> None:
    segmenter, splits = fitted
    source = tmp_path / "images"
    source.mkdir()
    for path in splits.test.paths[:3]:
        shutil.copy(path, source / f"{path.parent.name}_{path.name}")
    (source / "README.txt").write_text("not an image")
    report = predict_files(TorchInferencer(segmenter), source, tmp_path / "out", batch_size=2)
    assert [p.name for p in report.skipped] == ["README.txt"] and not report.failures
    pngs = sorted(p.name for p in (tmp_path / "out").glob("*.png"))
    assert pngs == sorted(f"{p.parent.name}_{p.stem}.png" for p in splits.test.paths[:3])
    first_path = splits.test.paths[0]
    first = np.load(tmp_path / "out" / f"{first_path.parent.name}_{first_path.stem}.npy")
    width, height = Image.open(first_path).size
    assert first.shape == (height, width) != (224, 224)  # the input file's own size, not the model's
    at_model = segmenter.predict(splits.test.images[:1])  # the oracle: torch's bilinear resize of the model's map
    want = F.interpolate(at_model[None], size=(height, width), mode="bilinear", align_corners=False)[0, 0]
    # batch composition changes float summation order in the convolutions, so not bit-identical
    np.testing.assert_allclose(first, want.numpy(), rtol=1e-4, atol=1e-2)
