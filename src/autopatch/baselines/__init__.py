"""Baselines the paper compares AutoPatch with: PatchCore on any registry encoder."""

from autopatch.baselines.patchcore import (
    BaselineResult,
    PatchCoreEmbedding,
    build_patchcore,
    default_layers,
    describe,
    run_baseline,
)

__all__ = [
    "BaselineResult",
    "PatchCoreEmbedding",
    "build_patchcore",
    "default_layers",
    "describe",
    "run_baseline",
]
