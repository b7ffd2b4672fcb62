"""The one way block maps are computed from uint8 images, shared by a Segmenter and the search's cache, so
a trial and the model exported from it see the same numbers.

Encoders run in channels_last memory format: oneDNN's depthwise and 1x1 kernels run ~1.5x faster on CPU
(measured on EfficientNet-Lite0), and both paths must use the same kernels to agree to the last bit.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from autopatch.backbones.base import Encoder

ENCODE_BATCH_SIZE = 32


def prepared(encoder: Encoder, device: torch.device | str) -> Encoder:
    """`encoder` on `device`, channels_last, in eval mode (in place; returned for chaining)."""
    return encoder.to(device, memory_format=torch.channels_last).eval()


def encode_batch(encoder: Encoder, images: torch.Tensor, block_ids: Sequence[int]) -> list[torch.Tensor]:
    """Block maps [B, C_i, h_i, w_i] of uint8 `images` [B,3,H,W], moved to the encoder's device."""
    device = next(encoder.parameters()).device
    x = encoder.normalize(images.to(device, non_blocking=True)).contiguous(memory_format=torch.channels_last)
    return encoder.forward_features(x, list(block_ids))


@torch.inference_mode()
def encode_images(
    encoder: Encoder,
    images: torch.Tensor,
    block_ids: Sequence[int],
    batch_size: int = ENCODE_BATCH_SIZE,
    dtype: torch.dtype | None = None,
) -> list[torch.Tensor]:
    """Block maps of uint8 `images` [N,3,S,S], encoded in batches (bounded activation memory),
    optionally cast to `dtype` batch by batch; one [N,C,H,W] tensor per id in `block_ids`."""
    encoder.eval()
    parts: list[list[torch.Tensor]] = [[] for _ in block_ids]
    for start in range(0, len(images), batch_size):
        for part, block_map in zip(parts, encode_batch(encoder, images[start : start + batch_size], block_ids),
                                   strict=True):
            part.append(block_map if dtype is None else block_map.to(dtype))
    return [torch.cat(part) for part in parts]
