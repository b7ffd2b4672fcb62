"""Gaussian smoothing of score maps on the device, matching scipy.ndimage.gaussian_filter (PatchCore's post-step).

PatchCore smooths every upsampled score map with sigma=4 on the CPU through scipy; doing it here as
two 1-D convolutions keeps the maps on the GPU and batched, with the same numbers.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from autopatch.errors import AutopatchError


def gaussian_kernel_1d(sigma: float, truncate: float = 4.0) -> torch.Tensor:
    """scipy's kernel: radius int(truncate*sigma + 0.5), weights exp(-x^2 / 2 sigma^2) normalised to sum 1."""
    radius = int(truncate * float(sigma) + 0.5)
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    weights = torch.exp(-0.5 * (x / float(sigma)) ** 2)
    return weights / weights.sum()


def _symmetric_indices(length: int, radius: int, device: torch.device) -> torch.Tensor:
    """Indices for scipy's 'reflect' border (d c b a | a b c d | d c b a), valid for any radius."""
    idx = torch.arange(-radius, length + radius, device=device)
    period = 2 * length
    idx = torch.remainder(idx, period)
    return torch.where(idx >= length, period - 1 - idx, idx)


def gaussian_smooth(maps: torch.Tensor, sigma: float, truncate: float = 4.0) -> torch.Tensor:
    """[N, H, W] float maps -> same shape, separable Gaussian with scipy's 'reflect' border mode."""
    if sigma <= 0:
        raise AutopatchError(f"smoothing sigma {sigma} is invalid; use a positive value such as 4, or no smoothing")
    if maps.ndim != 3:
        raise AutopatchError(f"gaussian_smooth expects score maps [N,H,W], got shape {tuple(maps.shape)}")
    kernel = gaussian_kernel_1d(sigma, truncate).to(device=maps.device, dtype=maps.dtype)
    radius = (kernel.numel() - 1) // 2
    height, width = maps.shape[-2:]
    x = maps.unsqueeze(1)  # [N,1,H,W]
    x = x.index_select(2, _symmetric_indices(height, radius, maps.device))
    x = F.conv2d(x, kernel.view(1, 1, -1, 1))
    x = x.index_select(3, _symmetric_indices(width, radius, maps.device))
    x = F.conv2d(x, kernel.view(1, 1, 1, -1))
    return x.squeeze(1)
