"""torchvision-compatible MobileNetV2 (same state-dict keys), written here because torchvision's
PyPI build does not import with this CPU torch. Blocks are `features.1` .. `features.18`
(the last one is the final 1x1 conv to 1280 channels)."""

from __future__ import annotations

import torch
from torch import nn

from autopatch.backbones.base import IMAGENET_MEAN, IMAGENET_STD, BlockInfo
from autopatch.backbones.layers import FeaturesEncoder, conv_norm_act, features_block
from autopatch.backbones.registry import register_encoder
from autopatch.backbones.weights import Checkpoint, with_pretrained

IMAGENET_CHECKPOINT = Checkpoint(
    url="https://download.pytorch.org/models/mobilenet_v2-b0353104.pth",
    filename="mobilenet_v2-b0353104.pth",
    checksum="sha256:b0353104",
)

# (expand ratio t, output channels c, repeats n, first stride s) — MobileNetV2 paper, Table 2.
_SETTING = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))
_STEM_CHANNELS = 32
_LAST_CHANNELS = 1280


class InvertedResidual(nn.Module):
    """Expand 1x1 -> depthwise 3x3 -> linear project 1x1, with a residual when shapes allow (key `conv`)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        hidden = in_channels * expand_ratio
        self.use_residual = stride == 1 and in_channels == out_channels
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(conv_norm_act(in_channels, hidden, 1, activation=nn.ReLU6))
        layers += [
            conv_norm_act(hidden, hidden, 3, stride, groups=hidden, activation=nn.ReLU6),
            nn.Conv2d(hidden, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_residual else self.conv(x)


def _layers_and_blocks() -> tuple[list[nn.Module], tuple[BlockInfo, ...]]:
    layers: list[nn.Module] = [conv_norm_act(3, _STEM_CHANNELS, 3, 2, activation=nn.ReLU6)]
    blocks: list[BlockInfo] = []
    channels, stride = _STEM_CHANNELS, 2
    for expand_ratio, out_channels, repeats, first_stride in _SETTING:
        for repeat in range(repeats):
            block_stride = first_stride if repeat == 0 else 1
            layers.append(InvertedResidual(channels, out_channels, block_stride, expand_ratio))
            channels, stride = out_channels, stride * block_stride
            blocks.append(features_block(len(layers) - 1, stride, channels))
    layers.append(conv_norm_act(channels, _LAST_CHANNELS, 1, activation=nn.ReLU6))
    blocks.append(features_block(len(layers) - 1, stride, _LAST_CHANNELS))
    return layers, tuple(blocks)


class MobileNetV2(FeaturesEncoder):
    """MobileNetV2 (width 1.0), torchvision layout; `deepest_block=None` keeps the classifier."""

    family = "mobilenet_v2"
    mean = IMAGENET_MEAN
    std = IMAGENET_STD
    native_resolution = 224
    all_blocks = _layers_and_blocks()[1]

    def __init__(self, deepest_block: int | None = None) -> None:
        layers, _ = _layers_and_blocks()
        classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(_LAST_CHANNELS, 1000))
        super().__init__(layers, classifier, deepest_block)


@register_encoder("mobilenet_v2", checkpoint=lambda: IMAGENET_CHECKPOINT)
def mobilenet_v2(
    pretrained: bool = True, weights: str | None = None, deepest_block: int | None = None
) -> MobileNetV2:
    """ImageNet MobileNetV2; weights from `weights`, $AUTOPATCH_WEIGHTS_DIR, the cache or torchvision's URL."""
    model = MobileNetV2(deepest_block=deepest_block)
    return with_pretrained(model, IMAGENET_CHECKPOINT, pretrained, weights, truncated=deepest_block is not None)
