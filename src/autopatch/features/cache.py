"""Block outputs of a fixed encoder, computed once per study and reused by every search trial.

In the `pretrained` space the encoder weights never change between trials, only which blocks are
read and how they are pooled. Encoding the split images is then the same work every trial; caching
the block maps turns a trial into pooling + 1-NN search only.

Entries are keyed by `block_key`: (encoder family, what the block's output depends on, split name,
block id). For a fixed encoder that is its config; for an OFA sub-network it is its setting up to that
block only, so a trial that changes only patch sizes or later stages reuses the maps. A cache serves one
set of weights (one evaluator).
Maps are stored in `dtype` (float16 by default: half the memory; the rounding, ~1e-3 relative, is
far below the differences between patches that the 1-NN distance measures) on the images' device,
and handed out as float32. When the total would exceed `max_bytes`, the least recently used maps
are dropped and recomputed on their next use.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import Any

import torch

from autopatch.backbones import OFA_LAYOUT, Encoder
from autopatch.errors import AutopatchError
from autopatch.features.encoding import ENCODE_BATCH_SIZE, encode_images

# Measured with benchmarks/search.py on bottle (189 train + 23 val images), every stride>=4 block of
# Lite0, Lite1 and Lite2 together: 599 MiB as float16 at 224 px (1.2 GiB as float32), 156 MiB at 112 px.
# 2 GiB keeps all three Lite encoders plus MobileNetV2 resident at 224 px.
DEFAULT_MAX_BYTES = 2 * 2**30

CacheKey = Hashable


def block_key(family: str, config: Mapping[str, Any], split: str, block: int) -> CacheKey:
    """The cache key of `block`'s map of image set `split` from the network (`family`, `config`)."""
    if OFA_LAYOUT.is_family(family):
        return (family, OFA_LAYOUT.block_prefix(dict(config), block), split, int(block))
    return (family, json.dumps(dict(config), sort_keys=True), split, int(block))


class FeatureCache:
    """LRU store of encoder block maps [N, C, H, W], one entry per (network setting, image set, block)."""

    def __init__(
        self,
        max_bytes: int = DEFAULT_MAX_BYTES,
        dtype: torch.dtype = torch.float16,
        batch_size: int = ENCODE_BATCH_SIZE,
    ) -> None:
        if max_bytes < 0:
            raise AutopatchError(f"feature cache size must be >= 0 bytes, got {max_bytes}")
        if not dtype.is_floating_point:
            raise AutopatchError(f"feature cache dtype must be a float type, got {dtype}")
        self.max_bytes = int(max_bytes)
        self.dtype = dtype
        self.batch_size = int(batch_size)
        self._entries: OrderedDict[CacheKey, torch.Tensor] = OrderedDict()
        self._bytes = 0
        self.encodes = 0  # forward passes over a whole image set, for tests and benchmarks

    @property
    def nbytes(self) -> int:
        """Bytes held by cached maps now."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        self._entries.clear()
        self._bytes = 0

    def get(self, keys: Sequence[CacheKey]) -> list[torch.Tensor] | None:
        """float32 maps for every key (now most recently used), or None unless all are cached."""
        if any(key not in self._entries for key in keys):
            return None
        for key in keys:
            self._entries.move_to_end(key)
        return [self._entries[key].float() for key in keys]

    def put(self, maps: Mapping[CacheKey, torch.Tensor], protect: Iterable[CacheKey] = ()) -> None:
        """Store `maps` (cast to the cache dtype), evicting least recently used entries but never
        those in `protect`; a map that does not fit even then is not kept."""
        protect = set(protect)
        for key, block_map in maps.items():
            block_map = block_map.to(self.dtype)
            size = self._nbytes(block_map)
            if key in self._entries:
                self._bytes -= self._nbytes(self._entries.pop(key))
            for old in list(self._entries):
                if self._bytes + size <= self.max_bytes:
                    break
                if old not in protect:
                    self._bytes -= self._nbytes(self._entries.pop(old))
            if self._bytes + size <= self.max_bytes:
                self._entries[key] = block_map
                self._bytes += size

    def block_maps(
        self,
        encoder: Encoder | Callable[[], Encoder],
        split: str,
        images: torch.Tensor,
        block_ids: Sequence[int],
        encode_blocks: Iterable[int] = (),
        *,
        network: tuple[str, Mapping[str, Any]] | None = None,
    ) -> list[torch.Tensor]:
        """float32 maps of `block_ids` (in that order) of an encoder with fixed weights for uint8 `images`
        named `split`.

        `encoder` is the network, or a function that builds it only on a miss; then `network` =
        (family, config) names it for the keys (default: the encoder's own). On a miss the encoder runs
        once over all images up to the deepest of `block_ids` and `encode_blocks`, and stores every one of
        those blocks: pass all blocks later trials may want so the images are encoded once per study.
        """
        if network is None:
            if not isinstance(encoder, Encoder):
                raise ValueError("block_maps needs `network` when the encoder is built lazily")
            network = (encoder.family, encoder.config())
        family, config = network
        keys = [block_key(family, config, split, b) for b in block_ids]
        found = self.get(keys)
        if found is not None:
            return found
        wanted = sorted({int(b) for b in block_ids} | {int(b) for b in encode_blocks})
        net = encoder if isinstance(encoder, Encoder) else encoder()
        fresh = dict(zip(wanted, encode_images(net, images, wanted, self.batch_size, self.dtype), strict=True))
        self.encodes += 1
        self.put({block_key(family, config, split, b): fresh[b] for b in wanted}, protect=keys)
        return [fresh[int(b)].float() for b in block_ids]

    @staticmethod
    def _nbytes(block_map: torch.Tensor) -> int:
        return block_map.numel() * block_map.element_size()
