"""PatchCore's patch embedding (Roth et al. 2022), computed in the order that is cheapest (the `patchcore`
aggregation of `features.aggregation`).

The original (amazon-science/patchcore-inspection) unfolds each layer into 3x3 neighbourhoods, resizes the
deeper layers' neighbourhoods to the first layer's grid, mean-pools every flattened neighbourhood to
`pretrain_dim` values (adaptive_avg_pool1d), stacks the layers and mean-pools again to `target_dim`.
Pooling acts on the values of one location and bilinear resizing mixes locations with weights that are
the same for every value, so the two commute: pooling first and resizing the `pretrain_dim`-channel map
gives the same numbers while the resize touches 1024 channels instead of C*9 (WRN-50-2 layer3: 9216).
Pooling runs as adaptive_avg_pool2d over the channel axis of the unfolded map, so nothing is transposed
and the cost stays linear in the neighbourhood size (a dense [C*9, 1024] projection would cost more
than a small encoder).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def pool_channels(x: torch.Tensor, out_dim: int) -> torch.Tensor:
    """[N, D, L] -> [N, out_dim, L]: adaptive_avg_pool1d of every column x[n, :, l]."""
    n, _, length = x.shape
    return F.adaptive_avg_pool2d(x.unsqueeze(1), (out_dim, length)).view(n, out_dim, length)


def patchcore_embed(
    maps: Sequence[torch.Tensor], patch_size: int = 3, pretrain_dim: int = 1024, target_dim: int = 1024
) -> torch.Tensor:
    """Layer maps [N,C_l,h_l,w_l] (highest resolution first) -> PatchCore embeddings [N, target_dim, h_0, w_0]."""
    if not maps:
        raise ValueError("patchcore_embed needs at least one feature map")
    n = maps[0].shape[0]
    size = tuple(maps[0].shape[-2:])
    pooled = []
    for feature_map in maps:
        h, w = feature_map.shape[-2:]
        neighbourhoods = F.unfold(feature_map, kernel_size=patch_size, padding=(patch_size - 1) // 2)  # [N, C*P*P, h*w]
        layer = pool_channels(neighbourhoods, pretrain_dim).view(n, pretrain_dim, h, w)
        if (h, w) != size:
            layer = F.interpolate(layer, size=size, mode="bilinear", align_corners=False)
        pooled.append(layer)
    stacked = torch.cat(pooled, dim=1).flatten(2)  # [N, layers*pretrain_dim, h0*w0]
    return pool_channels(stacked, target_dim).view(n, target_dim, *size)
