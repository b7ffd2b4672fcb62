"""The predict picture: image | heatmap overlay | thresholded-mask outline, side by side in one PNG.

Composed pixel by pixel with numpy + PIL (matplotlib only lends its colormap), so it is fast for
whole folders, needs no display, and every panel keeps the model's image size.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib import colormaps
from PIL import Image

from autopatch.errors import AutopatchError
from autopatch.files import atomic_path

OVERLAY_ALPHA = 0.5
OUTLINE_RGB = (255, 0, 0)


def mask_outline(mask: np.ndarray) -> np.ndarray:
    """Pixels of `mask` with a 4-neighbour outside it (image borders count as outside) -> bool [H, W]."""
    padded = np.pad(mask.astype(bool), 1, constant_values=False)
    interior = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return mask.astype(bool) & ~interior


def heatmap_scale(scores: np.ndarray, threshold: float | None) -> tuple[float, float]:
    """Colour range: [0, 2*threshold] when a threshold is known, so the threshold sits mid-colormap and a
    normal image stays cold; otherwise the image's own min..max (then colours only rank pixels)."""
    if threshold is not None and threshold > 0:
        return 0.0, 2.0 * float(threshold)
    low, high = float(scores.min()), float(scores.max())
    return low, (high if high > low else low + 1.0)


def overlay(image: np.ndarray, scores: np.ndarray, low: float, high: float) -> np.ndarray:
    """uint8 [H,W,3] image blended with the jet colours of `scores` scaled to [low, high]."""
    span = high - low if high > low else 1.0
    colours = colormaps["jet"](np.clip((scores - low) / span, 0.0, 1.0))[..., :3] * 255.0
    return np.round((1 - OVERLAY_ALPHA) * image + OVERLAY_ALPHA * colours).astype(np.uint8)


def render_prediction(image: np.ndarray, scores: np.ndarray, threshold: float | None) -> np.ndarray:
    """image uint8 [H,W,3] or [3,H,W], scores [H,W] -> uint8 [H, 3W, 3] panel strip.

    Without a threshold the third panel is the plain image (no mask can be drawn).
    """
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[0] == 3 and image.shape[-1] != 3:
        image = image.transpose(1, 2, 0)
    scores = np.asarray(scores, dtype=np.float64)
    if image.ndim != 3 or image.shape[-1] != 3 or image.shape[:2] != scores.shape:
        raise AutopatchError(
            f"heatmap needs an RGB image matching the score map; got image {image.shape} and scores {scores.shape}"
        )
    image = image.astype(np.uint8)
    heatmap = overlay(image, scores, *heatmap_scale(scores, threshold))
    outlined = image.copy()
    if threshold is not None:
        outlined[mask_outline(scores >= threshold)] = OUTLINE_RGB
    return np.concatenate([image, heatmap, outlined], axis=1)


def save_prediction_png(path: str | Path, image: np.ndarray, scores: np.ndarray, threshold: float | None) -> Path:
    """Render and write the panel strip as PNG; returns the path written."""
    with atomic_path(path) as tmp:
        Image.fromarray(render_prediction(image, scores, threshold)).save(tmp, format="PNG")
    return Path(path)
