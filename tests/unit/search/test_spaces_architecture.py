"""Architecture: Table-6 style strings, JSON round trip, validation, the truncated encoder."""

import json

import pytest
import torch

from autopatch.errors import AutopatchError
from autopatch.search.architecture import Architecture, build_encoder

W12 = "ofa_mbv3_d234_e346_k357_w1.2"


def _ofa_arch():
    # stage 1: K5 E3, no block; stage 2: K7 E4, block 6 (2nd of 5..8); stage 3: K3 E6, block 11 (3rd of 9..12)
    ks = [5] * 4 + [7] * 4 + [3] * 4 + [7] * 8
    e = [3] * 4 + [4] * 4 + [6] * 4 + [6] * 8
    return Architecture(W12, {"ks": ks, "e": e, "d": [2, 2, 3, 2, 2]}, (6, 11), (3, 2))


def test_ofa_string_lists_each_stage_up_to_the_deepest_block():
    # channels of OFA w1.2: make_divisible(40 * 1.2) = 48, make_divisible(80 * 1.2) = 96
    assert str(_ofa_arch()) == "ofa_w1.2 | S1:E3;K5 | S2:B6;E4;K7;P3;W48 | S3:B11;E6;K3;P2;W96"


def test_pretrained_string_lists_each_extracted_block():
    arch = Architecture("efficientnet_lite0", {}, (2, 9), (5, 1))
    # Lite0: block 2 is the 2nd 24-channel block, block 9 a 112-channel block
    assert str(arch) == "efficientnet_lite0 | B2;P5;W24 | B9;P1;W112"


@pytest.mark.parametrize("arch", [_ofa_arch(), Architecture("efficientnet_lite1", {}, (3, 8, 20), (1, 16, 4))])
def test_json_round_trip(arch):
    text = json.dumps(arch.to_dict())
    back = Architecture.from_dict(json.loads(text))
    assert back == arch
    assert str(back) == str(arch)


@pytest.mark.parametrize(
    "blocks, patches, message",
    [((), (), "no extraction block"), ((3, 2), (1, 1), "sorted"), ((2, 2), (1, 1), "sorted"),
     ((2,), (1, 3), "one patch size per block"), ((2,), (17,), "1..16"), ((2,), (0,), "1..16")],
)
def test_invalid_architectures_are_rejected(blocks, patches, message):
    with pytest.raises(AutopatchError, match=message):
        Architecture("efficientnet_lite0", {}, blocks, patches)


def test_from_dict_names_missing_keys():
    with pytest.raises(AutopatchError, match="patch_sizes"):
        Architecture.from_dict({"encoder": "efficientnet_lite0", "encoder_config": {}, "block_ids": [1]})


def test_build_encoder_truncates_at_the_deepest_block():
    arch = Architecture("efficientnet_lite0", {}, (2, 6), (3, 3))
    encoder = build_encoder(arch, pretrained=False)
    assert [b.id for b in encoder.blocks][-1] == 6
    maps = encoder.forward_features(torch.zeros(1, 3, 64, 64), [2, 6])
    assert [m.shape[1] for m in maps] == [24, 80]
