"""Static OFA layers (plain conv / bn, the official key names) that the materialized sub-network and the
supernet's fixed parts are built from."""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from autopatch.backbones.ofa.dynamic_layers import activation, se_channels
from autopatch.backbones.ofa.plan import BlockPlan, widths


class SqueezeExcite(nn.Module):
    """x * h_sigmoid(expand(relu(reduce(mean(x))))), the official SEModule."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        mid = se_channels(channels)
        self.fc = nn.Sequential(
            OrderedDict(
                reduce=nn.Conv2d(channels, mid, 1), relu=nn.ReLU(), expand=nn.Conv2d(mid, channels, 1),
                h_sigmoid=nn.Hardsigmoid(),
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.fc(x.mean((2, 3), keepdim=True))


class ConvBNAct(nn.Module):
    """conv (no bias) -> batch norm -> optional activation -> optional SE, with the official key names.

    In eval mode the batch norm is folded into the conv's weight and bias on every forward: one pass
    over the activations instead of two, which is where the static network gains over the sliced one.
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, groups: int = 1,
        act: str | None = None, use_se: bool = False,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2, groups=groups,
                              bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.act = activation(act) if act is not None else None
        self.se = SqueezeExcite(out_channels) if use_se else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv, bn = self.conv, self.bn
        if bn.training:
            x = bn(conv(x))
        else:
            scale = bn.weight * torch.rsqrt(bn.running_var + bn.eps)
            bias = bn.bias - bn.running_mean * scale
            x = F.conv2d(x, conv.weight * scale.view(-1, 1, 1, 1), bias, conv.stride, conv.padding, 1, conv.groups)
        if self.act is not None:
            x = self.act(x)
        return self.se(x) if self.se is not None else x


class MBConv(nn.Module):
    """Static inverted bottleneck; `expand=False` is block 0 (no 1x1 expansion)."""

    def __init__(self, plan: BlockPlan, kernel_size: int, mid_channels: int, expand: bool = True) -> None:
        super().__init__()
        self.inverted_bottleneck = (
            ConvBNAct(plan.in_channels, mid_channels, 1, act=plan.act) if expand else None
        )
        self.depth_conv = ConvBNAct(
            mid_channels, mid_channels, kernel_size, plan.stride, mid_channels, plan.act, plan.use_se
        )
        self.point_linear = ConvBNAct(mid_channels, plan.out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.inverted_bottleneck is not None:
            x = self.inverted_bottleneck(x)
        return self.point_linear(self.depth_conv(x))


class ResidualBlock(nn.Module):
    """`conv(x) (+ x)`; the official ResidualBlock with an identity shortcut (no parameters)."""

    def __init__(self, conv: nn.Module, residual: bool) -> None:
        super().__init__()
        self.conv, self.residual = conv, residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return y + x if self.residual else y


def first_block(plan: BlockPlan) -> ResidualBlock:
    return ResidualBlock(MBConv(plan, 3, plan.in_channels, expand=False), plan.residual)


def add_head(net: nn.Module, width_mult: float, n_classes: int) -> None:
    """final_expand_layer, feature_mix_layer, classifier: the ImageNet head used for the logits check."""
    channels = widths(width_mult)
    net.final_expand_layer = ConvBNAct(channels[6], channels[7], 1, act="h_swish")
    net.feature_mix_layer = nn.Sequential(
        OrderedDict(conv=nn.Conv2d(channels[7], channels[8], 1, bias=False), act=activation("h_swish"))
    )
    net.classifier = nn.Sequential(OrderedDict(linear=nn.Linear(channels[8], n_classes)))


def head_logits(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    x = net.final_expand_layer(x).mean((2, 3), keepdim=True)
    return net.classifier(net.feature_mix_layer(x).flatten(1))
