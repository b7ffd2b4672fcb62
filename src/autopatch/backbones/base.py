"""The one interface every encoder family implements, so features, FLOPs and model files stay generic."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from autopatch.errors import AutopatchError

# torchvision's ImageNet normalisation (on [0, 1] pixels), shared by every family trained with it
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PATCHCORE_STRIDES = (8, 16)  # PatchCore's feature levels: WRN-50-2 layer2 and layer3


@dataclass(frozen=True)
class BlockInfo:
    """One extractable block: `id` is what users pass in `--blocks`; `stage` groups blocks by resolution."""

    id: int
    name: str
    stage: int
    stride: int
    channels: int


class Encoder(nn.Module, ABC):
    """A feature extractor that runs only as far as the deepest requested block.

    Subclasses set `family` (the registry name), `mean`/`std` (input normalisation on [0, 1] pixels)
    and `native_resolution`, and are built by `create_encoder(family, **config())`.
    """

    family: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    native_resolution: int

    @property
    @abstractmethod
    def blocks(self) -> tuple[BlockInfo, ...]:
        """The extractable blocks in forward order (only those this instance actually has)."""

    @abstractmethod
    def forward_features(self, x: torch.Tensor, block_ids: Sequence[int]) -> list[torch.Tensor]:
        """Normalised images [N,3,H,W] -> one feature map per id in `block_ids` (same order).

        Runs the network only up to max(block_ids); never raises to stop early.
        """

    @abstractmethod
    def config(self) -> dict[str, Any]:
        """JSON-serialisable constructor kwargs that rebuild this exact architecture (no weights)."""

    @abstractmethod
    def truncated(self, deepest_block: int) -> Encoder:
        """A copy holding only the layers needed up to `deepest_block` (shares no state with self)."""

    def block(self, block_id: int) -> BlockInfo:
        """The BlockInfo of `block_id`, with an error that lists the valid ids."""
        for info in self.blocks:
            if info.id == block_id:
                return info
        valid = ", ".join(str(b.id) for b in self.blocks)
        raise AutopatchError(f"{self.family} has no block {block_id}; valid blocks: {valid}")

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 [N,3,H,W] (any device) -> float32 normalised with this encoder's mean/std."""
        x = images.float().div_(255.0)
        mean = torch.tensor(self.mean, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
        return x.sub_(mean).div_(std)


def patchcore_blocks(blocks: Sequence[BlockInfo], family: str) -> tuple[int, int]:
    """PatchCore's choice on any encoder: the last block of the stride-8 and of the stride-16 stage
    (WRN-50-2: layer2, layer3; EfficientNet-Lite0: blocks 4 and 10)."""
    chosen = []
    for stride in PATCHCORE_STRIDES:
        ids = [info.id for info in blocks if info.stride == stride]
        if not ids:
            strides = sorted({info.stride for info in blocks})
            raise AutopatchError(
                f"{family} has no stride-{stride} block (strides {strides}); pass --layers with two block ids"
            )
        chosen.append(ids[-1])
    return chosen[0], chosen[1]
