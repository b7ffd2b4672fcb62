"""OFA_LAYOUT, the one description of the supernet's stages and blocks, against the official numbering
(block_group_info of ofa's OFAMobileNetV3: stage s holds blocks 4(s-1)+1 .. 4s) and hand-worked settings."""

import pytest

from autopatch.backbones import OFA_LAYOUT
from autopatch.backbones.ofa import OFAMobileNetV3
from autopatch.errors import AutopatchError

# stage 1 runs blocks 1, 2 (K5 E3); stage 2 runs 5, 6 (K7 E4); stage 3 runs 9, 10, 11 (K3 E6); then K3 E3
CONFIG = {"ks": [5] * 4 + [7] * 4 + [3] * 12, "e": [3] * 4 + [4] * 4 + [6] * 4 + [3] * 8, "d": [2, 2, 3, 2, 2]}


def test_stages_and_blocks_follow_the_official_block_group_info():
    official = [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12], [13, 14, 15, 16], [17, 18, 19, 20]]
    assert [OFA_LAYOUT.stage_blocks(s) for s in range(1, 6)] == official
    assert OFAMobileNetV3(1.0).block_group_info == official
    assert [OFA_LAYOUT.stage_of(b) for b in (1, 4, 5, 20)] == [1, 1, 2, 5]
    assert OFA_LAYOUT.elastic_blocks == 20


def test_family_names_and_widths_round_trip():
    assert OFA_LAYOUT.families == ("ofa_mbv3_d234_e346_k357_w1.0", "ofa_mbv3_d234_e346_k357_w1.2")
    assert [OFA_LAYOUT.width(f) for f in OFA_LAYOUT.families] == [1.0, 1.2]
    assert not OFA_LAYOUT.is_family("efficientnet_lite0")
    with pytest.raises(AutopatchError, match="not an OFA supernet family"):
        OFA_LAYOUT.width("efficientnet_lite0")


def test_block_prefix_lists_the_active_blocks_up_to_the_block():
    config = CONFIG
    assert OFA_LAYOUT.block_prefix(config, 6) == ((1, 5, 3), (2, 5, 3), (5, 7, 4), (6, 7, 4))
    assert OFA_LAYOUT.block_prefix(config, 10) == (
        (1, 5, 3), (2, 5, 3), (5, 7, 4), (6, 7, 4), (9, 3, 6), (10, 3, 6)
    )  # fmt: skip
    deeper_stage_1 = dict(config, d=[3, 2, 3, 2, 2])
    assert OFA_LAYOUT.block_prefix(deeper_stage_1, 6) != OFA_LAYOUT.block_prefix(config, 6)
    later_kernel = dict(config, ks=config["ks"][:8] + [5] * 12)
    assert OFA_LAYOUT.block_prefix(later_kernel, 6) == OFA_LAYOUT.block_prefix(config, 6)
