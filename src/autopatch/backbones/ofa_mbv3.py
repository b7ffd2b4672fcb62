"""Once-for-All elastic MobileNetV3 (the paper's search space) and its materialized sub-networks.

`OFAMobileNetV3` re-implements the official `ofa` package's supernet `OFAMobileNetV3(width_mult=W,
ks_list=[3,5,7], expand_ratio_list=[3,4,6], depth_list=[2,3,4])` with identical state-dict keys: it
slices its max-size weights on every forward (what the search's weight-sharing relies on).
`materialize()` copies the active sub-network's sliced/transformed weights into `OFASubnet`, a static
network of plain convs and batch norms that runs faster and is what the registry hands out.

Blocks are numbered as in the supernet: 0 is the fixed first block, stages 1..5 hold blocks 1-4, 5-8,
9-12, 13-16, 17-20, of which the first `d[stage]` run.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
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
    truncation_point,
)
from autopatch.backbones.ofa_dynamic_layers import DynamicMBConvLayer, activation, middle_channels, se_channels
from autopatch.backbones.registry import register_encoder
from autopatch.backbones.weights import load_state_dict_file, load_strict, resolve_weights
from autopatch.errors import AutopatchError

KERNEL_SIZES = (3, 5, 7)
EXPAND_RATIOS = (3, 4, 6)
DEPTHS = (2, 3, 4)
N_STAGES = 5
BLOCKS_PER_STAGE = max(DEPTHS)
N_ELASTIC_BLOCKS = N_STAGES * BLOCKS_PER_STAGE
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
WEIGHTS_URL = "https://raw.githubusercontent.com/han-cai/files/master/ofa/ofa_nets/{net_id}"
_GIT_BLOBS = {1.0: "55d835981d8acd1053657a951b18887a724ddcbf", 1.2: "d75a3613bae216091f61fc4b7df77d49cc82ed32"}

# first conv, block 0, stages 1-5, final expand, feature mix (official base_stage_width)
_BASE_WIDTHS = (16, 16, 24, 40, 80, 112, 160, 960, 1280)
# index 0 is block 0, 1..5 the stages
_STAGE_STRIDES = (1, 2, 2, 2, 1, 2)
_STAGE_ACTS = ("relu", "relu", "relu", "h_swish", "h_swish", "h_swish")
_STAGE_SE = (False, False, True, False, True, True)


def family_name(width_mult: float) -> str:
    """Registry name of the supernet family at this width, e.g. `ofa_mbv3_d234_e346_k357_w1.2`."""
    return f"ofa_mbv3_d234_e346_k357_w{float(width_mult)}"


@dataclass(frozen=True)
class _BlockPlan:
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


def _widths(width_mult: float) -> list[int]:
    return [make_divisible(w * width_mult) for w in _BASE_WIDTHS]


def _block_plans(width_mult: float) -> list[_BlockPlan]:
    """Plans of blocks 0..20 (block 0 is the expand-ratio-1 first block)."""
    widths = _widths(width_mult)
    plans, in_channels, total_stride, block_id = [], widths[0], 2, 0
    for stage in range(N_STAGES + 1):
        for i in range(1 if stage == 0 else BLOCKS_PER_STAGE):
            stride = _STAGE_STRIDES[stage] if i == 0 else 1
            total_stride *= stride
            out = widths[stage + 1]
            act, use_se = _STAGE_ACTS[stage], _STAGE_SE[stage]
            plans.append(_BlockPlan(block_id, stage, in_channels, out, stride, total_stride, act, use_se))
            in_channels, block_id = out, block_id + 1
    return plans


def _active_block_ids(d: Sequence[int]) -> list[int]:
    """Block 0 plus the first d[s] blocks of every stage s."""
    return [0] + [1 + s * BLOCKS_PER_STAGE + i for s in range(N_STAGES) for i in range(d[s])]


def _block_infos(plans: list[_BlockPlan], ids: Sequence[int]) -> tuple[BlockInfo, ...]:
    return tuple(
        BlockInfo(id=i, name=f"blocks.{i}", stage=plans[i].stage, stride=plans[i].total_stride,
                  channels=plans[i].out_channels)
        for i in ids
    )


def _elastic_values(name: str, value: Any, length: int, allowed: tuple[int, ...], current: list[int]) -> list[int]:
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


def _full_setting(ks: Any, e: Any, d: Any) -> tuple[list[int], list[int], list[int]]:
    """Complete per-block ks/e and per-stage d lists; None means the largest choice."""
    return (
        _elastic_values("ks", ks, N_ELASTIC_BLOCKS, KERNEL_SIZES, [max(KERNEL_SIZES)] * N_ELASTIC_BLOCKS),
        _elastic_values("e", e, N_ELASTIC_BLOCKS, EXPAND_RATIOS, [max(EXPAND_RATIOS)] * N_ELASTIC_BLOCKS),
        _elastic_values("d", d, N_STAGES, DEPTHS, [max(DEPTHS)] * N_STAGES),
    )


# --- static layers (plain conv / bn, official key names) ---------------------------------------------


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

    def __init__(self, plan: _BlockPlan, kernel_size: int, mid_channels: int, expand: bool = True) -> None:
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


def _first_block(plan: _BlockPlan) -> ResidualBlock:
    return ResidualBlock(MBConv(plan, 3, plan.in_channels, expand=False), plan.residual)


def _add_head(net: nn.Module, width_mult: float, n_classes: int) -> None:
    """final_expand_layer, feature_mix_layer, classifier: the ImageNet head used for the logits check."""
    widths = _widths(width_mult)
    net.final_expand_layer = ConvBNAct(widths[6], widths[7], 1, act="h_swish")
    net.feature_mix_layer = nn.Sequential(
        OrderedDict(conv=nn.Conv2d(widths[7], widths[8], 1, bias=False), act=activation("h_swish"))
    )
    net.classifier = nn.Sequential(OrderedDict(linear=nn.Linear(widths[8], n_classes)))


def _head_logits(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    x = net.final_expand_layer(x).mean((2, 3), keepdim=True)
    return net.classifier(net.feature_mix_layer(x).flatten(1))


# --- the supernet ------------------------------------------------------------------------------------


class OFAMobileNetV3(Encoder):
    """Elastic supernet; as an Encoder it runs its active sub-network, slicing weights on every forward."""

    mean = IMAGENET_MEAN
    std = IMAGENET_STD
    native_resolution = 224

    def __init__(self, width_mult: float = 1.0, n_classes: int = 1000) -> None:
        super().__init__()
        self.width_mult, self.n_classes = float(width_mult), n_classes
        self.family = family_name(width_mult)
        self._plans = _block_plans(width_mult)
        self.first_conv = ConvBNAct(3, self._plans[0].in_channels, 3, 2, act="h_swish")
        blocks: list[nn.Module] = [_first_block(self._plans[0])]
        for plan in self._plans[1:]:
            layer = DynamicMBConvLayer(plan.in_channels, plan.out_channels, list(KERNEL_SIZES), list(EXPAND_RATIOS),
                                       plan.stride, plan.act, plan.use_se)
            blocks.append(ResidualBlock(layer, plan.residual))
        self._modules["blocks"] = nn.ModuleList(blocks)  # not add_module: `blocks` is the BlockInfo property
        _add_head(self, width_mult, n_classes)
        self.block_group_info = [[1 + s * BLOCKS_PER_STAGE + i for i in range(BLOCKS_PER_STAGE)]
                                 for s in range(N_STAGES)]
        self.ks, self.e, self.d = _full_setting(None, None, None)
        self.set_active_subnet(self.ks, self.e, self.d)

    def set_active_subnet(self, ks: Any = None, e: Any = None, d: Any = None) -> None:
        """Per-block kernel sizes and expand ratios (20 each, blocks 1..20) and per-stage depths (5).

        As in the official code an int applies to all entries and None keeps the current value.
        """
        self.ks = _elastic_values("ks", ks, N_ELASTIC_BLOCKS, KERNEL_SIZES, self.ks)
        self.e = _elastic_values("e", e, N_ELASTIC_BLOCKS, EXPAND_RATIOS, self.e)
        self.d = _elastic_values("d", d, N_STAGES, DEPTHS, self.d)
        for block, k, ratio in zip(self._block_modules[1:], self.ks, self.e, strict=True):
            block.conv.active_kernel_size, block.conv.active_expand_ratio = k, ratio
        self._active_ids = _active_block_ids(self.d)

    @property
    def blocks(self) -> tuple[BlockInfo, ...]:
        """The active sub-network's blocks (the modules live in `_modules["blocks"]`, keys `blocks.N`)."""
        return _block_infos(self._plans, self._active_ids)

    @property
    def _block_modules(self) -> nn.ModuleList:
        return self._modules["blocks"]  # type: ignore[return-value]

    def _run_blocks(
        self, x: torch.Tensor, deepest: int, wanted: set[int]
    ) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
        """Active blocks up to `deepest`: (last output, maps of the `wanted` blocks)."""
        maps: dict[int, torch.Tensor] = {}
        x = self.first_conv(x)
        for block_id in self._active_ids:
            if block_id > deepest:
                break
            x = self._block_modules[block_id](x)
            if block_id in wanted:
                maps[block_id] = x
        return x, maps

    def forward_features(self, x: torch.Tensor, block_ids: Sequence[int]) -> list[torch.Tensor]:
        deepest = deepest_requested(self, block_ids)
        _, maps = self._run_blocks(x, deepest, set(block_ids))
        return [maps[i] for i in block_ids]

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """ImageNet logits of the active sub-network (not part of feature extraction)."""
        x, _ = self._run_blocks(x, self._active_ids[-1], set())
        return _head_logits(self, x)

    def config(self) -> dict[str, Any]:
        return {"ks": list(self.ks), "e": list(self.e), "d": list(self.d), "deepest_block": None}

    def truncated(self, deepest_block: int) -> OFASubnet:
        """The materialized active sub-network up to `deepest_block` (a truncated supernet has no use)."""
        return self.materialize(deepest_block)

    @torch.no_grad()
    def materialize(self, deepest_block: int | None = None) -> OFASubnet:
        """A static copy of the active sub-network (sliced/transformed weights), optionally truncated."""
        with torch.device("meta"):  # shapes only: every tensor is assigned below, so skip the random init
            sub = OFASubnet(self.width_mult, self.ks, self.e, self.d, deepest_block, self.n_classes)
        wanted = sub.state_dict().keys()
        # first conv, block 0 and the head are static: their keys are the same in both networks
        state = {k: v for k, v in self.state_dict().items() if not k.startswith("blocks.") or k.startswith("blocks.0.")}
        for info in sub.blocks[1:]:
            layer_state = self._block_modules[info.id].conv.active_state_dict(self._plans[info.id].in_channels)
            state |= {f"blocks.{info.id}.conv.{k}": v for k, v in layer_state.items()}
        own = {k: state[k].clone(memory_format=torch.contiguous_format) for k in wanted}  # share no storage
        sub.load_state_dict(own, strict=True, assign=True)
        return sub.train(self.training)

    def load_checkpoint(self, path: Path) -> None:
        """Strictly load an official checkpoint file (a dict with a `state_dict` entry)."""
        checkpoint = load_state_dict_file(path)
        if not isinstance(checkpoint.get("state_dict"), dict):
            raise AutopatchError(f"{path} has no 'state_dict' entry; use the official {self.family} checkpoint")
        # the oldest official checkpoints name the block body `mobile_inverted_conv`
        state = {k.replace(".mobile_inverted_conv.", ".conv."): v for k, v in checkpoint["state_dict"].items()}
        load_strict(self, state, str(path), truncated=False)


