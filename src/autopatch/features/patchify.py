"""Turn block feature maps into one patch vector per location (paper Algorithm 1, the reference behaviour)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from autopatch.errors import AutopatchError


def patchify(maps: Sequence[torch.Tensor], patch_sizes: Sequence[int]) -> torch.Tensor:
    """Aggregate each map over a P x P neighbourhood, resize all to the first map, concatenate channels.

    Callers pass the highest-resolution (smallest-stride) map first: every map is resized to the
    first one's size, so a low-resolution first map throws detail away. Averaging uses zero padding
    counted in the mean (`count_include_pad=True`), as the reference does, so an even P shrinks the
    map by one pixel before the bilinear resize (align_corners=False).

    maps: [N, C_i, H_i, W_i] each; patch_sizes: one positive P per map -> [N, sum C_i, H_0, W_0].
    """
    if len(maps) == 0:
        raise AutopatchError("patchify needs at least one feature map; pass the extracted block maps")
    if len(maps) != len(patch_sizes):
        raise AutopatchError(
            f"patchify got {len(maps)} maps but {len(patch_sizes)} patch sizes; give one patch size per block"
        )
    target = tuple(maps[0].shape[-2:])
    pooled = []
    for feature_map, size in zip(maps, patch_sizes):
        if int(size) < 1:
            raise AutopatchError(f"patch size {size} is invalid; use a positive integer such as 1 or 3")
        size = int(size)
        out = feature_map
        if size > 1:
            out = F.avg_pool2d(out, kernel_size=size, stride=1, padding=(size - 1) // 2, count_include_pad=True)
        if tuple(out.shape[-2:]) != target:
            out = F.interpolate(out, size=target, mode="bilinear", align_corners=False)
        pooled.append(out)
    return torch.cat(pooled, dim=1)
