"""One point of a search space: encoder, its sub-network setting, extraction blocks and patch sizes.

It is plain data (JSON round trip) so a study can store it as an Optuna user attribute and `export`
can rebuild exactly the network a trial scored, without re-running the space's sampling logic.

String form (the paper's Table 6 per-stage notation `B<block>;E<expand>;K<kernel>;P<patch>;W<width>`,
where W is the extracted block's output channels):

- OFA supernets: `ofa_w1.2 | S1:E3;K5 | S2:B6;E4;K7;P3;W48 | S3:B11;E6;K3;P2;W96` — one entry per
  stage up to the deepest extracted block. A stage without an extraction block still prints its
  expand ratio and kernel size, because they shape every later feature map.
- Fixed encoders (the `pretrained` space): `efficientnet_lite0 | B3;P5;W24 | B9;P3;W80` — one entry
  per extracted block; E and K are fixed by the network so they are left out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from autopatch.backbones import OFA_LAYOUT, BlockInfo, Encoder, create_encoder
from autopatch.errors import AutopatchError

MAX_PATCH_SIZE = 16


@dataclass(frozen=True)
class Architecture:
    """encoder: registry name; encoder_config: kwargs for `create_encoder` (OFA: ks/e/d lists, else {});
    block_ids: extraction blocks, strictly increasing (shallowest first, so patchify resizes to the
    finest map); patch_sizes: one per block, 1..16."""

    encoder: str
    encoder_config: dict[str, Any] = field(hash=False)
    block_ids: tuple[int, ...]
    patch_sizes: tuple[int, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "block_ids", tuple(int(b) for b in self.block_ids))
        object.__setattr__(self, "patch_sizes", tuple(int(p) for p in self.patch_sizes))
        if not self.block_ids:
            raise AutopatchError(f"architecture for {self.encoder} has no extraction block; select at least one block")
        if len(self.block_ids) != len(self.patch_sizes):
            raise AutopatchError(
                f"architecture has {len(self.block_ids)} blocks but {len(self.patch_sizes)} patch sizes; "
                "give one patch size per block"
            )
        if any(a >= b for a, b in zip(self.block_ids, self.block_ids[1:], strict=False)):
            raise AutopatchError(f"architecture blocks {list(self.block_ids)} must be distinct and sorted by depth")
        if any(not 1 <= p <= MAX_PATCH_SIZE for p in self.patch_sizes):
            raise AutopatchError(f"patch sizes {list(self.patch_sizes)} must each be in 1..{MAX_PATCH_SIZE}")

    @property
    def deepest_block(self) -> int:
        return self.block_ids[-1]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form; `Architecture.from_dict(json.loads(json.dumps(a.to_dict()))) == a`."""
        return {
            "encoder": self.encoder,
            "encoder_config": json.loads(json.dumps(self.encoder_config)),
            "block_ids": list(self.block_ids),
            "patch_sizes": list(self.patch_sizes),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Architecture:
        missing = {"encoder", "encoder_config", "block_ids", "patch_sizes"} - set(data)
        if missing:
            raise AutopatchError(f"stored architecture lacks {sorted(missing)}; it was not written by autopatch search")
        return cls(
            encoder=str(data["encoder"]),
            encoder_config=dict(data["encoder_config"]),
            block_ids=tuple(data["block_ids"]),
            patch_sizes=tuple(data["patch_sizes"]),
        )

    def __str__(self) -> str:
        blocks = encoder_blocks(self.encoder, _config_key(self.encoder_config))
        channels = {info.id: info.channels for info in blocks}
        patch = dict(zip(self.block_ids, self.patch_sizes, strict=True))
        if not OFA_LAYOUT.is_family(self.encoder):
            parts = [f"B{b};P{patch[b]};W{channels[b]}" for b in self.block_ids]
            return " | ".join([self.encoder, *parts])
        ks, e = self.encoder_config["ks"], self.encoder_config["e"]
        parts = [f"ofa_w{OFA_LAYOUT.width(self.encoder)}"]
        for stage in range(1, OFA_LAYOUT.stage_of(self.deepest_block) + 1):
            first = OFA_LAYOUT.stage_blocks(stage)[0]  # the setting lists index blocks 1..20 as positions 0..19
            chosen = [b for b in self.block_ids if OFA_LAYOUT.stage_of(b) == stage]
            setting = f"E{e[first - 1]};K{ks[first - 1]}"
            if chosen:
                b = chosen[0]
                parts.append(f"S{stage}:B{b};{setting};P{patch[b]};W{channels[b]}")
            else:
                parts.append(f"S{stage}:{setting}")
        return " | ".join(parts)


def encoder_prefix(arch: Architecture) -> tuple[Any, ...]:
    """What the network up to the deepest block depends on (for OFA: its setting prefix up to that block), so
    what its GFLOPs and its encoder latency depend on: architectures with one prefix share both."""
    if OFA_LAYOUT.is_family(arch.encoder):
        return (arch.encoder, OFA_LAYOUT.block_prefix(arch.encoder_config, arch.deepest_block))
    return (arch.encoder, arch.deepest_block)


def _config_key(config: dict[str, Any]) -> str:
    return json.dumps(config, sort_keys=True)


@lru_cache(maxsize=64)
def encoder_blocks(encoder: str, config_key: str = "{}") -> tuple[BlockInfo, ...]:
    """The BlockInfo list of `encoder` built from `config_key` (JSON), without weights; cached because
    building a network only to read its block table is the slow part of printing an architecture."""
    return create_encoder(encoder, pretrained=False, **json.loads(config_key)).blocks


def build_encoder(arch: Architecture, pretrained: bool = True, weights: str | None = None) -> Encoder:
    """The architecture's encoder truncated after its deepest extraction block, in eval mode."""
    encoder = create_encoder(arch.encoder, pretrained=pretrained, weights=weights, **arch.encoder_config)
    return encoder.truncated(arch.deepest_block).eval()
