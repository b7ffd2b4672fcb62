"""FLOPs as the paper reports them: 2 x multiply-accumulates of convolutions and linear layers.

Counted with `torch.utils.flop_counter.FlopCounterMode` around a real forward pass rather than with
module hooks: it sees every aten convolution / matmul that actually runs, so truncation at the deepest
block, weight slicing in the OFA supernet (functional `F.conv2d` calls on sliced weights) and skipped
layers are all counted exactly, with no per-layer formulas to keep in sync. Batch norm, activations,
pooling and additions are not counted, matching the paper's convention.

The pass runs on the "meta" device (shapes only, no arithmetic): every parameter and buffer is swapped
for a meta tensor of the same shape for the duration of the count and then put back, so counting
WRN-50-2 costs milliseconds instead of a 20-GFLOP forward and the weights are never touched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from autopatch.backbones.base import Encoder
from autopatch.data import ImageSize, parse_image_size
from autopatch.errors import AutopatchError


@contextmanager
def _shapes_only(encoder: Encoder) -> Iterator[None]:
    """Temporarily replace every parameter and buffer by a same-shape meta tensor (restored on exit).

    Swapped in each module's own `_parameters`/`_buffers` (not via attribute paths), so modules whose
    attribute names are shadowed by properties (OFA's `blocks`) work too; eval mode for the pass.
    """
    saved: list[tuple[dict[str, Any], str, torch.Tensor]] = []
    was_training = encoder.training
    try:
        for module in encoder.modules():
            for store, is_parameter in ((module._parameters, True), (module._buffers, False)):
                for name, tensor in list(store.items()):
                    if tensor is not None:
                        saved.append((store, name, tensor))
                        meta = torch.empty_like(tensor, device="meta")
                        store[name] = nn.Parameter(meta, tensor.requires_grad) if is_parameter else meta
        encoder.eval()
        yield
    finally:
        for store, name, tensor in saved:
            store[name] = tensor
        encoder.train(was_training)


def _count(encoder: Encoder, image_size: int | str | ImageSize, method: Callable[[torch.Tensor], object]) -> int:
    image = torch.zeros(1, 3, *parse_image_size(image_size), device="meta")
    with _shapes_only(encoder), torch.no_grad(), FlopCounterMode(display=False) as counter:
        method(image)
    return int(counter.get_total_flops())


def count_flops(encoder: Encoder, block_ids: Sequence[int], image_size: int | str | ImageSize) -> int:
    """FLOPs of one image of `image_size` (S, "HxW" or (H, W)) through `encoder` up to its deepest requested block."""
    ids = list(block_ids)
    return _count(encoder, image_size, lambda image: encoder.forward_features(image, ids))


def count_classifier_flops(encoder: Encoder, image_size: int | str | ImageSize) -> int:
    """FLOPs of the whole classification network (`encoder.logits`), as model zoos report them."""
    logits = getattr(encoder, "logits", None)
    if logits is None:
        raise AutopatchError(f"{encoder.family} has no classifier head (logits); count_flops(...) its blocks instead")
    return _count(encoder, image_size, logits)
