"""Small pieces shared by several encoder families: channel rounding, conv-BN-act, block bookkeeping."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import torch
import torch.nn.functional as F
from torch import nn

from autopatch.backbones.base import BlockInfo, Encoder
from autopatch.errors import AutopatchError


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round a channel count to a multiple of `divisor`, never more than 10% down.

    This is the rule both torchvision (`_make_divisible`) and the TF EfficientNet builder
    (`round_filters`) use, so reproducing it exactly is what makes checkpoint shapes line up.
    """
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return int(rounded)


def conv_norm_act(
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    stride: int = 1,
    groups: int = 1,
    activation: type[nn.Module] | None = nn.ReLU,
    bn_eps: float = 1e-5,
    bn_momentum: float = 0.1,
) -> nn.Sequential:
    """torchvision's `Conv2dNormActivation`: keys `0` (conv, no bias), `1` (BN), `2` (activation, if any)."""
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, out_channels, kernel_size, stride, (kernel_size - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out_channels, eps=bn_eps, momentum=bn_momentum),
    ]
    if activation is not None:
        layers.append(activation(inplace=True))
    return nn.Sequential(*layers)


def features_block(index: int, stride: int, channels: int) -> BlockInfo:
    """BlockInfo of `features.<index>`; stage = output-stride group (stride 2 -> 0, 4 -> 1, ..., 32 -> 4)."""
    stage = stride.bit_length() - 2
    return BlockInfo(id=index, name=f"features.{index}", stage=stage, stride=stride, channels=channels)


def deepest_requested(encoder: Encoder, block_ids: Sequence[int]) -> int:
    """max(block_ids) after checking every id exists, so a forward can loop up to it and stop there."""
    if len(block_ids) == 0:
        raise AutopatchError(f"{encoder.family}: no blocks requested; pass at least one block id")
    return max(encoder.block(block_id).id for block_id in block_ids)


def run_up_to(
    x: torch.Tensor, layers: Sequence[nn.Module], deepest: int, block_ids: Sequence[int]
) -> list[torch.Tensor]:
    """Run `layers[0..deepest]` in order; the outputs of the layers at `block_ids` (same order)."""
    wanted = set(block_ids)
    maps: dict[int, torch.Tensor] = {}
    for index in range(deepest + 1):
        x = layers[index](x)
        if index in wanted:
            maps[index] = x
    return [maps[block_id] for block_id in block_ids]


def truncation_point(family: str, deepest_block: int | None, block_ids: Sequence[int]) -> int | None:
    """Validate a `deepest_block` constructor argument against the family's block ids (None = whole network)."""
    if deepest_block is not None and deepest_block not in block_ids:
        valid = ", ".join(str(i) for i in block_ids)
        raise AutopatchError(f"{family}: cannot truncate at block {deepest_block}; valid blocks: {valid}")
    return deepest_block


ModuleT = TypeVar("ModuleT", bound=nn.Module)


def copy_weights_into(target: ModuleT, source: nn.Module) -> ModuleT:
    """Load the part of `source`'s state dict that `target` has (a truncation) onto source's device/mode."""
    own = source.state_dict()
    target.load_state_dict({key: own[key] for key in target.state_dict()}, strict=True)
    reference = next(source.parameters())
    target.to(device=reference.device, dtype=reference.dtype)
    return target.train(source.training)


def no_classifier_error(family: str) -> AutopatchError:
    """The error `logits()` raises on a truncated encoder (it has no classifier head)."""
    return AutopatchError(f"{family} was truncated, so it has no classifier; build it with deepest_block=None")


class FeaturesEncoder(Encoder):
    """torchvision's MobileNet layout: `features[0]` is the stem, `features[i]` (i >= 1) are the blocks,
    then global average pooling and `classifier`. Truncation keeps `features[: deepest_block + 1]`
    under the same key names, so a truncated checkpoint is a prefix of the full one."""

    all_blocks: tuple[BlockInfo, ...]  # blocks of the complete network, set by each family

    def __init__(self, layers: Sequence[nn.Module], classifier: nn.Module, deepest_block: int | None) -> None:
        super().__init__()
        self.deepest_block = truncation_point(self.family, deepest_block, [b.id for b in self.all_blocks])
        keep = len(layers) if deepest_block is None else deepest_block + 1
        self.features = nn.Sequential(*layers[:keep])
        self.classifier = classifier if deepest_block is None else None

    @property
    def blocks(self) -> tuple[BlockInfo, ...]:
        last = self.all_blocks[-1].id if self.deepest_block is None else self.deepest_block
        return tuple(info for info in self.all_blocks if info.id <= last)

    def forward_features(self, x: torch.Tensor, block_ids: Sequence[int]) -> list[torch.Tensor]:
        return run_up_to(x, self.features, deepest_requested(self, block_ids), block_ids)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """ImageNet class scores of the complete network (normalised images in)."""
        if self.classifier is None:
            raise no_classifier_error(self.family)
        x = torch.flatten(F.adaptive_avg_pool2d(self.features(x), 1), 1)
        return self.classifier(x)

    def config(self) -> dict[str, Any]:
        return {"deepest_block": self.deepest_block}

    def truncated(self, deepest_block: int) -> FeaturesEncoder:
        self.block(deepest_block)
        return copy_weights_into(type(self)(deepest_block=deepest_block), self)
