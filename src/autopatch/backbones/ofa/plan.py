"""The fixed (non-elastic) shape of the OFA MobileNetV3 networks: per-block widths and strides, which blocks
a depth setting activates, and the validation of (ks, e, d) settings, as in the official `ofa` package."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from autopatch.backbones.base import BlockInfo
from autopatch.backbones.layers import make_divisible
from autopatch.backbones.ofa.layout import OFA_LAYOUT
from autopatch.errors import AutopatchError

# first conv, block 0, stages 1-5, final expand, feature mix (official base_stage_width)
_BASE_WIDTHS = (16, 16, 24, 40, 80, 112, 160, 960, 1280)
# index 0 is block 0, 1..5 the stages
_STAGE_STRIDES = (1, 2, 2, 2, 1, 2)
_STAGE_ACTS = ("relu", "relu", "relu", "h_swish", "h_swish", "h_swish")
_STAGE_SE = (False, False, True, False, True, True)


@dataclass(frozen=True)
class BlockPlan:
    """Fixed (non-elastic) shape of one block: widths, its own stride and the cumulative one."""

    id: int
    stage: int
    in_channels: int
    out_channels: int
    stride: int
    total_stride: int
    act: str
    use_se: bool

    @property
    def residual(self) -> bool:
        return self.stride == 1 and self.in_channels == self.out_channels


def widths(width_mult: float) -> list[int]:
    """Channels of the first conv, block 0, stages 1-5, the final expand and the feature mix at this width."""
    return [make_divisible(w * width_mult) for w in _BASE_WIDTHS]


def block_plans(width_mult: float) -> list[BlockPlan]:
    """Plans of blocks 0..20 (block 0 is the expand-ratio-1 first block)."""
    channels = widths(width_mult)
    plans, in_channels, total_stride, block_id = [], channels[0], 2, 0
    for stage in range(OFA_LAYOUT.stages + 1):
        for i in range(1 if stage == 0 else OFA_LAYOUT.blocks_per_stage):
            stride = _STAGE_STRIDES[stage] if i == 0 else 1
            total_stride *= stride
            out = channels[stage + 1]
            act, use_se = _STAGE_ACTS[stage], _STAGE_SE[stage]
            plans.append(BlockPlan(block_id, stage, in_channels, out, stride, total_stride, act, use_se))
            in_channels, block_id = out, block_id + 1
    return plans


def active_block_ids(d: Sequence[int]) -> list[int]:
    """Block 0 plus the first d[s] blocks of every stage s."""
    stages = range(1, OFA_LAYOUT.stages + 1)
    return [0] + [block for stage in stages for block in OFA_LAYOUT.stage_blocks(stage)[: d[stage - 1]]]


def block_infos(plans: list[BlockPlan], ids: Sequence[int]) -> tuple[BlockInfo, ...]:
    return tuple(
        BlockInfo(id=i, name=f"blocks.{i}", stage=plans[i].stage, stride=plans[i].total_stride,
                  channels=plans[i].out_channels)
        for i in ids
    )


def elastic_values(name: str, value: Any, length: int, allowed: tuple[int, ...], current: list[int]) -> list[int]:
    """The official `val2list` semantics (None keeps, an int broadcasts), validated against `allowed`."""
    if value is None:
        return list(current)
    values = list(value) if isinstance(value, Iterable) else [value] * length
    if len(values) != length:
        raise AutopatchError(f"ofa_mbv3: {name} has {len(values)} entries; give {length} values from {allowed}")
    out = []
    for i, v in enumerate(values):
        if v is None:
            out.append(current[i])
        elif v in allowed:
            out.append(int(v))
        else:
            raise AutopatchError(f"ofa_mbv3: {name}[{i}]={v!r} is not allowed; use one of {allowed}")
    return out


def full_setting(ks: Any, e: Any, d: Any) -> tuple[list[int], list[int], list[int]]:
    """Complete per-block ks/e and per-stage d lists; None means the largest choice."""
    largest = OFA_LAYOUT.uniform_setting(max(OFA_LAYOUT.kernel_sizes), max(OFA_LAYOUT.expand_ratios),
                                         max(OFA_LAYOUT.depths))  # fmt: skip
    return (
        elastic_values("ks", ks, OFA_LAYOUT.elastic_blocks, OFA_LAYOUT.kernel_sizes, largest["ks"]),
        elastic_values("e", e, OFA_LAYOUT.elastic_blocks, OFA_LAYOUT.expand_ratios, largest["e"]),
        elastic_values("d", d, OFA_LAYOUT.stages, OFA_LAYOUT.depths, largest["d"]),
    )

