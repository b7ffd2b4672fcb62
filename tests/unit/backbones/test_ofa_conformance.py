"""The OFA MobileNetV3 supernet and its materialized sub-networks reproduce the official `ofa` package.

Oracle: ../shared/fixtures/ofa_mbv3_reference.pt, recorded by running the official implementation with
seeded random weights (see its README): block outputs, logits and full-network FLOPs for 6 settings
per width.
"""

from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from autopatch.backbones import create_encoder
from autopatch.backbones.flops import count_flops
from autopatch.backbones.ofa import OFA_LAYOUT, OFAMobileNetV3, OFASubnet

FIXTURE = Path(__file__).resolve().parents[3] / ".." / "shared" / "fixtures" / "ofa_mbv3_reference.pt"
WIDTHS = (1.0, 1.2)
N_CASES = 6


@pytest.fixture(scope="module")
def reference() -> dict:
    if not FIXTURE.is_file():
        pytest.skip(f"conformance fixture {FIXTURE} is absent")
    return torch.load(FIXTURE, weights_only=True)


@pytest.fixture(scope="module")
def supernets(reference) -> dict[float, OFAMobileNetV3]:
    nets = {}
    for width in WIDTHS:
        net = OFAMobileNetV3(width).eval()
        net.load_state_dict(reference["widths"][width]["state_dict"], strict=True)
        nets[width] = net
    return nets


def _assert_close(actual: torch.Tensor, expected: torch.Tensor, what: str) -> float:
    """max |a - e| <= 1e-4 * max(1, max |e|); returns the diff for the report."""
    assert actual.shape == expected.shape, what
    diff = (actual - expected).abs().max().item()
    assert diff <= 1e-4 * max(1.0, expected.abs().max().item()), f"{what}: max abs diff {diff}"
    return diff


def _case(reference, supernets, width, index):
    case = reference["widths"][width]["cases"][index]
    setting = case["setting"]
    net = supernets[width]
    net.set_active_subnet(setting["ks"], setting["e"], setting["d"])
    return net, case


@pytest.mark.parametrize("width", WIDTHS)
def test_fixture_state_dict_has_exactly_the_supernet_keys_and_shapes(reference, width):
    state = reference["widths"][width]["state_dict"]
    own = OFAMobileNetV3(width).state_dict()
    assert {k: tuple(v.shape) for k, v in own.items()} == {k: tuple(v.shape) for k, v in state.items()}
    assert reference["widths"][width]["block_group_info"] == OFAMobileNetV3(width).block_group_info


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("index", range(N_CASES))
def test_supernet_and_materialized_subnet_match_every_recorded_block_and_logits(reference, supernets, width, index):
    net, case = _case(reference, supernets, width, index)
    image = reference["input"].float()
    block_ids = sorted(case["block_outputs"])
    assert [b.id for b in net.blocks] == block_ids  # the active blocks are exactly the ones the official net ran
    sub = net.materialize().eval()
    assert [b.id for b in sub.blocks] == block_ids
    with torch.no_grad():
        for model in (net, sub):
            maps = model.forward_features(image, block_ids)
            for block_id, actual in zip(block_ids, maps, strict=True):
                expected = case["block_outputs"][block_id].float()
                _assert_close(actual, expected, f"{type(model).__name__} block {block_id}")
            _assert_close(model.logits(image), case["logits"].float(), f"{type(model).__name__} logits")


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("index", range(N_CASES))
def test_full_network_flops_at_224_within_two_percent(reference, width, index):
    """Counted on the meta device (shapes only); the static net is built from the setting, not materialized."""
    setting = reference["widths"][width]["cases"][index]["setting"]
    expected = reference["widths"][width]["cases"][index]["flops_224"]
    with torch.device("meta"):
        supernet = OFAMobileNetV3(width).eval()
        supernet.set_active_subnet(setting["ks"], setting["e"], setting["d"])
        static = OFASubnet(width, setting["ks"], setting["e"], setting["d"]).eval()
        image = torch.zeros(1, 3, 224, 224)
    for model in (supernet, static):
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model.logits(image)
        flops = counter.get_total_flops()
        assert abs(flops - expected) <= 0.02 * expected, (type(model).__name__, flops, expected)


@pytest.mark.parametrize("width", WIDTHS)
def test_truncation_keeps_earlier_maps_drops_parameters_and_rebuilds_from_config(reference, supernets, width):
    net, _ = _case(reference, supernets, width, 2)
    image = reference["input"].float()
    full = net.materialize().eval()
    deepest = 10
    truncated = full.truncated(deepest).eval()
    kept = [b.id for b in full.blocks if b.id <= deepest]
    assert [b.id for b in truncated.blocks] == kept
    with torch.no_grad():
        pairs = zip(full.forward_features(image, kept), truncated.forward_features(image, kept), strict=True)
        for block_id, (a, b) in zip(kept, pairs, strict=True):
            scale = max(1.0, a.abs().max().item())
            torch.testing.assert_close(b, a, rtol=0, atol=1e-6 * scale, msg=f"block {block_id}")
    n_params = lambda model: sum(p.numel() for p in model.parameters())  # noqa: E731
    assert n_params(truncated) < n_params(full)
    last = full.blocks[-1].id
    assert count_flops(truncated, [deepest], 64) == count_flops(full, [deepest], 64) < count_flops(full, [last], 64)

    rebuilt = create_encoder(OFA_LAYOUT.family(width), pretrained=False, **truncated.config())
    assert isinstance(rebuilt, OFASubnet)
    shapes = lambda model: {k: v.shape for k, v in model.state_dict().items()}  # noqa: E731
    assert shapes(rebuilt) == shapes(truncated)
    # the supernet truncates through its materialized sub-network
    assert truncated.state_dict().keys() == net.truncated(deepest).state_dict().keys()
