"""patchify against an independent numpy loop: explicit zero-padded window sums and hand-written bilinear."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from autopatch.errors import AutopatchError
from autopatch.features import patchify


def window_mean_zero_padded(x: np.ndarray, size: int) -> np.ndarray:
    """[C,H,W] -> mean over size x size windows at stride 1, padding (size-1)//2 zeros counted in the mean."""
    channels, height, width = x.shape
    pad = (size - 1) // 2
    out_h = height + 2 * pad - size + 1
    out_w = width + 2 * pad - size + 1
    out = np.zeros((channels, out_h, out_w))
    for c in range(channels):
        for i in range(out_h):
            for j in range(out_w):
                total = 0.0
                for di in range(size):
                    for dj in range(size):
                        y, xx = i - pad + di, j - pad + dj
                        if 0 <= y < height and 0 <= xx < width:
                            total += x[c, y, xx]
                out[c, i, j] = total / (size * size)
    return out


def bilinear_half_pixel(x: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """[C,H,W] -> [C,out_h,out_w], half-pixel centres (align_corners=False), negative sources clamped to 0."""
    channels, height, width = x.shape
    out = np.zeros((channels, out_h, out_w))
    for i in range(out_h):
        sy = max((i + 0.5) * height / out_h - 0.5, 0.0)
        y0 = int(np.floor(sy))
        y1 = min(y0 + 1, height - 1)
        wy = sy - y0
        for j in range(out_w):
            sx = max((j + 0.5) * width / out_w - 0.5, 0.0)
            x0 = int(np.floor(sx))
            x1 = min(x0 + 1, width - 1)
            wx = sx - x0
            out[:, i, j] = (
                (1 - wy) * (1 - wx) * x[:, y0, x0]
                + (1 - wy) * wx * x[:, y0, x1]
                + wy * (1 - wx) * x[:, y1, x0]
                + wy * wx * x[:, y1, x1]
            )
    return out


def oracle(maps: list[np.ndarray], sizes: list[int]) -> np.ndarray:
    batch, _, out_h, out_w = maps[0].shape
    per_image = []
    for n in range(batch):
        parts = []
        for feature_map, size in zip(maps, sizes, strict=True):
            pooled = window_mean_zero_padded(feature_map[n], size)
            if pooled.shape[-2:] != (out_h, out_w):
                pooled = bilinear_half_pixel(pooled, out_h, out_w)
            parts.append(pooled)
        per_image.append(np.concatenate(parts, axis=0))
    return np.stack(per_image)


@pytest.mark.parametrize(
    ("shapes", "sizes"),
    [
        ([(3, 6, 6), (4, 3, 3)], [3, 3]),
        ([(2, 8, 8), (3, 4, 4)], [1, 5]),
        ([(2, 5, 7), (2, 3, 4)], [2, 3]),  # even P on the first map: shrinks, then resized back
        ([(2, 6, 6), (3, 3, 3), (1, 2, 2)], [4, 2, 1]),
    ],
)
def test_patchify_matches_loop_oracle(shapes: list[tuple[int, int, int]], sizes: list[int]) -> None:
    rng = np.random.default_rng(0)
    maps = [rng.normal(size=(2, *shape)) for shape in shapes]
    got = patchify([torch.from_numpy(m).float() for m in maps], sizes)
    want = oracle(maps, sizes)
    assert got.shape == want.shape
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-5)


def test_patchify_keeps_block_order_on_channels() -> None:
    first = torch.full((1, 2, 4, 4), 1.0)
    second = torch.full((1, 3, 2, 2), 7.0)
    out = patchify([first, second], [1, 1])
    assert out.shape == (1, 5, 4, 4)
    assert torch.all(out[:, :2] == 1.0) and torch.all(out[:, 2:] == 7.0)


def test_patchify_rejects_mismatched_patch_sizes() -> None:
    with pytest.raises(AutopatchError, match="one patch size per block"):
        patchify([torch.zeros(1, 1, 2, 2)], [3, 3])


def test_patchify_rejects_nonpositive_patch_size() -> None:
    with pytest.raises(AutopatchError, match="patch size 0"):
        patchify([torch.zeros(1, 1, 2, 2)], [0])