# --- the materialized sub-network --------------------------------------------------------------------


class OFASubnet(Encoder):
    """Static sub-network of the supernet: plain convs/BNs, blocks keep their supernet numbers.

    With `deepest_block=None` it also holds the ImageNet head (`logits`); truncated copies do not.
    """

    mean = IMAGENET_MEAN
    std = IMAGENET_STD
    native_resolution = 224

    def __init__(
        self,
        width_mult: float,
        ks: Any = None,
        e: Any = None,
        d: Any = None,
        deepest_block: int | None = None,
        n_classes: int = 1000,
    ) -> None:
        super().__init__()
        self.width_mult, self.n_classes = float(width_mult), n_classes
        self.family = family_name(width_mult)
        self.ks, self.e, self.d = _full_setting(ks, e, d)
        active = _active_block_ids(self.d)
        self.deepest_block = truncation_point(self.family, deepest_block, active)
        kept = [i for i in active if deepest_block is None or i <= deepest_block]
        plans = _block_plans(width_mult)
        self._infos = _block_infos(plans, kept)
        self.first_conv = ConvBNAct(3, plans[0].in_channels, 3, 2, act="h_swish")
        blocks: dict[str, nn.Module] = {"0": _first_block(plans[0])}
        for i in kept[1:]:
            mid = middle_channels(plans[i].in_channels, self.e[i - 1])
            blocks[str(i)] = ResidualBlock(MBConv(plans[i], self.ks[i - 1], mid), plans[i].residual)
        self._modules["blocks"] = nn.ModuleDict(blocks)  # not add_module: `blocks` is the BlockInfo property
        if deepest_block is None:
            _add_head(self, width_mult, n_classes)

    @property
    def blocks(self) -> tuple[BlockInfo, ...]:
        """Kept blocks (the modules live in `_modules["blocks"]`, keys `blocks.N`)."""
        return self._infos

    def forward_features(self, x: torch.Tensor, block_ids: Sequence[int]) -> list[torch.Tensor]:
        deepest = deepest_requested(self, block_ids)
        wanted, maps = set(block_ids), {}
        x = self.first_conv(x)
        for info in self._infos:
            if info.id > deepest:
                break
            x = self._modules["blocks"][str(info.id)](x)
            if info.id in wanted:
                maps[info.id] = x
        return [maps[i] for i in block_ids]

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """ImageNet logits (only the untruncated sub-network has the head)."""
        if self.deepest_block is not None:
            raise no_classifier_error(self.family)
        x = self.first_conv(x)
        for block in self._modules["blocks"].values():
            x = block(x)
        return _head_logits(self, x)

    def config(self) -> dict[str, Any]:
        return {"ks": list(self.ks), "e": list(self.e), "d": list(self.d), "deepest_block": self.deepest_block}

    def truncated(self, deepest_block: int) -> OFASubnet:
        self.block(deepest_block)  # must be one of this network's blocks
        sub = OFASubnet(self.width_mult, self.ks, self.e, self.d, deepest_block, self.n_classes)
        return copy_weights_into(sub, self)


