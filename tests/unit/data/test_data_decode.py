"""Decoding against independent expectations: hand-drawn pixels, a numpy triangle-filter resize, known footprints."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from autopatch.data import load_images, load_readable_images
from autopatch.data.decode import decode_image, decode_mask, decode_pairs
from autopatch.errors import AutopatchError


def _save(path: Path, array: np.ndarray, mode: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode=mode).save(path)
    return path


def _triangle_resize_1d(x: np.ndarray, out: int, axis: int) -> np.ndarray:
    """Textbook antialiased bilinear: triangle filter widened by the shrink factor, pixel centres at i + 0.5."""
    n = x.shape[axis]
    scale = n / out
    support = max(scale, 1.0)
    weights = np.zeros((out, n))
    for i in range(out):
        centre = (i + 0.5) * scale
        for j in range(n):
            weights[i, j] = max(0.0, 1.0 - abs(j + 0.5 - centre) / support)
        weights[i] /= weights[i].sum()
    return np.moveaxis(np.tensordot(weights, np.moveaxis(x, axis, 0), axes=1), 0, axis)


def _oracle_resize(image: np.ndarray, size: int) -> np.ndarray:
    return _triangle_resize_1d(_triangle_resize_1d(image.astype(np.float64), size, 1), size, 0)


def test_image_at_target_size_is_kept_exactly(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (6, 6, 3), dtype=np.uint8)
    images = load_images([_save(tmp_path / "a.png", rgb)], 6)
    assert images.dtype == torch.uint8 and images.shape == (1, 3, 6, 6)
    assert np.array_equal(images[0].permute(1, 2, 0).numpy(), rgb)


def test_grey_image_becomes_three_equal_channels(tmp_path):
    grey = np.arange(16, dtype=np.uint8).reshape(4, 4) * 15
    images = load_images([_save(tmp_path / "g.png", grey)], 4)
    for c in range(3):
        assert np.array_equal(images[0, c].numpy(), grey)


def test_rgba_and_palette_images_decode_to_rgb(tmp_path):
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 50
    palette = Image.new("P", (4, 4), 0)
    palette.putpalette([10, 20, 30] + [0] * 765)
    palette.save(tmp_path / "p.png")
    images = load_images([_save(tmp_path / "a.png", rgba, "RGBA"), tmp_path / "p.png"], 4)
    assert images[0, :, 0, 0].tolist() == [200, 0, 0]
    assert images[1, :, 0, 0].tolist() == [10, 20, 30]


@pytest.mark.parametrize("source, target", [((16, 12), 6), ((8, 8), 4), ((5, 7), 9)])
def test_resize_matches_triangle_filter_oracle(tmp_path, source, target):
    h, w = source
    rgb = np.random.default_rng(1).integers(0, 256, (h, w, 3), dtype=np.uint8)
    got = load_images([_save(tmp_path / "r.png", rgb)], target)[0].permute(1, 2, 0).numpy().astype(int)
    expected = _oracle_resize(rgb, target)
    assert got.shape == (target, target, 3)
    assert np.abs(got - expected).max() <= 1.0  # PIL rounds to uint8 between its two passes


def test_mask_single_pixel_spreads_to_its_bilinear_footprint(tmp_path):
    mask = np.zeros((8, 8), dtype=np.uint8)
    mask[3, 3] = 255
    got = decode_mask(_save(tmp_path / "m_mask.png", mask), 4, (8, 8))
    # Halving: output i averages source rows 2i-1..2i+2 (weights 1/8, 3/8, 3/8, 1/8); row 3 feeds i = 1 and 2.
    expected = np.zeros((4, 4), dtype=bool)
    expected[1:3, 1:3] = True
    assert got.dtype == bool and np.array_equal(got, expected)


def test_mask_any_nonzero_value_counts_and_mode_1_masks_work(tmp_path):
    faint = np.zeros((4, 4), dtype=np.uint8)
    faint[0, 0] = 1
    assert decode_mask(_save(tmp_path / "f_mask.png", faint), 4).sum() == 1
    binary = Image.new("1", (4, 4), 0)
    binary.putpixel((2, 1), 1)
    binary.save(tmp_path / "b_mask.png")
    got = decode_mask(tmp_path / "b_mask.png", 4)
    assert got.sum() == 1 and got[1, 2]


def test_pairs_give_false_masks_for_normal_images_and_check_mask_size(tmp_path):
    image = _save(tmp_path / "i.png", np.full((4, 6, 3), 7, np.uint8))
    mask_array = np.zeros((4, 6), np.uint8)
    mask_array[:, :3] = 255
    mask = _save(tmp_path / "i_mask.png", mask_array)
    images, masks = decode_pairs([(image, None), (image, mask)], 4)
    assert images.shape == (2, 3, 4, 4) and bool((images == 7).all())
    assert masks.dtype == torch.bool and not masks[0].any()
    assert masks[1, :, :2].all() and not masks[1, :, 3].any()
    wrong = _save(tmp_path / "w_mask.png", np.zeros((5, 6), np.uint8))
    with pytest.raises(AutopatchError, match=r"w_mask\.png is 6x5 but its image is 6x4"):
        decode_pairs([(image, wrong)], 4)


def test_unreadable_zero_byte_and_missing_files_name_the_path(tmp_path):
    garbage = tmp_path / "garbage.png"
    garbage.write_bytes(b"this is not a png")
    empty = tmp_path / "empty.png"
    empty.touch()
    truncated = tmp_path / "truncated.png"
    _save(tmp_path / "full.png", np.random.default_rng(2).integers(0, 256, (32, 32, 3), dtype=np.uint8))
    truncated.write_bytes((tmp_path / "full.png").read_bytes()[:200])
    for path, reason in [(garbage, "cannot read image"), (empty, r"empty \(0 bytes\)"),
                         (truncated, "cannot read image"), (tmp_path / "absent.png", "does not exist")]:
        with pytest.raises(AutopatchError, match=reason) as info:
            load_images([tmp_path / "full.png", path], 8)
        message = str(info.value)
        assert str(path) in message and "\n" not in message and ":" in message


def test_load_readable_images_skips_and_reports_bad_files_in_order(tmp_path):
    good_a = _save(tmp_path / "a.png", np.full((3, 3, 3), 11, np.uint8))
    bad = tmp_path / "b.png"
    bad.write_bytes(b"nope")
    good_c = _save(tmp_path / "c.png", np.full((5, 5), 22, np.uint8))
    result = load_readable_images([good_a, bad, str(good_c)], 4, workers=2)
    assert result.paths == [good_a, good_c]
    assert result.images.shape == (2, 3, 4, 4)
    assert bool((result.images[0] == 11).all()) and bool((result.images[1] == 22).all())
    assert [p for p, _ in result.failures] == [bad]
    assert str(bad) in result.failures[0][1]


def test_many_files_keep_input_order_with_threads(tmp_path):
    paths = [_save(tmp_path / f"{i:03d}.png", np.full((4, 4, 3), i, np.uint8)) for i in range(40)]
    images = load_images(list(reversed(paths)), 2, workers=4)
    assert images[:, 0, 0, 0].tolist() == list(range(39, -1, -1))


def test_empty_path_list_and_bad_image_size(tmp_path):
    assert load_images([], 5).shape == (0, 3, 5, 5)
    for size in (0, -3, 2.5, True):
        with pytest.raises(AutopatchError, match="image_size"):
            load_images([], size)


@pytest.mark.parametrize("bits", [16, 32])
def test_a_wide_grey_image_decodes_like_its_8_bit_version(tmp_path, bits):
    eight = (np.arange(48 * 40).reshape(48, 40) % 256).astype(np.uint8)
    Image.fromarray(eight, "L").save(tmp_path / "eight.png")
    wide = eight.astype(np.uint32) * 257  # the same picture at 16 bits per pixel (0..65535)
    path = tmp_path / ("wide.png" if bits == 16 else "wide.tif")  # PNG holds 16-bit grey, TIFF 32-bit ints
    Image.fromarray(wide.astype(np.uint16) if bits == 16 else wide.astype(np.int32)).save(path)
    with Image.open(path) as im:
        assert im.mode.startswith("I")  # PIL would clip this mode at 255 in convert("RGB")
    got, size = decode_image(path, 32)
    want, _ = decode_image(tmp_path / "eight.png", 32)
    assert size == (40, 48)
    np.testing.assert_array_equal(got, want)
