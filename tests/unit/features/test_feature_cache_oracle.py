"""FeatureCache hands out the same maps as calling the encoder directly, encodes once, and stays under its cap."""

import pytest
import torch
from torch import nn

from autopatch.backbones.base import BlockInfo, Encoder
from autopatch.errors import AutopatchError
from autopatch.features.cache import FeatureCache


class TwoStageEncoder(Encoder):
    """Fixed random convs: block 1 at stride 4 (6 ch), block 2 at stride 8 (10 ch); counts its forward passes."""

    family = "fake_two_stage"
    mean = (0.5, 0.5, 0.5)
    std = (0.25, 0.25, 0.25)
    native_resolution = 32

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.stage1 = nn.Conv2d(3, 6, 4, stride=4)
        self.stage2 = nn.Conv2d(6, 10, 2, stride=2)
        self.calls = 0

    @property
    def blocks(self):
        return (BlockInfo(1, "stage1", 1, 4, 6), BlockInfo(2, "stage2", 2, 8, 10))

    def forward_features(self, x, block_ids):
        self.calls += 1
        first = torch.relu(self.stage1(x))
        maps = {1: first}
        if max(block_ids) >= 2:
            maps[2] = self.stage2(first)
        return [maps[b] for b in block_ids]

    def config(self):
        return {}

    def truncated(self, deepest_block):
        return self


@pytest.fixture
def images():
    return torch.randint(0, 256, (7, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))


def _direct(encoder, images, block_ids):
    with torch.no_grad():
        return encoder.forward_features(encoder.normalize(images), block_ids)


@pytest.mark.parametrize("dtype, tolerance", [(torch.float32, 1e-6), (torch.float16, 2e-3)])
def test_cached_maps_equal_a_direct_encoder_call(images, dtype, tolerance):
    encoder = TwoStageEncoder().eval()
    cache = FeatureCache(dtype=dtype, batch_size=3)  # batches of 3 over 7 images: a ragged last batch
    for block_ids in ([1], [2], [1, 2], [2, 1]):
        got = cache.block_maps(encoder, "train", images, block_ids, encode_blocks=[1, 2])
        want = _direct(encoder, images, block_ids)
        for g, w in zip(got, want, strict=True):
            assert g.dtype == torch.float32 and g.shape == w.shape
            torch.testing.assert_close(g, w, atol=tolerance * w.abs().max().item(), rtol=tolerance)


def test_each_split_is_encoded_once_up_to_every_requested_block(images):
    encoder = TwoStageEncoder().eval()
    cache = FeatureCache(batch_size=16)
    cache.block_maps(encoder, "train", images, [1], encode_blocks=[1, 2])
    cache.block_maps(encoder, "train", images, [2])
    cache.block_maps(encoder, "train", images, [1, 2])
    assert encoder.calls == 1 and cache.encodes == 1
    cache.block_maps(encoder, "val", images[:2], [2])
    assert cache.encodes == 2
    assert len(cache) == 3  # train: blocks 1 and 2; val: block 2 only (nothing else asked for)
    assert cache.nbytes == 2 * (7 * 6 * 8 * 8 + 7 * 10 * 4 * 4 + 2 * 10 * 4 * 4)  # float16 = 2 bytes


def test_least_recently_used_maps_are_evicted_at_the_cap(images):
    encoder = TwoStageEncoder().eval()
    block1_bytes = 2 * 7 * 6 * 8 * 8
    block2_bytes = 2 * 7 * 10 * 4 * 4
    cache = FeatureCache(max_bytes=block1_bytes + block2_bytes, batch_size=16)
    cache.block_maps(encoder, "a", images, [1, 2])
    assert cache.nbytes == block1_bytes + block2_bytes
    cache.block_maps(encoder, "b", images, [2])  # evicts the oldest entry, split a's block 1
    assert cache.nbytes <= cache.max_bytes
    cache.block_maps(encoder, "a", images, [2])  # still cached
    assert cache.encodes == 2
    cache.block_maps(encoder, "a", images, [1])  # was evicted: encoded again, still correct
    assert cache.encodes == 3
    assert cache.nbytes <= cache.max_bytes


def test_maps_larger_than_the_cap_are_returned_but_not_kept(images):
    encoder = TwoStageEncoder().eval()
    cache = FeatureCache(max_bytes=10)
    got = cache.block_maps(encoder, "train", images, [1])
    torch.testing.assert_close(got[0], _direct(encoder, images, [1])[0], atol=1e-2, rtol=2e-3)
    assert len(cache) == 0 and cache.nbytes == 0


def test_bad_settings_are_rejected():
    with pytest.raises(AutopatchError, match="float"):
        FeatureCache(dtype=torch.int8)
    with pytest.raises(AutopatchError, match=">= 0"):
        FeatureCache(max_bytes=-1)
