"""The materialized OFA sub-network: a static network of plain convs and batch norms (faster than slicing
the supernet on every forward), and what the registry hands out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from autopatch.backbones.base import IMAGENET_MEAN, IMAGENET_STD, BlockInfo, Encoder
from autopatch.backbones.layers import copy_weights_into, deepest_requested, no_classifier_error, truncation_point
from autopatch.backbones.ofa.dynamic_layers import middle_channels
from autopatch.backbones.ofa.layers import ConvBNAct, MBConv, ResidualBlock, add_head, first_block, head_logits
from autopatch.backbones.ofa.layout import OFA_LAYOUT
from autopatch.backbones.ofa.plan import active_block_ids, block_infos, block_plans, full_setting


class OFASubnet(Encoder):
    """Static sub-network of the supernet: plain convs/BNs, blocks keep their supernet numbers.

    With `deepest_block=None` it also holds the ImageNet head (`logits`); truncated copies do not.
    """

    mean = IMAGENET_MEAN
    std = IMAGENET_STD
    native_resolution = 224

    def __init__(
        self,
        width_mult: float,
        ks: Any = None,
        e: Any = None,
        d: Any = None,
        deepest_block: int | None = None,
        n_classes: int = 1000,
    ) -> None:
        super().__init__()
        self.width_mult, self.n_classes = float(width_mult), n_classes
        self.family = OFA_LAYOUT.family(width_mult)
        self.ks, self.e, self.d = full_setting(ks, e, d)
        active = active_block_ids(self.d)
        self.deepest_block = truncation_point(self.family, deepest_block, active)
        kept = [i for i in active if deepest_block is None or i <= deepest_block]
        plans = block_plans(width_mult)
        self._infos = block_infos(plans, kept)
        self.first_conv = ConvBNAct(3, plans[0].in_channels, 3, 2, act="h_swish")
        blocks: dict[str, nn.Module] = {"0": first_block(plans[0])}
        for i in kept[1:]:
            mid = middle_channels(plans[i].in_channels, self.e[i - 1])
            blocks[str(i)] = ResidualBlock(MBConv(plans[i], self.ks[i - 1], mid), plans[i].residual)
        self._modules["blocks"] = nn.ModuleDict(blocks)  # not add_module: `blocks` is the BlockInfo property
        if deepest_block is None:
            add_head(self, width_mult, n_classes)

    @property
    def blocks(self) -> tuple[BlockInfo, ...]:
        """Kept blocks (the modules live in `_modules["blocks"]`, keys `blocks.N`)."""
        return self._infos

    def forward_features(self, x: torch.Tensor, block_ids: Sequence[int]) -> list[torch.Tensor]:
        deepest = deepest_requested(self, block_ids)
        wanted, maps = set(block_ids), {}
        x = self.first_conv(x)
        for info in self._infos:
            if info.id > deepest:
                break
            x = self._modules["blocks"][str(info.id)](x)
            if info.id in wanted:
                maps[info.id] = x
        return [maps[i] for i in block_ids]

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """ImageNet logits (only the untruncated sub-network has the head)."""
        if self.deepest_block is not None:
            raise no_classifier_error(self.family)
        x = self.first_conv(x)
        for block in self._modules["blocks"].values():
            x = block(x)
        return head_logits(self, x)

    def config(self) -> dict[str, Any]:
        return {"ks": list(self.ks), "e": list(self.e), "d": list(self.d), "deepest_block": self.deepest_block}

    def truncated(self, deepest_block: int) -> OFASubnet:
        self.block(deepest_block)  # must be one of this network's blocks
        sub = OFASubnet(self.width_mult, self.ks, self.e, self.d, deepest_block, self.n_classes)
        return copy_weights_into(sub, self)

