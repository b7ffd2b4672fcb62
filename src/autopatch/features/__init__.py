"""Patch features from encoder block maps: the aggregations (AutoPatch's patchify, PatchCore's embedding)
and the block-output cache the search uses."""

from autopatch.features.aggregation import (
    AveragePatchify,
    PatchAggregation,
    PatchCoreEmbedding,
    create_aggregation,
    register_aggregation,
)
from autopatch.features.patchify import patchify, patchify_rows

__all__ = [
    "AveragePatchify",
    "PatchAggregation",
    "PatchCoreEmbedding",
    "create_aggregation",
    "patchify",
    "patchify_rows",
    "register_aggregation",
]
