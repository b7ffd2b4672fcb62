"""How a Segmenter turns block maps into patch vectors: pluggable, and named in the model file.

AutoPatch averages each map over its patch size and concatenates (`patchify`); the PatchCore baseline
uses its own embedding. A model file stores the aggregation's kind and JSON config, and `Segmenter.load`
rebuilds it here. Kinds register themselves; a kind that lives in a package the caller may not have
imported yet (the baselines) is imported on first use, so any model file loads from a plain import.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import torch

from autopatch.errors import AutopatchError
from autopatch.features import patchify


class PatchAggregation(Protocol):
    """Block maps (finest first) [N, C_i, H_i, W_i] -> patch vectors [N, C, H_0, W_0]; rebuilt from config()."""

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


_FACTORIES: dict[str, Callable[..., PatchAggregation]] = {AveragePatchify.kind: AveragePatchify}
_PROVIDERS = {"patchcore": "autopatch.baselines.patchcore"}  # imported on demand; registers its kind


def register_aggregation(kind: str, factory: Callable[..., PatchAggregation]) -> None:
    """Make `kind` loadable: `factory(**config)` must rebuild the aggregation that wrote that config."""
    _FACTORIES[kind] = factory


def create_aggregation(kind: str, config: dict[str, Any]) -> PatchAggregation:
    """The aggregation a model file names; unknown kinds are one error line listing the known ones."""
    if kind not in _FACTORIES and kind in _PROVIDERS:
        importlib.import_module(_PROVIDERS[kind])
    if kind not in _FACTORIES:
        known = ", ".join(sorted(set(_FACTORIES) | set(_PROVIDERS)))
        raise AutopatchError(f"unknown patch aggregation {kind!r} (known: {known}); upgrade autopatch")
    return _FACTORIES[kind](**config)