# --- registry ------------------------------------------------------------------------------------------


def checkpoint_path(width_mult: float, weights: str | None) -> Path:
    """The verified official checkpoint: `weights`, else $AUTOPATCH_WEIGHTS_DIR/<net_id>, else cache/download."""
    net_id = family_name(width_mult)
    if width_mult not in _GIT_BLOBS:
        raise AutopatchError(f"no published OFA checkpoint for width {width_mult}; use 1.0 or 1.2")
    checksum = f"gitsha1:{_GIT_BLOBS[width_mult]}"
    return resolve_weights(WEIGHTS_URL.format(net_id=net_id), net_id, checksum, weights)


def build_ofa_encoder(
    width_mult: float,
    pretrained: bool = True,
    weights: str | None = None,
    ks: Any = None,
    e: Any = None,
    d: Any = None,
    deepest_block: int | None = None,
) -> OFASubnet:
    """The materialized sub-network (ks, e, d; default: the largest) in eval mode, truncated at deepest_block.

    Random weights when `pretrained` is False and no `weights` file is given.
    """
    ks, e, d = _full_setting(ks, e, d)
    truncation_point(family_name(width_mult), deepest_block, _active_block_ids(d))  # fail before loading
    if not pretrained and weights is None:
        return OFASubnet(width_mult, ks, e, d, deepest_block).eval()
    supernet = OFAMobileNetV3(width_mult)
    supernet.load_checkpoint(checkpoint_path(width_mult, weights))
    supernet.set_active_subnet(ks, e, d)
    return supernet.materialize(deepest_block).eval()


@register_encoder(family_name(1.0))
def ofa_mbv3_w10(
    pretrained: bool = True, weights: str | None = None, ks: Any = None, e: Any = None, d: Any = None,
    deepest_block: int | None = None,
) -> OFASubnet:
    """OFA MobileNetV3 supernet at width 1.0, cut to the sub-network (ks, e, d) and truncated at deepest_block."""
    return build_ofa_encoder(1.0, pretrained, weights, ks, e, d, deepest_block)


@register_encoder(family_name(1.2))
def ofa_mbv3_w12(
    pretrained: bool = True, weights: str | None = None, ks: Any = None, e: Any = None, d: Any = None,
    deepest_block: int | None = None,
) -> OFASubnet:
    """OFA MobileNetV3 supernet at width 1.2 (the paper's), cut to the sub-network and truncated."""
    return build_ofa_encoder(1.2, pretrained, weights, ks, e, d, deepest_block)
