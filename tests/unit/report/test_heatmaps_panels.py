"""The predict PNG: panel layout checked pixel by pixel against independent computations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.ndimage import binary_erosion

from autopatch.errors import AutopatchError
from autopatch.report.heatmaps import render_prediction, save_prediction_png


def scene() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(3, 24, 24), dtype=np.uint8)
    scores = np.zeros((24, 24))
    scores[6:14, 8:18] = 5.0  # the "defect"
    return image, scores


def test_first_panel_is_the_image_and_strip_is_three_wide() -> None:
    image, scores = scene()
    strip = render_prediction(image, scores, threshold=1.0)
    assert strip.shape == (24, 72, 3) and strip.dtype == np.uint8
    np.testing.assert_array_equal(strip[:, :24], image.transpose(1, 2, 0))


def test_third_panel_outlines_exactly_the_thresholded_region() -> None:
    image, scores = scene()
    image[0] = 0  # no red in the image, so red pixels can only be the outline
    strip = render_prediction(image, scores, threshold=1.0)
    third = strip[:, 48:]
    mask = scores >= 1.0
    boundary = mask & ~binary_erosion(mask, structure=[[0, 1, 0], [1, 1, 1], [0, 1, 0]], border_value=0)
    red = (third[..., 0] == 255) & (third[..., 1] == 0) & (third[..., 2] == 0)
    np.testing.assert_array_equal(red, boundary)
    np.testing.assert_array_equal(third[~boundary], image.transpose(1, 2, 0)[~boundary])


def test_overlay_is_hot_on_the_defect_and_cold_elsewhere() -> None:
    image = np.full((3, 24, 24), 128, dtype=np.uint8)
    _, scores = scene()
    overlay = render_prediction(image, scores, threshold=1.0)[:, 24:48].astype(int)
    inside, outside = overlay[10, 12], overlay[0, 0]
    assert inside[0] > inside[2]  # jet top end is red
    assert outside[2] > outside[0]  # jet bottom end is blue


def test_without_threshold_third_panel_is_plain_image(tmp_path: Path) -> None:
    image, scores = scene()
    path = save_prediction_png(tmp_path / "x.png", image, scores, threshold=None)
    strip = np.asarray(Image.open(path).convert("RGB"))
    np.testing.assert_array_equal(strip[:, 48:], image.transpose(1, 2, 0))


def test_shape_mismatch_is_one_line_error() -> None:
    image, _ = scene()
    with pytest.raises(AutopatchError, match="matching the score map"):
        render_prediction(image, np.zeros((10, 10)), threshold=None)
