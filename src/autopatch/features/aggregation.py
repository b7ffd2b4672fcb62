"""How block maps become patch vectors: pluggable, and named in the model file.

AutoPatch averages each map over its patch size and concatenates (`AveragePatchify`, paper Algorithm 1);
the PatchCore baseline uses its embedding (`PatchCoreEmbedding`). A model file stores the aggregation's
kind and JSON config, and `create_aggregation` rebuilds it. Both kinds live here, so any model file loads
from a plain import; `register_aggregation` adds a kind of one's own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import torch

from autopatch.errors import AutopatchError
from autopatch.features.patchcore import patchcore_embed
from autopatch.features.patchify import patchify, patchify_rows


class PatchAggregation(Protocol):
    """Block maps (finest first) [N, C_i, H_i, W_i] -> patch vectors [N, C, H_0, W_0]; rebuilt from config().

    An aggregation may also define `rows(maps, rows) -> [len(rows), C]`: only those rows of the flattened
    output (image-major, then y, then x), so a caller that keeps a few bank rows computes only those.
    """

    kind: str

    def config(self) -> dict[str, Any]: ...

    def __call__(self, maps: Sequence[torch.Tensor]) -> torch.Tensor: ...


class AveragePatchify:
    """AutoPatch's aggregation (paper Algorithm 1): P x P average per block, resize, concatenate."""

    kind = "patchify"

    def __init__(self, patch_sizes: Sequence[int]) -> None:
        self.patch_sizes = [int(p) for p in patch_sizes]

    def config(self) -> dict[str, Any]:
        return {"patch_sizes": list(self.patch_sizes)}

    def __call__(self, maps: Sequence[torch.Tensor]) -> torch.Tensor:
        return patchify(maps, self.patch_sizes)

    def rows(self, maps: Sequence[torch.Tensor], rows: torch.Tensor) -> torch.Tensor:
        return patchify_rows(maps, self.patch_sizes, rows)


NEIGHBOURHOOD = 3
PRETRAIN_DIM = 1024
TARGET_DIM = 1024


class PatchCoreEmbedding:
    """PatchCore's patch features (Roth et al. 2022): maps (finest first) -> [N, target_dim, h0, w0].

    It holds no weights, only sizes, so a model file stores it as a few integers (`config()`).
    """

    kind = "patchcore"

    def __init__(
        self,
        channels: Sequence[int],
        patch_size: int = NEIGHBOURHOOD,
        pretrain_dim: int = PRETRAIN_DIM,
        target_dim: int = TARGET_DIM,
    ) -> None:
        self.channels = [int(c) for c in channels]
        self.patch_size = int(patch_size)
        self.pretrain_dim = int(pretrain_dim)
        self.target_dim = int(target_dim)
        if not self.channels or min(self.channels) < 1:
            raise AutopatchError(f"PatchCore embedding needs positive channel counts, got {self.channels}")
        if self.patch_size < 1 or self.pretrain_dim < 1 or self.target_dim < 1:
            raise AutopatchError(
                f"PatchCore embedding sizes must be positive (patch {self.patch_size}, "
                f"pretrain {self.pretrain_dim}, target {self.target_dim})"
            )

    def config(self) -> dict[str, Any]:
        return {
            "channels": list(self.channels),
            "patch_size": self.patch_size,
            "pretrain_dim": self.pretrain_dim,
            "target_dim": self.target_dim,
        }

    def __call__(self, maps: Sequence[torch.Tensor]) -> torch.Tensor:
        found = [int(m.shape[1]) for m in maps]
        if found != self.channels:
            raise AutopatchError(f"PatchCore embedding built for channels {self.channels} got maps with {found}")
        return patchcore_embed(maps, self.patch_size, self.pretrain_dim, self.target_dim)


_FACTORIES: dict[str, Callable[..., PatchAggregation]] = {
    AveragePatchify.kind: AveragePatchify,
    PatchCoreEmbedding.kind: PatchCoreEmbedding,
}


def register_aggregation(kind: str, factory: Callable[..., PatchAggregation]) -> None:
    """Make `kind` loadable: `factory(**config)` must rebuild the aggregation that wrote that config."""
    _FACTORIES[kind] = factory


def create_aggregation(kind: str, config: dict[str, Any]) -> PatchAggregation:
    """The aggregation a model file names; unknown kinds are one error line listing the known ones."""
    if kind not in _FACTORIES:
        raise AutopatchError(f"unknown patch aggregation {kind!r} (known: {', '.join(sorted(_FACTORIES))}); "
                             "upgrade autopatch")
    return _FACTORIES[kind](**config)
