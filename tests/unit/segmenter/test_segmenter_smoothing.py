"""Torch Gaussian smoothing against scipy.ndimage.gaussian_filter (the function PatchCore calls)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

from autopatch.errors import AutopatchError
from autopatch.segmenter.smoothing import gaussian_smooth


@pytest.mark.parametrize(("height", "width", "sigma"), [(32, 40, 4.0), (9, 7, 4.0), (20, 20, 1.5), (5, 6, 0.7)])
def test_gaussian_smooth_matches_scipy(height: int, width: int, sigma: float) -> None:
    rng = np.random.default_rng(1)
    maps = rng.random((3, height, width))
    got = gaussian_smooth(torch.from_numpy(maps), sigma).numpy()
    want = np.stack([gaussian_filter(m, sigma=sigma, truncate=4.0) for m in maps])
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_gaussian_smooth_float32_close_to_scipy() -> None:
    maps = np.random.default_rng(2).random((2, 28, 28)).astype(np.float32)
    got = gaussian_smooth(torch.from_numpy(maps), 4.0).numpy()
    want = np.stack([gaussian_filter(m.astype(np.float64), sigma=4.0) for m in maps])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_gaussian_smooth_rejects_nonpositive_sigma() -> None:
    with pytest.raises(AutopatchError, match="sigma 0"):
        gaussian_smooth(torch.zeros(1, 4, 4), 0)
