"""Elastic layers of the Once-for-All supernet: one set of max-size weights, sliced on every forward.

Re-implements the official `ofa` package's dynamic ops (DynamicConv2d, DynamicSeparableConv2d with
KERNEL_TRANSFORM_MODE=1, DynamicBatchNorm2d, DynamicSE, DynamicMBConvLayer) with the same module and
parameter names, so official checkpoints load with a strict key match. The elastic MBConv layer also
exports the weights of its active setting (`active_state_dict`), which is how the supernet materializes
a static sub-network.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from autopatch.backbones.layers import make_divisible

SE_REDUCTION = 4


def middle_channels(in_channels: int, expand_ratio: float) -> int:
    """Hidden width of an inverted bottleneck: the leading channels kept for this expand ratio."""
    return make_divisible(round(in_channels * expand_ratio))


def se_channels(channels: int) -> int:
    """Squeeze-and-excite bottleneck width for `channels` input channels."""
    return make_divisible(channels // SE_REDUCTION)


def activation(name: str) -> nn.Module:
    """The two activations MobileNetV3 uses; h-swish = x * relu6(x + 3) / 6 (the official Hswish)."""
    if name == "relu":
        return nn.ReLU()
    if name == "h_swish":
        return nn.Hardswish()
    raise ValueError(f"unknown activation {name!r}")


def centre_slice(kernel_size: int, sub_kernel_size: int) -> slice:
    """Rows/columns of the centred `sub_kernel_size` window inside a `kernel_size` kernel."""
    start = kernel_size // 2 - sub_kernel_size // 2
    return slice(start, start + sub_kernel_size)


class DynamicConv2d(nn.Module):
    """Pointwise conv whose active filter is the leading [out, in] block of the max weight."""

    def __init__(self, max_in_channels: int, max_out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(max_in_channels, max_out_channels, 1, bias=False)

    def active_filter(self, out_channels: int, in_channels: int) -> torch.Tensor:
        return self.conv.weight[:out_channels, :in_channels]

    def forward(self, x: torch.Tensor, out_channels: int) -> torch.Tensor:
        return F.conv2d(x, self.active_filter(out_channels, x.shape[1]).contiguous())


class DynamicSeparableConv2d(nn.Module):
    """Depthwise conv with an elastic kernel: smaller kernels are learned transforms of the centre crop.

    Going from kernel k to the next smaller k' crops the centre k'xk' of the current filter and maps
    its k'^2 taps through the `<k>to<k'>_matrix` parameter (initialised to identity); 7->3 chains 7->5->3.
    """

    def __init__(self, max_channels: int, kernel_sizes: list[int], stride: int) -> None:
        super().__init__()
        self.kernel_sizes = sorted(set(kernel_sizes))
        self.stride = stride
        max_kernel = self.kernel_sizes[-1]
        self.conv = nn.Conv2d(max_channels, max_channels, max_kernel, stride, groups=max_channels, bias=False)
        for small, large in zip(self.kernel_sizes[:-1], self.kernel_sizes[1:], strict=True):
            self.register_parameter(f"{large}to{small}_matrix", nn.Parameter(torch.eye(small * small)))

    def active_filter(self, channels: int, kernel_size: int) -> torch.Tensor:
        filters = self.conv.weight[:channels]
        for large, small in zip(self.kernel_sizes[::-1], self.kernel_sizes[-2::-1], strict=False):
            if large <= kernel_size:
                break
            window = centre_slice(large, small)
            crop = filters[:, :, window, window].reshape(channels, small * small)
            crop = F.linear(crop, getattr(self, f"{large}to{small}_matrix"))
            filters = crop.view(channels, 1, small, small)
        return filters

    def forward(self, x: torch.Tensor, kernel_size: int) -> torch.Tensor:
        channels = x.shape[1]
        filters = self.active_filter(channels, kernel_size).contiguous()
        return F.conv2d(x, filters, None, self.stride, kernel_size // 2, 1, channels)


class DynamicBatchNorm2d(nn.Module):
    """Batch norm over the leading channels of the max-size statistics and affine parameters."""

    def __init__(self, max_channels: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(max_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bn, channels = self.bn, x.shape[1]
        if channels == bn.num_features:
            return bn(x)
        momentum = 0.0
        if bn.training and bn.track_running_stats and bn.num_batches_tracked is not None:
            bn.num_batches_tracked += 1
            momentum = bn.momentum if bn.momentum is not None else 1.0 / float(bn.num_batches_tracked)
        return F.batch_norm(
            x,
            bn.running_mean[:channels],
            bn.running_var[:channels],
            bn.weight[:channels],
            bn.bias[:channels],
            bn.training or not bn.track_running_stats,
            momentum,
            bn.eps,
        )


class DynamicSE(nn.Module):
    """Squeeze-and-excite whose bottleneck shrinks with the active width: make_divisible(C // 4, 8)."""

    def __init__(self, max_channels: int) -> None:
        super().__init__()
        mid = se_channels(max_channels)
        self.fc = nn.ModuleDict(
            {"reduce": nn.Conv2d(max_channels, mid, 1, bias=True), "expand": nn.Conv2d(mid, max_channels, 1, bias=True)}
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels = x.shape[1]
        mid = se_channels(channels)
        reduce, expand = self.fc["reduce"], self.fc["expand"]
        y = x.mean((2, 3), keepdim=True)
        y = F.relu(F.conv2d(y, reduce.weight[:mid, :channels].contiguous(), reduce.bias[:mid]))
        y = F.conv2d(y, expand.weight[:channels, :mid].contiguous(), expand.bias[:channels])
        return x * F.hardsigmoid(y)


def _sliced_bn(bn: nn.BatchNorm2d, channels: int) -> dict[str, torch.Tensor]:
    return {
        "weight": bn.weight[:channels],
        "bias": bn.bias[:channels],
        "running_mean": bn.running_mean[:channels],
        "running_var": bn.running_var[:channels],
        "num_batches_tracked": bn.num_batches_tracked,
    }


class DynamicMBConvLayer(nn.Module):
    """Inverted bottleneck (1x1 expand -> elastic depthwise -> [SE] -> 1x1 project) with elastic e and k.

    `active_kernel_size` / `active_expand_ratio` are set by the supernet's `set_active_subnet`, as in
    the official implementation; the input width is read from the tensor.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_sizes: list[int],
        expand_ratios: list[float],
        stride: int,
        act: str,
        use_se: bool,
    ) -> None:
        super().__init__()
        self.stride, self.act_name, self.use_se = stride, act, use_se
        self.out_channels = out_channels
        max_mid = middle_channels(in_channels, max(expand_ratios))
        self.inverted_bottleneck = nn.ModuleDict(
            {"conv": DynamicConv2d(in_channels, max_mid), "bn": DynamicBatchNorm2d(max_mid), "act": activation(act)}
        )
        depth_conv: dict[str, nn.Module] = {
            "conv": DynamicSeparableConv2d(max_mid, kernel_sizes, stride),
            "bn": DynamicBatchNorm2d(max_mid),
            "act": activation(act),
        }
        if use_se:
            depth_conv["se"] = DynamicSE(max_mid)
        self.depth_conv = nn.ModuleDict(depth_conv)
        self.point_linear = nn.ModuleDict(
            {"conv": DynamicConv2d(max_mid, out_channels), "bn": DynamicBatchNorm2d(out_channels)}
        )
        self.active_kernel_size = max(kernel_sizes)
        self.active_expand_ratio = max(expand_ratios)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ib, dw, pl = self.inverted_bottleneck, self.depth_conv, self.point_linear
        mid = middle_channels(x.shape[1], self.active_expand_ratio)
        x = ib["act"](ib["bn"](ib["conv"](x, mid)))
        x = dw["act"](dw["bn"](dw["conv"](x, self.active_kernel_size)))
        if self.use_se:
            x = dw["se"](x)
        return pl["bn"](pl["conv"](x, self.out_channels))

    @torch.no_grad()
    def active_state_dict(self, in_channels: int) -> dict[str, torch.Tensor]:
        """Weights of the active setting under the key names of a static MBConv block (plain conv/bn).

        Mostly views of this layer's parameters: load them into a module (which copies), don't mutate them.
        """
        mid = middle_channels(in_channels, self.active_expand_ratio)
        ib, dw, pl = self.inverted_bottleneck, self.depth_conv, self.point_linear
        state = {"inverted_bottleneck.conv.weight": ib["conv"].active_filter(mid, in_channels)}
        state |= {f"inverted_bottleneck.bn.{k}": v for k, v in _sliced_bn(ib["bn"].bn, mid).items()}
        state["depth_conv.conv.weight"] = dw["conv"].active_filter(mid, self.active_kernel_size)
        state |= {f"depth_conv.bn.{k}": v for k, v in _sliced_bn(dw["bn"].bn, mid).items()}
        if self.use_se:
            se_mid = se_channels(mid)
            reduce, expand = dw["se"].fc["reduce"], dw["se"].fc["expand"]
            state["depth_conv.se.fc.reduce.weight"] = reduce.weight[:se_mid, :mid]
            state["depth_conv.se.fc.reduce.bias"] = reduce.bias[:se_mid]
            state["depth_conv.se.fc.expand.weight"] = expand.weight[:mid, :se_mid]
            state["depth_conv.se.fc.expand.bias"] = expand.bias[:mid]
        state["point_linear.conv.weight"] = pl["conv"].active_filter(self.out_channels, mid)
        state |= {f"point_linear.bn.{k}": v for k, v in _sliced_bn(pl["bn"].bn, self.out_channels).items()}
        return state
