"""Image sizes as users write them (S, "HxW", pairs), their checks, and keep-aspect's resolved size, against
sizes worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from autopatch.errors import AutopatchError
from autopatch.image_size import image_size_spec, keep_aspect_size, parse_image_size, resolve_image_size


@pytest.mark.parametrize(("value", "want"), [
    (224, (224, 224)), ("128", (128, 128)), ("224x560", (224, 560)), (" 64 X 32 ", (64, 32)), ((96, 64), (96, 64)),
    ([48, 48], (48, 48)),
])  # fmt: skip
def test_sizes_are_read_as_height_then_width(value, want):
    assert parse_image_size(value) == want


@pytest.mark.parametrize("value", [0, -3, 2.5, True, "abc", "224x", "0x64", (64,), (64, 0), "100x200", (224, 500)])
def test_bad_sizes_name_the_value_and_the_fix(value):
    with pytest.raises(AutopatchError, match=r"image_size=.* is invalid: .*(224x560|multiples of 16)"):
        parse_image_size(value)


def test_a_non_square_size_off_the_grid_suggests_the_nearest_valid_one():
    with pytest.raises(AutopatchError, match="e.g. 96x208"):
        parse_image_size("100x200")


def test_a_square_size_is_recorded_as_the_int_studies_always_held():
    assert image_size_spec("224") == 224 and image_size_spec((64, 64)) == 64
    assert image_size_spec((224, 560)) == "224x560"


@pytest.mark.parametrize(("shorter", "height", "width", "want"), [
    (224, 500, 1250, (224, 560)),   # 224 * 2.5 = 560, already on the grid
    (224, 1250, 500, (560, 224)),   # portrait: the height is the longer side
    (128, 300, 400, (128, 176)),    # 128 * 4/3 = 170.7 -> nearest multiple of 16 is 176
    (128, 300, 430, (128, 176)),    # 183.5 -> 176
    (128, 300, 440, (128, 192)),    # 187.7 -> 192
    (64, 100, 100, (64, 64)),
    (64, 100, 110, (64, 64)),       # 70.4 rounds back to the shorter side
])  # fmt: skip
def test_keep_aspect_scales_the_longer_side_and_rounds_it_to_16(shorter, height, width, want):
    assert keep_aspect_size(shorter, height, width) == want


def test_keep_aspect_reads_the_reference_image(tmp_path):
    path = tmp_path / "part.png"
    Image.fromarray(np.zeros((100, 250, 3), np.uint8)).save(path)  # 250 wide, 100 high
    assert resolve_image_size(64, "keep-aspect", path) == (64, 160)
    assert resolve_image_size(64, "stretch", path) == (64, 64)


@pytest.mark.parametrize(("value", "resize", "match"), [
    ("64x128", "keep-aspect", "takes the shorter side as one number"),
    (100, "keep-aspect", "multiple of 16 .got 100., e.g. --image-size 96"),
    (64, "squash", "--resize 'squash' is unknown; use one of stretch, keep-aspect"),
])  # fmt: skip
def test_bad_keep_aspect_settings_fail_in_one_line(tmp_path, value, resize, match):
    path = tmp_path / "part.png"
    Image.fromarray(np.zeros((100, 250, 3), np.uint8)).save(path)
    with pytest.raises(AutopatchError, match=match):
        resolve_image_size(value, resize, path)
