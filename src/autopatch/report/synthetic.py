"""A picture of synthetic anomalies, so a user can judge a generator on their own parts before a search uses it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from autopatch.report.heatmaps import OUTLINE_RGB, mask_outline
from autopatch.report.plotting import figure_grid, save_png

PER_ROW = 4  # anomalies per row, each as (image, mask, overlay)
PANELS = ("image", "mask", "outline")


def save_synthetic_grid(images: np.ndarray, masks: np.ndarray, kinds: Sequence[str], path: str | Path) -> Path:
    """Write a PNG of uint8 [N, H, W, 3] `images` with their bool [N, H, W] `masks`: per anomaly the image, its
    mask, and the image with the mask's outline in red, titled with its kind."""
    count = len(images)
    rows = (count + PER_ROW - 1) // PER_ROW
    columns = min(count, PER_ROW) * len(PANELS)
    height, width = images.shape[1:3]
    cell = 1.6
    figure, axes = figure_grid(rows, columns, figsize=(cell * columns * width / height, cell * rows + 0.3), dpi=100)
    for axis in axes.ravel():
        axis.axis("off")
    for index, (image, mask, kind) in enumerate(zip(images, masks, kinds, strict=True)):
        row, first = divmod(index, PER_ROW)
        outlined = image.copy()
        outlined[mask_outline(mask)] = OUTLINE_RGB
        for offset, (panel, shown) in enumerate(zip(PANELS, (image, mask, outlined), strict=True)):
            axis = axes[row][first * len(PANELS) + offset]
            axis.imshow(shown, cmap="gray" if panel == "mask" else None, vmin=0, vmax=1 if panel == "mask" else 255)
            axis.set_title(f"{index}: {kind}" if panel == "image" else panel, fontsize=7)
    return save_png(figure, path)
