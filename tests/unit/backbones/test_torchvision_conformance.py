"""torchvision-compatible MobileNetV2 / MobileNetV3-Large / WRN-50-2 against torchvision's own recordings.

Oracle: ../shared/fixtures/torchvision_backbones.pt (state-dict keys and shapes in torchvision order, and
per-layer outputs of the MobileNets computed by torchvision with the stored random weights).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from autopatch.backbones import create_encoder
from autopatch.errors import AutopatchError

FIXTURE = Path(__file__).resolve().parents[3] / ".." / "shared" / "fixtures" / "torchvision_backbones.pt"
NAMES = ["mobilenet_v2", "mobilenet_v3_large", "wide_resnet50_2"]
MOBILENETS = ["mobilenet_v2", "mobilenet_v3_large"]


@pytest.fixture(scope="module")
def fixture() -> dict:
    if not FIXTURE.is_file():
        pytest.skip(f"torchvision fixture not found at {FIXTURE} (shared fixtures folder absent)")
    return torch.load(FIXTURE, weights_only=True)


def _fixture_state(fixture: dict, name: str) -> dict[str, torch.Tensor]:
    state = fixture["models"][name]["state_dict"]
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


def _keys(module: torch.nn.Module) -> list[tuple[str, tuple[int, ...]]]:
    return [(k, tuple(v.shape)) for k, v in module.state_dict().items()]


def _relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    return ((actual - expected).abs().max() / expected.abs().max()).item()


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_keys_shapes_and_order_match_torchvision(fixture, name) -> None:
    expected = [(k, tuple(shape)) for k, shape in fixture["models"][name]["keys"]]
    assert _keys(create_encoder(name, pretrained=False)) == expected


@pytest.mark.parametrize("name", MOBILENETS)
def test_every_recorded_layer_output_matches(fixture, name) -> None:
    model = create_encoder(name, pretrained=False)
    model.load_state_dict(_fixture_state(fixture, name), strict=True)
    recorded = fixture["models"][name]["layer_outputs"]
    ids = [int(key.split(".")[1]) for key in recorded if key != "features.0"]
    assert ids == [info.id for info in model.blocks]  # every block (features.i, i >= 1) was recorded
    with torch.no_grad():
        maps = model.forward_features(fixture["input"], ids)
    for block_id, actual in zip(ids, maps, strict=True):
        assert _relative_error(actual, recorded[f"features.{block_id}"]) <= 1e-4, block_id


@pytest.mark.parametrize("name", MOBILENETS)
def test_block_info_matches_recorded_shapes(fixture, name) -> None:
    size = fixture["input"].shape[-1]
    for info in create_encoder(name, pretrained=False).blocks:
        _, channels, height, _ = fixture["models"][name]["layer_outputs"][info.name].shape
        assert (info.channels, info.stride) == (channels, size // height)
        assert info.stage == {2: 0, 4: 1, 8: 2, 16: 3, 32: 4}[info.stride]


def test_wide_resnet_blocks_are_the_four_layers() -> None:
    model = create_encoder("wide_resnet50_2", pretrained=False)
    with torch.no_grad():
        maps = model.forward_features(torch.randn(1, 3, 64, 64), [1, 2, 3, 4])
    assert [info.name for info in model.blocks] == ["layer1", "layer2", "layer3", "layer4"]
    for info, feature in zip(model.blocks, maps, strict=True):
        assert tuple(feature.shape[1:]) == (info.channels, 64 // info.stride, 64 // info.stride)
    assert [(b.channels, b.stride) for b in model.blocks] == [(256, 4), (512, 8), (1024, 16), (2048, 32)]


@pytest.mark.parametrize("name", MOBILENETS)
def test_truncated_copy_keeps_a_key_prefix_and_the_same_outputs(fixture, name) -> None:
    model = create_encoder(name, pretrained=False)
    model.load_state_dict(_fixture_state(fixture, name))
    short = model.truncated(5)
    expected_keys = [
        (k, tuple(s))
        for k, s in fixture["models"][name]["keys"]
        if k.startswith("features.") and int(k.split(".")[1]) <= 5
    ]
    assert _keys(short) == expected_keys
    assert short.config() == {"deepest_block": 5}
    assert [info.id for info in short.blocks] == [1, 2, 3, 4, 5]
    assert _keys(create_encoder(name, pretrained=False, **short.config())) == expected_keys
    with torch.no_grad():
        maps = short.forward_features(fixture["input"], [5, 2])  # any order, returned in request order
    assert _relative_error(maps[0], fixture["models"][name]["layer_outputs"]["features.5"]) <= 1e-4
    assert _relative_error(maps[1], fixture["models"][name]["layer_outputs"]["features.2"]) <= 1e-4
    short.features[0][0].weight.data.zero_()
    assert model.features[0][0].weight.abs().sum() > 0  # the copy shares no storage


def test_wide_resnet_truncated_after_layer3_has_exactly_the_needed_keys(fixture) -> None:
    short = create_encoder("wide_resnet50_2", pretrained=False, deepest_block=3)
    kept = ("conv1.", "bn1.", "layer1.", "layer2.", "layer3.")
    expected = [(k, tuple(s)) for k, s in fixture["models"]["wide_resnet50_2"]["keys"] if k.startswith(kept)]
    assert _keys(short) == expected


@pytest.mark.parametrize("name", NAMES)
def test_forward_stops_at_the_deepest_requested_block(name) -> None:
    model = create_encoder(name, pretrained=False)
    deepest = model.blocks[1]
    calls: list[str] = []
    for info in model.blocks:
        model.get_submodule(info.name).register_forward_hook(lambda *_, n=info.name: calls.append(n))
    with torch.no_grad():
        model.forward_features(torch.randn(1, 3, 64, 64), [deepest.id])
    assert calls == [model.blocks[0].name, deepest.name]


@pytest.mark.parametrize("name", NAMES)
def test_bad_requests_are_one_line_errors(name) -> None:
    model = create_encoder(name, pretrained=False, deepest_block=2)
    with pytest.raises(AutopatchError, match="valid blocks"):
        model.forward_features(torch.randn(1, 3, 64, 64), [3])
    with pytest.raises(AutopatchError, match="no blocks requested"):
        model.forward_features(torch.randn(1, 3, 64, 64), [])
    with pytest.raises(AutopatchError, match="no classifier"):
        model.logits(torch.randn(1, 3, 64, 64))
    with pytest.raises(AutopatchError, match="cannot truncate"):
        create_encoder(name, pretrained=False, deepest_block=99)
