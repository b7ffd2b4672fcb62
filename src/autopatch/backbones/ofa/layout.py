"""The Once-for-All MobileNetV3 supernet's layout: the one owner of its stages, blocks, elastic choices and
family names, which the supernet, its sub-networks and the search spaces all read from here.

Blocks are numbered as in the supernet: 0 is the fixed first block, stages 1..5 hold blocks 1-4, 5-8,
9-12, 13-16, 17-20, of which the first `d[stage]` run. A setting is `{"ks": [20], "e": [20], "d": [5]}`
(kernel size and expand ratio per block 1..20, depth per stage).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from autopatch.errors import AutopatchError


@dataclass(frozen=True)
class OFALayout:
    """Stages, blocks per stage, the elastic choices and the published widths of `ofa_mbv3_d234_e346_k357`."""

    kernel_sizes: tuple[int, ...] = (3, 5, 7)
    expand_ratios: tuple[int, ...] = (3, 4, 6)
    depths: tuple[int, ...] = (2, 3, 4)
    stages: int = 5
    widths: tuple[float, ...] = (1.0, 1.2)
    family_prefix: str = "ofa_mbv3_d234_e346_k357_w"

    @property
    def blocks_per_stage(self) -> int:
        return max(self.depths)

    @property
    def elastic_blocks(self) -> int:
        """Blocks 1..20: those with a kernel size and expand ratio of their own."""
        return self.stages * self.blocks_per_stage

    @property
    def families(self) -> tuple[str, ...]:
        return tuple(self.family(width) for width in self.widths)

    def family(self, width_mult: float) -> str:
        """Registry name of the supernet family at this width, e.g. `ofa_mbv3_d234_e346_k357_w1.2`."""
        return f"{self.family_prefix}{float(width_mult)}"

    def is_family(self, name: str) -> bool:
        """True for the supernet families, whose setting (ks, e, d) is part of an architecture."""
        return name.startswith(self.family_prefix)

    def width(self, family: str) -> float:
        """The width multiplier a family name carries (`..._w1.2` -> 1.2)."""
        if not self.is_family(family):
            raise AutopatchError(f"{family!r} is not an OFA supernet family; use one of {', '.join(self.families)}")
        return float(family.removeprefix(self.family_prefix))

    def stage_blocks(self, stage: int) -> list[int]:
        """Global ids of stage 1..5 (the supernet's block_group_info; block 0 is the stem block)."""
        first = self.blocks_per_stage * (stage - 1) + 1
        return list(range(first, first + self.blocks_per_stage))

    def stage_of(self, block_id: int) -> int:
        """The stage 1..5 holding block 1..20."""
        return (block_id - 1) // self.blocks_per_stage + 1

    def block_prefix(self, config: dict[str, Any], block_id: int) -> tuple[tuple[int, int, int], ...]:
        """(block, kernel, expand) of every active block up to `block_id`: exactly what that block's output
        depends on, so two settings with the same prefix give the same map (the feature cache's key)."""
        prefix = []
        for stage in range(1, self.stage_of(block_id) + 1):
            for block in self.stage_blocks(stage)[: config["d"][stage - 1]]:
                if block <= block_id:
                    prefix.append((block, config["ks"][block - 1], config["e"][block - 1]))
        return tuple(prefix)

    def uniform_setting(self, kernel_size: int, expand_ratio: int, depth: int) -> dict[str, list[int]]:
        """The same kernel size and expand ratio for every block and one depth for every stage."""
        blocks = self.elastic_blocks
        return {"ks": [kernel_size] * blocks, "e": [expand_ratio] * blocks, "d": [depth] * self.stages}


OFA_LAYOUT = OFALayout()
