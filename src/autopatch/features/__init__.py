"""Patch features from encoder block maps (and, alongside, the feature cache the search uses)."""

from autopatch.features.patchify import patchify, patchify_rows

__all__ = ["patchify", "patchify_rows"]
