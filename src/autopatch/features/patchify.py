"""Turn block feature maps into one patch vector per location (paper Algorithm 1, the reference behaviour)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F

from autopatch.errors import AutopatchError


def patchify(maps: Sequence[torch.Tensor], patch_sizes: Sequence[int]) -> torch.Tensor:
    """Aggregate each map over a P x P neighbourhood, resize all to the first map, concatenate channels.

    Callers pass the highest-resolution (smallest-stride) map first: every map is resized to the
    first one's size, so a low-resolution first map throws detail away. Averaging uses zero padding
    counted in the mean (`count_include_pad=True`), as the reference does, so an even P shrinks the
    map by one pixel before the bilinear resize (align_corners=False).

    maps: [N, C_i, H_i, W_i] each; patch_sizes: one positive P per map -> [N, sum C_i, H_0, W_0].
    """
    _check_maps(maps, patch_sizes)
    target = tuple(maps[0].shape[-2:])
    resized = []
    for pooled in _pooled(maps, patch_sizes):
        if tuple(pooled.shape[-2:]) != target:
            pooled = F.interpolate(pooled, size=target, mode="bilinear", align_corners=False)
        resized.append(pooled)
    return torch.cat(resized, dim=1)


def patchify_rows(maps: Sequence[torch.Tensor], patch_sizes: Sequence[int], rows: torch.Tensor) -> torch.Tensor:
    """Only the rows `rows` of `patchify(maps, patch_sizes)` flattened to [N*H_0*W_0, sum C_i].

    Row r is image r // (H_0*W_0), pixel (r // W_0) % H_0, r % W_0 (the order of
    `out.permute(0, 2, 3, 1).reshape(-1, C)`). Each map is pooled at its own resolution as in
    `patchify`, then its bilinear (align_corners=False) resize is evaluated at the wanted pixels
    only, so a small row subset costs a fraction of the full resize. Equal to `patchify` up to
    float rounding; rows may repeat and come in any order. rows: 1-D integer -> [len(rows), sum C_i].
    """
    _check_maps(maps, patch_sizes)
    integer = isinstance(rows, torch.Tensor) and not (rows.is_floating_point() or rows.is_complex())
    integer = integer and rows.dtype != torch.bool
    if not integer or rows.dim() != 1:
        raise AutopatchError("patchify_rows needs rows as a 1-D integer tensor of flat patch indices")
    batch, _, height, width = maps[0].shape
    total = batch * height * width
    rows = rows.to(device=maps[0].device, dtype=torch.long)
    if len(rows) and (int(rows.min()) < 0 or int(rows.max()) >= total):
        raise AutopatchError(
            f"patchify_rows got row indices outside [0, {total}) for {batch} images of {height}x{width} patches"
        )
    image, pixel = rows.div(height * width, rounding_mode="floor"), rows.remainder(height * width)
    y, x = pixel.div(width, rounding_mode="floor"), pixel.remainder(width)
    return torch.cat([_bilinear_at(pooled, image, y, x, (height, width)) for pooled in _pooled(maps, patch_sizes)], 1)


def _check_maps(maps: Sequence[torch.Tensor], patch_sizes: Sequence[int]) -> None:
    if len(maps) == 0:
        raise AutopatchError("patchify needs at least one feature map; pass the extracted block maps")
    if len(maps) != len(patch_sizes):
        raise AutopatchError(
            f"patchify got {len(maps)} maps but {len(patch_sizes)} patch sizes; give one patch size per block"
        )
    for size in patch_sizes:
        if int(size) < 1:
            raise AutopatchError(f"patch size {size} is invalid; use a positive integer such as 1 or 3")


def _pooled(maps: Sequence[torch.Tensor], patch_sizes: Sequence[int]) -> Iterator[torch.Tensor]:
    """Each map averaged over P x P windows at stride 1 (zero padding (P-1)//2 counted in the mean),
    at its own resolution; yielded one at a time so a caller holds one pooled map at once.
    Callers check `maps` and `patch_sizes` with `_check_maps` first."""
    for feature_map, size in zip(maps, patch_sizes, strict=True):
        size = int(size)
        if size > 1:
            feature_map = F.avg_pool2d(
                feature_map, kernel_size=size, stride=1, padding=(size - 1) // 2, count_include_pad=True
            )
        yield feature_map


def _source_axis(out_size: int, in_size: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """PyTorch's bilinear align_corners=False taps along one axis: for each output index, the two
    input indices and the weight of the second, src = (dst + 0.5) * in / out - 0.5 clamped at 0
    (computed in float32, as the CPU and CUDA kernels do for float maps)."""
    if in_size == out_size:
        index = torch.arange(out_size, device=device)
        return index, index, torch.zeros(out_size, device=device)
    scale = torch.tensor(float(in_size), device=device) / out_size
    source = (scale * (torch.arange(out_size, device=device, dtype=torch.float32) + 0.5) - 0.5).clamp_min(0.0)
    first = source.floor().long().clamp_max(in_size - 1)
    second = (first + 1).clamp_max(in_size - 1)
    weight = (source - first).clamp(0.0, 1.0)
    return first, second, weight


def _bilinear_at(
    pooled: torch.Tensor, image: torch.Tensor, y: torch.Tensor, x: torch.Tensor, target: tuple[int, int]
) -> torch.Tensor:
    """F.interpolate(pooled, size=target, mode="bilinear", align_corners=False)[image, :, y, x]
    without resizing the whole map: [len(y), C]."""
    height, width = pooled.shape[-2:]
    if (height, width) == target:
        return pooled[image, :, y, x]
    y0, y1, wy = (t[y] for t in _source_axis(target[0], height, pooled.device))
    x0, x1, wx = (t[x] for t in _source_axis(target[1], width, pooled.device))
    compute = torch.promote_types(pooled.dtype, torch.float32)
    wy, wx = wy.to(compute).unsqueeze(1), wx.to(compute).unsqueeze(1)

    def tap(rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        return pooled[image, :, rows, cols].to(compute)  # a fresh [len, C] tensor, safe to modify in place

    # (1 - wy) * ((1 - wx) * a + wx * b) + wy * ((1 - wx) * c + wx * d), PyTorch's order, in place
    top = tap(y0, x0).mul_(1 - wx).add_(tap(y0, x1).mul_(wx))
    bottom = tap(y1, x0).mul_(1 - wx).add_(tap(y1, x1).mul_(wx))
    return top.mul_(1 - wy).add_(bottom.mul_(wy)).to(pooled.dtype)
