"""The elastic OFA MobileNetV3 supernet: slices its max-size weights on every forward (what the search's
weight sharing relies on); `materialize()` copies the active sub-network into a static `OFASubnet`.

It re-implements the official `ofa` package's `OFAMobileNetV3(width_mult=W, ks_list=[3,5,7],
expand_ratio_list=[3,4,6], depth_list=[2,3,4])` with identical state-dict keys.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from autopatch.backbones.base import IMAGENET_MEAN, IMAGENET_STD, BlockInfo, Encoder
from autopatch.backbones.layers import deepest_requested
from autopatch.backbones.ofa.dynamic_layers import DynamicMBConvLayer
from autopatch.backbones.ofa.layers import ConvBNAct, ResidualBlock, add_head, first_block, head_logits
from autopatch.backbones.ofa.layout import OFA_LAYOUT
from autopatch.backbones.ofa.plan import active_block_ids, block_infos, block_plans, elastic_values, full_setting
from autopatch.backbones.ofa.subnet import OFASubnet


class OFAMobileNetV3(Encoder):
    """Elastic supernet; as an Encoder it runs its active sub-network, slicing weights on every forward."""

    mean = IMAGENET_MEAN
    std = IMAGENET_STD
    native_resolution = 224

    def __init__(self, width_mult: float = 1.0, n_classes: int = 1000) -> None:
        super().__init__()
        self.width_mult, self.n_classes = float(width_mult), n_classes
        self.family = OFA_LAYOUT.family(width_mult)
        self._plans = block_plans(width_mult)
        self.first_conv = ConvBNAct(3, self._plans[0].in_channels, 3, 2, act="h_swish")
        blocks: list[nn.Module] = [first_block(self._plans[0])]
        for plan in self._plans[1:]:
            layer = DynamicMBConvLayer(plan.in_channels, plan.out_channels, list(OFA_LAYOUT.kernel_sizes),
                                       list(OFA_LAYOUT.expand_ratios), plan.stride, plan.act, plan.use_se)
            blocks.append(ResidualBlock(layer, plan.residual))
        self._modules["blocks"] = nn.ModuleList(blocks)  # not add_module: `blocks` is the BlockInfo property
        add_head(self, width_mult, n_classes)
        self.block_group_info = [OFA_LAYOUT.stage_blocks(stage) for stage in range(1, OFA_LAYOUT.stages + 1)]
        self.ks, self.e, self.d = full_setting(None, None, None)
        self.set_active_subnet(self.ks, self.e, self.d)

    def set_active_subnet(self, ks: Any = None, e: Any = None, d: Any = None) -> None:
        """Per-block kernel sizes and expand ratios (20 each, blocks 1..20) and per-stage depths (5).

        As in the official code an int applies to all entries and None keeps the current value.
        """
        self.ks = elastic_values("ks", ks, OFA_LAYOUT.elastic_blocks, OFA_LAYOUT.kernel_sizes, self.ks)
        self.e = elastic_values("e", e, OFA_LAYOUT.elastic_blocks, OFA_LAYOUT.expand_ratios, self.e)
        self.d = elastic_values("d", d, OFA_LAYOUT.stages, OFA_LAYOUT.depths, self.d)
        for block, k, ratio in zip(self._block_modules[1:], self.ks, self.e, strict=True):
            block.conv.active_kernel_size, block.conv.active_expand_ratio = k, ratio
        self._active_ids = active_block_ids(self.d)

    @property
    def blocks(self) -> tuple[BlockInfo, ...]:
        """The active sub-network's blocks (the modules live in `_modules["blocks"]`, keys `blocks.N`)."""
        return block_infos(self._plans, self._active_ids)

    @property
    def _block_modules(self) -> nn.ModuleList:
        return self._modules["blocks"]  # type: ignore[return-value]

    def _run_blocks(
        self, x: torch.Tensor, deepest: int, wanted: set[int]
    ) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
        """Active blocks up to `deepest`: (last output, maps of the `wanted` blocks)."""
        maps: dict[int, torch.Tensor] = {}
        x = self.first_conv(x)
        for block_id in self._active_ids:
            if block_id > deepest:
                break
            x = self._block_modules[block_id](x)
            if block_id in wanted:
                maps[block_id] = x
        return x, maps

    def forward_features(self, x: torch.Tensor, block_ids: Sequence[int]) -> list[torch.Tensor]:
        deepest = deepest_requested(self, block_ids)
        _, maps = self._run_blocks(x, deepest, set(block_ids))
        return [maps[i] for i in block_ids]

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """ImageNet logits of the active sub-network (not part of feature extraction)."""
        x, _ = self._run_blocks(x, self._active_ids[-1], set())
        return head_logits(self, x)

    def config(self) -> dict[str, Any]:
        return {"ks": list(self.ks), "e": list(self.e), "d": list(self.d), "deepest_block": None}

    def truncated(self, deepest_block: int) -> OFASubnet:
        """The materialized active sub-network up to `deepest_block` (a truncated supernet has no use)."""
        return self.materialize(deepest_block)

    @torch.no_grad()
    def materialize(self, deepest_block: int | None = None) -> OFASubnet:
        """A static copy of the active sub-network (sliced/transformed weights), optionally truncated."""
        with torch.device("meta"):  # shapes only: every tensor is assigned below, so skip the random init
            sub = OFASubnet(self.width_mult, self.ks, self.e, self.d, deepest_block, self.n_classes)
        wanted = sub.state_dict().keys()
        # first conv, block 0 and the head are static: their keys are the same in both networks
        state = {k: v for k, v in self.state_dict().items() if not k.startswith("blocks.") or k.startswith("blocks.0.")}
        for info in sub.blocks[1:]:
            layer_state = self._block_modules[info.id].conv.active_state_dict(self._plans[info.id].in_channels)
            state |= {f"blocks.{info.id}.conv.{k}": v for k, v in layer_state.items()}
        own = {k: state[k].clone(memory_format=torch.contiguous_format) for k in wanted}  # share no storage
        sub.load_state_dict(own, strict=True, assign=True)
        return sub.train(self.training)
