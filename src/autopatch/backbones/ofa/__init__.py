"""Once-for-All elastic MobileNetV3 (the paper's search space): layout, supernet, materialized sub-networks.

`OFA_LAYOUT` is the one description of stages, blocks and elastic choices; `OFAMobileNetV3` re-implements
the official supernet (identical state-dict keys) and slices its weights on every forward; `materialize()`
copies the active sub-network into `OFASubnet`, the static network the registry hands out. `SupernetPool`
loads each width once, for a search that cuts many sub-networks from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from autopatch.backbones.layers import truncation_point
from autopatch.backbones.ofa.layout import OFA_LAYOUT, OFALayout
from autopatch.backbones.ofa.plan import active_block_ids, full_setting
from autopatch.backbones.ofa.subnet import OFASubnet
from autopatch.backbones.ofa.supernet import OFAMobileNetV3
from autopatch.backbones.registry import register_encoder
from autopatch.backbones.weights import Checkpoint, load_pretrained
from autopatch.errors import AutopatchError

__all__ = ["CHECKPOINTS", "OFA_LAYOUT", "OFALayout", "OFAMobileNetV3", "OFASubnet", "SupernetPool", "checkpoint"]

WEIGHTS_URL = "https://raw.githubusercontent.com/han-cai/files/master/ofa/ofa_nets/{net_id}"
_GIT_BLOBS = {1.0: "55d835981d8acd1053657a951b18887a724ddcbf", 1.2: "d75a3613bae216091f61fc4b7df77d49cc82ed32"}
# the official files: {"state_dict": ...}; the oldest ones call the block body `mobile_inverted_conv`
CHECKPOINTS = {
    width: Checkpoint(
        url=WEIGHTS_URL.format(net_id=OFA_LAYOUT.family(width)), filename=OFA_LAYOUT.family(width),
        checksum=f"gitsha1:{blob}", state_key="state_dict", renames=((".mobile_inverted_conv.", ".conv."),),
    )  # fmt: skip
    for width, blob in _GIT_BLOBS.items()
}


def checkpoint(width_mult: float) -> Checkpoint:
    """The published supernet checkpoint of this width."""
    if width_mult not in CHECKPOINTS:
        raise AutopatchError(f"no published OFA checkpoint for width {width_mult}; use 1.0 or 1.2")
    return CHECKPOINTS[width_mult]


def load_supernet(width_mult: float, pretrained: bool = True, weights: str | None = None) -> OFAMobileNetV3:
    """The supernet of this width in eval mode, with the official weights when `pretrained` or `weights`."""
    supernet = OFAMobileNetV3(width_mult)
    if pretrained or weights is not None:
        load_pretrained(supernet, checkpoint(width_mult), weights, truncated=False)
    return supernet.eval()


@dataclass
class SupernetPool:
    """One supernet per family, loaded on first use and kept: a search slices every trial's sub-network out
    of it instead of loading a checkpoint per trial."""

    pretrained: bool = True
    weights: str | None = None
    device: torch.device | str = "cpu"
    loaded: dict[str, OFAMobileNetV3] = field(default_factory=dict)

    def subnet(self, family: str, setting: dict[str, Any], deepest_block: int | None = None) -> OFASubnet:
        """The materialized sub-network `setting` (ks, e, d) of `family`, truncated at `deepest_block`."""
        if family not in self.loaded:
            supernet = load_supernet(OFA_LAYOUT.width(family), self.pretrained, self.weights)
            self.loaded[family] = supernet.to(self.device)
        supernet = self.loaded[family]
        supernet.set_active_subnet(setting["ks"], setting["e"], setting["d"])
        return supernet.materialize(deepest_block).eval()


def build_ofa_encoder(
    width_mult: float,
    pretrained: bool = True,
    weights: str | None = None,
    ks: Any = None,
    e: Any = None,
    d: Any = None,
    deepest_block: int | None = None,
) -> OFASubnet:
    """The materialized sub-network (ks, e, d; default: the largest) in eval mode, truncated at deepest_block.

    Random weights when `pretrained` is False and no `weights` file is given.
    """
    ks, e, d = full_setting(ks, e, d)
    truncation_point(OFA_LAYOUT.family(width_mult), deepest_block, active_block_ids(d))  # fail before loading
    if not pretrained and weights is None:
        return OFASubnet(width_mult, ks, e, d, deepest_block).eval()
    supernet = load_supernet(width_mult, pretrained, weights)
    supernet.set_active_subnet(ks, e, d)
    return supernet.materialize(deepest_block).eval()


def _register(width_mult: float) -> None:
    @register_encoder(OFA_LAYOUT.family(width_mult), checkpoint=lambda: checkpoint(width_mult))
    def factory(
        pretrained: bool = True, weights: str | None = None, ks: Any = None, e: Any = None, d: Any = None,
        deepest_block: int | None = None,
    ) -> OFASubnet:
        """OFA MobileNetV3 supernet at this width, cut to the sub-network (ks, e, d) and truncated."""
        return build_ofa_encoder(width_mult, pretrained, weights, ks, e, d, deepest_block)


for _width in OFA_LAYOUT.widths:
    _register(_width)
