"""torchvision-compatible WideResNet-50-2 (same state-dict keys), PatchCore's backbone, without torchvision.
Blocks are `layer1` .. `layer4` (ids 1..4, strides 4/8/16/32)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from autopatch.backbones.base import IMAGENET_MEAN, IMAGENET_STD, BlockInfo, Encoder
from autopatch.backbones.layers import copy_weights_into, deepest_requested, no_classifier_error, truncation_point
from autopatch.backbones.registry import register_encoder
from autopatch.backbones.weights import Checkpoint, with_pretrained

IMAGENET_CHECKPOINT = Checkpoint(
    url="https://download.pytorch.org/models/wide_resnet50_2-95faca4d.pth",
    filename="wide_resnet50_2-95faca4d.pth",
    checksum="sha256:95faca4d",
)

_DEPTHS = (3, 4, 6, 3)  # bottlenecks per layer (ResNet-50)
_PLANES = (64, 128, 256, 512)
_WIDTH_FACTOR = 2  # "wide": bottleneck inner width is 2 x planes
_EXPANSION = 4


class Bottleneck(nn.Module):
    """torchvision's ResNet v1.5 bottleneck (stride on the 3x3 conv)."""

    def __init__(self, in_channels: int, planes: int, stride: int) -> None:
        super().__init__()
        width = planes * _WIDTH_FACTOR
        out_channels = planes * _EXPANSION
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)
        out = F.relu(self.bn2(self.conv2(out)), inplace=True)
        out = self.bn3(self.conv3(out))
        return F.relu(out + identity, inplace=True)


def _layer(in_channels: int, planes: int, depth: int, stride: int) -> nn.Sequential:
    blocks = [Bottleneck(in_channels, planes, stride)]
    blocks += [Bottleneck(planes * _EXPANSION, planes, 1) for _ in range(depth - 1)]
    return nn.Sequential(*blocks)


class WideResNet50(Encoder):
    """WideResNet-50-2 with torchvision key names; truncation drops the layers after `deepest_block`."""

    family = "wide_resnet50_2"
    mean = IMAGENET_MEAN
    std = IMAGENET_STD
    native_resolution = 224
    all_blocks = tuple(
        BlockInfo(id=i, name=f"layer{i}", stage=i, stride=2 ** (i + 1), channels=_PLANES[i - 1] * _EXPANSION)
        for i in range(1, 5)
    )

    def __init__(self, deepest_block: int | None = None) -> None:
        super().__init__()
        self.deepest_block = truncation_point(self.family, deepest_block, [b.id for b in self.all_blocks])
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        in_channels = 64
        for info in self.blocks:
            planes = _PLANES[info.id - 1]
            stride = 1 if info.id == 1 else 2
            self.add_module(info.name, _layer(in_channels, planes, _DEPTHS[info.id - 1], stride))
            in_channels = planes * _EXPANSION
        self.fc = nn.Linear(in_channels, 1000) if deepest_block is None else None

    @property
    def blocks(self) -> tuple[BlockInfo, ...]:
        last = 4 if self.deepest_block is None else self.deepest_block
        return self.all_blocks[:last]

    def _stem(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)), inplace=True)
        return F.max_pool2d(x, 3, 2, 1)

    def forward_features(self, x: torch.Tensor, block_ids: Sequence[int]) -> list[torch.Tensor]:
        deepest = deepest_requested(self, block_ids)
        x = self._stem(x)
        maps: dict[int, torch.Tensor] = {}
        for layer_id in range(1, deepest + 1):
            x = self.get_submodule(f"layer{layer_id}")(x)
            maps[layer_id] = x
        return [maps[block_id] for block_id in block_ids]

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """ImageNet class scores of the complete network (normalised images in)."""
        if self.fc is None:
            raise no_classifier_error(self.family)
        x = self.forward_features(x, [4])[0]
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))

    def config(self) -> dict[str, Any]:
        return {"deepest_block": self.deepest_block}

    def truncated(self, deepest_block: int) -> WideResNet50:
        self.block(deepest_block)
        return copy_weights_into(WideResNet50(deepest_block=deepest_block), self)


@register_encoder("wide_resnet50_2", checkpoint=lambda: IMAGENET_CHECKPOINT)
def wide_resnet50_2(
    pretrained: bool = True, weights: str | None = None, deepest_block: int | None = None
) -> WideResNet50:
    """ImageNet WideResNet-50-2; weights from `weights`, $AUTOPATCH_WEIGHTS_DIR, the cache or torchvision's URL."""
    model = WideResNet50(deepest_block=deepest_block)
    return with_pretrained(model, IMAGENET_CHECKPOINT, pretrained, weights, truncated=deepest_block is not None)
