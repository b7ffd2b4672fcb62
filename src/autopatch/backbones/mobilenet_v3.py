"""torchvision-compatible MobileNetV3-Large (same state-dict keys), without depending on torchvision.
Blocks are `features.1` .. `features.16` (the last one is the final 1x1 conv to 960 channels)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from autopatch.backbones.base import IMAGENET_MEAN, IMAGENET_STD, BlockInfo
from autopatch.backbones.layers import FeaturesEncoder, conv_norm_act, features_block, make_divisible
from autopatch.backbones.registry import register_encoder
from autopatch.backbones.weights import Checkpoint, with_pretrained

IMAGENET_CHECKPOINT = Checkpoint(
    url="https://download.pytorch.org/models/mobilenet_v3_large-8738ca79.pth",
    filename="mobilenet_v3_large-8738ca79.pth",
    checksum="sha256:8738ca79",
)

# (kernel, expanded channels, output channels, squeeze-excite, activation, stride) — MobileNetV3 paper, Table 1.
_SETTING = (
    (3, 16, 16, False, "RE", 1),
    (3, 64, 24, False, "RE", 2),
    (3, 72, 24, False, "RE", 1),
    (5, 72, 40, True, "RE", 2),
    (5, 120, 40, True, "RE", 1),
    (5, 120, 40, True, "RE", 1),
    (3, 240, 80, False, "HS", 2),
    (3, 200, 80, False, "HS", 1),
    (3, 184, 80, False, "HS", 1),
    (3, 184, 80, False, "HS", 1),
    (3, 480, 112, True, "HS", 1),
    (3, 672, 112, True, "HS", 1),
    (5, 672, 160, True, "HS", 2),
    (5, 960, 160, True, "HS", 1),
    (5, 960, 160, True, "HS", 1),
)
_STEM_CHANNELS = 16
_LAST_CONV_CHANNELS = 960
_HIDDEN_CHANNELS = 1280
# torchvision builds MobileNetV3 with BatchNorm2d(eps=0.001, momentum=0.01); eps changes eval outputs.
_BN = {"bn_eps": 0.001, "bn_momentum": 0.01}


class SqueezeExcitation(nn.Module):
    """Channel gate: global pool -> fc1 (ReLU) -> fc2 (hard sigmoid) -> scale (keys `fc1`, `fc2`)."""

    def __init__(self, channels: int, squeeze_channels: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, squeeze_channels, 1)
        self.fc2 = nn.Conv2d(squeeze_channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.fc2(F.relu(self.fc1(F.adaptive_avg_pool2d(x, 1))))
        return x * F.hardsigmoid(scale)


class InvertedResidual(nn.Module):
    """[expand 1x1] -> depthwise kxk -> [SE] -> linear project 1x1, residual when shapes allow (key `block`)."""

    def __init__(
        self, in_channels: int, kernel: int, expanded: int, out_channels: int, use_se: bool, act: str, stride: int
    ) -> None:
        super().__init__()
        activation = nn.Hardswish if act == "HS" else nn.ReLU
        self.use_residual = stride == 1 and in_channels == out_channels
        layers: list[nn.Module] = []
        if expanded != in_channels:
            layers.append(conv_norm_act(in_channels, expanded, 1, activation=activation, **_BN))
        layers.append(conv_norm_act(expanded, expanded, kernel, stride, groups=expanded, activation=activation, **_BN))
        if use_se:
            layers.append(SqueezeExcitation(expanded, make_divisible(expanded // 4, 8)))
        layers.append(conv_norm_act(expanded, out_channels, 1, activation=None, **_BN))
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x) if self.use_residual else self.block(x)


def _layers_and_blocks() -> tuple[list[nn.Module], tuple[BlockInfo, ...]]:
    layers: list[nn.Module] = [conv_norm_act(3, _STEM_CHANNELS, 3, 2, activation=nn.Hardswish, **_BN)]
    blocks: list[BlockInfo] = []
    channels, stride = _STEM_CHANNELS, 2
    for kernel, expanded, out_channels, use_se, act, block_stride in _SETTING:
        layers.append(InvertedResidual(channels, kernel, expanded, out_channels, use_se, act, block_stride))
        channels, stride = out_channels, stride * block_stride
        blocks.append(features_block(len(layers) - 1, stride, channels))
    layers.append(conv_norm_act(channels, _LAST_CONV_CHANNELS, 1, activation=nn.Hardswish, **_BN))
    blocks.append(features_block(len(layers) - 1, stride, _LAST_CONV_CHANNELS))
    return layers, tuple(blocks)


class MobileNetV3Large(FeaturesEncoder):
    """MobileNetV3-Large (width 1.0), torchvision layout; `deepest_block=None` keeps the classifier."""

    family = "mobilenet_v3_large"
    mean = IMAGENET_MEAN
    std = IMAGENET_STD
    native_resolution = 224
    all_blocks = _layers_and_blocks()[1]

    def __init__(self, deepest_block: int | None = None) -> None:
        layers, _ = _layers_and_blocks()
        classifier = nn.Sequential(
            nn.Linear(_LAST_CONV_CHANNELS, _HIDDEN_CHANNELS),
            nn.Hardswish(inplace=True),
            nn.Dropout(0.2, inplace=True),
            nn.Linear(_HIDDEN_CHANNELS, 1000),
        )
        super().__init__(layers, classifier, deepest_block)


@register_encoder("mobilenet_v3_large", checkpoint=lambda: IMAGENET_CHECKPOINT)
def mobilenet_v3_large(
    pretrained: bool = True, weights: str | None = None, deepest_block: int | None = None
) -> MobileNetV3Large:
    """ImageNet MobileNetV3-Large; weights: `weights`, $AUTOPATCH_WEIGHTS_DIR, the cache or torchvision's URL."""
    model = MobileNetV3Large(deepest_block=deepest_block)
    return with_pretrained(model, IMAGENET_CHECKPOINT, pretrained, weights, truncated=deepest_block is not None)
