"""Elastic kernel / width / depth of the OFA supernet against hand-written oracles, and its Encoder API."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from autopatch.backbones import create_encoder
from autopatch.backbones.ofa import OFA_LAYOUT, OFAMobileNetV3, OFASubnet
from autopatch.backbones.ofa.dynamic_layers import DynamicSeparableConv2d, middle_channels, se_channels
from autopatch.backbones.ofa.layers import ConvBNAct
from autopatch.errors import AutopatchError

W10 = OFA_LAYOUT.family(1.0)
SETTING = {"ks": [3, 5, 7, 3] * 5, "e": [3, 4, 6, 4] * 5, "d": [2, 3, 4, 2, 3]}


def _randomize(module: nn.Module, seed: int = 0) -> nn.Module:
    """Random weights and BN statistics so that slicing mistakes cannot hide behind identity/zero init."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in module.state_dict().items():
            if tensor.is_floating_point():
                values = torch.rand(tensor.shape, generator=generator) * 0.5 + 0.1 if "running_var" in name else (
                    torch.randn(tensor.shape, generator=generator) * 0.2
                )
                tensor.copy_(values)
    return module.eval()


def test_kernel_transform_matches_a_per_channel_numpy_oracle():
    conv = _randomize(DynamicSeparableConv2d(4, [3, 5, 7], stride=1))
    w7 = conv.conv.weight.detach().numpy()[:, 0]
    m75 = getattr(conv, "7to5_matrix").detach().numpy()
    m53 = getattr(conv, "5to3_matrix").detach().numpy()
    for c in range(4):
        w5 = (m75 @ w7[c, 1:6, 1:6].reshape(25)).reshape(5, 5)  # centre 5x5 crop, then the learned 25x25 map
        w3 = (m53 @ w5[1:4, 1:4].reshape(9)).reshape(3, 3)
        np.testing.assert_allclose(conv.active_filter(4, 5)[c, 0].detach().numpy(), w5, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(conv.active_filter(4, 3)[c, 0].detach().numpy(), w3, rtol=1e-5, atol=1e-6)
    assert torch.equal(conv.active_filter(4, 7), conv.conv.weight)
    assert torch.equal(conv.active_filter(2, 7), conv.conv.weight[:2])  # fewer channels: leading ones


def test_depthwise_forward_matches_brute_force_loops_with_same_padding_and_stride():
    conv = _randomize(DynamicSeparableConv2d(3, [3, 5, 7], stride=2), seed=1)
    x = torch.randn(1, 3, 7, 7, generator=torch.Generator().manual_seed(2))
    for k in (3, 5, 7):
        w = conv.active_filter(3, k).detach().numpy()[:, 0]
        padded = np.pad(x.numpy()[0], ((0, 0), (k // 2, k // 2), (k // 2, k // 2)))
        expected = np.zeros((3, 4, 4), dtype=np.float64)
        for c in range(3):
            for i in range(4):
                for j in range(4):
                    expected[c, i, j] = (padded[c, 2 * i:2 * i + k, 2 * j:2 * j + k] * w[c]).sum()
        with torch.no_grad():
            actual = conv(x, k)[0].numpy()
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("in_channels", "ratio", "expected"),
    [(16, 6, 96), (24, 3, 72), (24, 4, 96), (40, 6, 240), (136, 3, 408), (136, 4, 544), (192, 6, 1152)],
)
def test_middle_channels_follow_the_official_widths(in_channels, ratio, expected):
    assert middle_channels(in_channels, ratio) == expected


@pytest.mark.parametrize(("channels", "expected"), [(144, 40), (408, 104), (576, 144), (72, 24), (96, 24)])
def test_se_bottleneck_is_make_divisible_of_a_quarter(channels, expected):
    assert se_channels(channels) == expected


def test_materialized_subnet_is_plain_layers_with_the_active_kernels_and_widths():
    supernet = _randomize(OFAMobileNetV3(1.0))
    supernet.set_active_subnet(**SETTING)
    sub = supernet.materialize()
    dynamic = [type(m).__name__ for m in sub.modules() if type(m).__name__.startswith("Dynamic")]
    assert dynamic == []
    for info in sub.blocks[1:]:
        block = sub._modules["blocks"][str(info.id)].conv
        assert block.depth_conv.conv.kernel_size == (SETTING["ks"][info.id - 1],) * 2
        in_channels = block.inverted_bottleneck.conv.in_channels
        assert block.depth_conv.conv.out_channels == in_channels * SETTING["e"][info.id - 1]
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(sub.logits(x), supernet.logits(x), rtol=1e-4, atol=1e-4)


def test_block_infos_describe_the_real_maps_and_inactive_blocks_are_rejected():
    sub = OFASubnet(1.2, **SETTING).eval()
    assert [b.id for b in sub.blocks] == [0, 1, 2, 5, 6, 7, 9, 10, 11, 12, 13, 14, 17, 18, 19]
    ids = [b.id for b in sub.blocks]
    with torch.no_grad():
        maps = sub.forward_features(torch.randn(1, 3, 64, 64), ids)
    for info, feature in zip(sub.blocks, maps, strict=True):
        assert feature.shape[1:] == (info.channels, 64 // info.stride, 64 // info.stride), info
    assert [b.stage for b in sub.blocks] == [0, 1, 1, 2, 2, 2, 3, 3, 3, 3, 4, 4, 5, 5, 5]
    with pytest.raises(AutopatchError, match="no block 3"):
        sub.forward_features(torch.randn(1, 3, 64, 64), [3])


@pytest.mark.parametrize("model_kind", ["supernet", "static"])
def test_forward_features_keeps_request_order_and_stops_at_the_deepest_block(model_kind):
    if model_kind == "supernet":
        model = OFAMobileNetV3(1.0).eval()
        model.set_active_subnet(**SETTING)
        modules = model._modules["blocks"]
        ran_modules = {i: modules[i] for i in range(21)}
    else:
        model = OFASubnet(1.0, **SETTING).eval()
        ran_modules = {int(k): m for k, m in model._modules["blocks"].items()}
    ran: list[int] = []
    for block_id, module in ran_modules.items():
        module.register_forward_hook(lambda *_, i=block_id: ran.append(i))
    model.final_expand_layer.register_forward_hook(lambda *_: ran.append(-1))
    with torch.no_grad():
        maps = model.forward_features(torch.randn(1, 3, 64, 64), [6, 0, 2])
    assert [m.shape[1] for m in maps] == [40, 16, 24]
    assert ran == [0, 1, 2, 5, 6]


def test_set_active_subnet_follows_val2list_and_rejects_bad_values():
    net = OFAMobileNetV3(1.0)
    net.set_active_subnet(ks=5, e=None, d=[2, None, 3, None, 4])
    assert net.ks == [5] * 20 and net.e == [6] * 20 and net.d == [2, 4, 3, 4, 4]
    assert net.config() == {"ks": [5] * 20, "e": [6] * 20, "d": [2, 4, 3, 4, 4], "deepest_block": None}
    for bad in ({"ks": [3] * 19}, {"e": 5}, {"d": [1, 2, 3, 4, 4]}):
        with pytest.raises(AutopatchError):
            net.set_active_subnet(**bad)
    with pytest.raises(AutopatchError, match="cannot truncate at block 4"):
        OFASubnet(1.0, d=[2] * 5, deepest_block=4)


def test_registry_builds_the_static_subnet_and_rebuilds_it_from_config():
    encoder = create_encoder(W10, pretrained=False, **SETTING, deepest_block=13)
    assert isinstance(encoder, OFASubnet) and encoder.family == W10 and not encoder.training
    assert encoder.mean == (0.485, 0.456, 0.406) and encoder.std == (0.229, 0.224, 0.225)
    assert encoder.native_resolution == 224
    assert encoder.blocks[-1].id == 13 and not hasattr(encoder, "classifier")
    with pytest.raises(AutopatchError, match="no classifier"):
        encoder.logits(torch.zeros(1, 3, 32, 32))
    rebuilt = create_encoder(W10, pretrained=False, **encoder.config())
    shapes = lambda model: {k: v.shape for k, v in model.state_dict().items()}  # noqa: E731
    assert shapes(rebuilt) == shapes(encoder)
    largest = {"ks": [7] * 20, "e": [6] * 20, "d": [4] * 5, "deepest_block": None}
    assert create_encoder(W10, pretrained=False).config() == largest


def test_truncated_copy_shares_no_state():
    full = _randomize(OFASubnet(1.0, **SETTING))
    truncated = full.truncated(6)
    weight = truncated._modules["blocks"]["6"].conv.point_linear.conv.weight
    before = full._modules["blocks"]["6"].conv.point_linear.conv.weight.clone()
    with torch.no_grad():
        weight.add_(1.0)
    assert torch.equal(full._modules["blocks"]["6"].conv.point_linear.conv.weight, before)


@pytest.mark.parametrize("groups", [1, 6])
def test_static_conv_folds_batch_norm_in_eval_and_uses_batch_statistics_in_training(groups):
    layer = _randomize(ConvBNAct(6, 6, 3, stride=2, groups=groups, act="h_swish"), seed=3)
    x = torch.randn(4, 6, 9, 9, generator=torch.Generator().manual_seed(4))
    bn = layer.bn
    as_channels = lambda v: v.view(1, -1, 1, 1)  # noqa: E731
    h_swish = lambda v: v * F.relu6(v + 3) / 6  # noqa: E731
    with torch.no_grad():
        unfolded = F.conv2d(x, layer.conv.weight, None, 2, 1, 1, groups)
        normed = (unfolded - as_channels(bn.running_mean)) / torch.sqrt(as_channels(bn.running_var) + bn.eps)
        expected = h_swish(normed * as_channels(bn.weight) + as_channels(bn.bias))
        torch.testing.assert_close(layer(x), expected, rtol=1e-5, atol=1e-5)

        layer.train()
        old_mean = bn.running_mean.clone()
        batch_mean, batch_var = unfolded.mean((0, 2, 3)), unfolded.var((0, 2, 3), unbiased=False)
        normed = (unfolded - as_channels(batch_mean)) / torch.sqrt(as_channels(batch_var) + bn.eps)
        expected = h_swish(normed * as_channels(bn.weight) + as_channels(bn.bias))
        torch.testing.assert_close(layer(x), expected, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(bn.running_mean, 0.9 * old_mean + 0.1 * batch_mean)
