"""Baselines the paper compares AutoPatch with: PatchCore on any registry encoder."""

from autopatch.baselines.patchcore import (
    BaselineResult,
    build_patchcore,
    default_layers,
    describe,
    run_baseline,
)

__all__ = [
    "BaselineResult",
    "build_patchcore",
    "default_layers",
    "describe",
    "run_baseline",
]
