"""FLOPs (2 x MACs of conv + linear) against the paper, torchvision's recorded totals and hand counts."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from autopatch.backbones import create_encoder
from autopatch.backbones.flops import count_classifier_flops, count_flops

FIXTURE = Path(__file__).resolve().parents[3] / ".." / "shared" / "fixtures" / "torchvision_backbones.pt"


def test_wide_resnet_after_layer3_matches_the_paper() -> None:
    # Issue / paper: WRN-50-2 truncated after layer3 at 224 px = 18.37 GFLOPs (conv + linear only).
    full = create_encoder("wide_resnet50_2", pretrained=False)
    assert count_flops(full, [3], 224) / 1e9 == pytest.approx(18.37, abs=0.1)
    assert count_flops(full.truncated(3), [1, 3], 224) == count_flops(full, [3], 224)


@pytest.mark.parametrize("name", ["wide_resnet50_2", "mobilenet_v3_large", "mobilenet_v2"])
def test_whole_network_matches_torchvision_recording(name) -> None:
    if not FIXTURE.is_file():
        pytest.skip(f"torchvision fixture not found at {FIXTURE} (shared fixtures folder absent)")
    expected = torch.load(FIXTURE, weights_only=True)["models"][name]["flops_224_full"]
    assert count_classifier_flops(create_encoder(name, pretrained=False), 224) == pytest.approx(expected, rel=0.01)


def test_efficientnet_lite0_matches_published_macs() -> None:
    # d-li14/efficientnet-lite.pytorch lists EfficientNet-Lite0 at 0.385 G multiply-accumulates (224 px).
    flops = count_classifier_flops(create_encoder("efficientnet_lite0", pretrained=False), 224)
    assert flops / 2 / 1e9 == pytest.approx(0.385, rel=0.01)


def test_mobilenet_v2_first_block_matches_a_hand_count() -> None:
    # stem 3x3 conv 3->32 stride 2, then depthwise 3x3 on 32 channels and 1x1 32->16, all at 112x112.
    pixels = 112 * 112
    macs = pixels * 32 * 3 * 9 + pixels * 32 * 9 + pixels * 16 * 32
    model = create_encoder("mobilenet_v2", pretrained=False)
    assert count_flops(model, [1], 224) == 2 * macs


def test_counting_leaves_mode_and_batch_norm_statistics_untouched() -> None:
    model = create_encoder("mobilenet_v2", pretrained=False).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    count_flops(model, [3], 64)
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
