"""PatchCore's approximate greedy coreset, for the final deployed model's memory bank.

Follows ``ApproximateGreedyCoresetSampler`` (amazon-science/patchcore-inspection, sampler.py):
random linear projection to ``projection_dim`` (here only when C > projection_dim), ``n_starts``
random starting points whose mean Euclidean distance initialises every point's anchor distance, then
iterative farthest point: pick the argmax of the current anchor distance, lower every anchor to its
distance to the new point. Selected count is ``max(1, floor(fraction * M))`` as the reference's
``int(len * percentage)``.

Differences from the reference, on purpose: anchors are kept squared (same argmax, one sqrt pass
less per step), a selected point is never selected twice (matters only with duplicate rows), and the
projection / starting points come from a seeded ``torch.Generator`` so runs are reproducible.
"""

from __future__ import annotations

import math

import torch
from tqdm.auto import tqdm

from autopatch.errors import AutopatchError, check_fraction

_ALREADY_SELECTED = -1.0


def random_projection(channels: int, dim: int, seed: int) -> torch.Tensor:
    """[channels, dim] matrix drawn like torch.nn.Linear's default init, U(-1/sqrt(C), 1/sqrt(C))."""
    generator = torch.Generator().manual_seed(seed)
    bound = 1.0 / math.sqrt(channels)
    return (torch.rand(channels, dim, generator=generator) * 2.0 - 1.0) * bound


def starting_points(total: int, n_starts: int, seed: int) -> torch.Tensor:
    """Seeded distinct random row indices (at most ``total``)."""
    generator = torch.Generator().manual_seed(seed + 1)  # independent of the projection's stream
    return torch.randperm(total, generator=generator)[: min(n_starts, total)]


def _squared_distances_to(points: torch.Tensor, sqnorms: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """[M, K] squared L2, expansion form, clamped at 0; callers keep M x K small."""
    d = torch.addmm(sqnorms.unsqueeze(1), points, centers.T, alpha=-2.0)
    return d.add_((centers * centers).sum(1).unsqueeze(0)).clamp_(min=0.0)


def _initial_anchors(
    points: torch.Tensor, sqnorms: torch.Tensor, start_indices: torch.Tensor, chunk: int = 65536
) -> torch.Tensor:
    """Squared mean Euclidean distance of every point to the starting points (row chunks bound memory)."""
    starts = points[start_indices.to(points.device)]
    return torch.cat(
        [
            _squared_distances_to(points[i : i + chunk], sqnorms[i : i + chunk], starts).sqrt_().mean(1).square_()
            for i in range(0, len(points), chunk)
        ]
    )


def greedy_kcenter(
    points: torch.Tensor,
    n_select: int,
    start_indices: torch.Tensor,
    *,
    lazy: bool | None = None,
    pool_size: int = 8192,
    progress: bool = False,
) -> torch.Tensor:
    """Approximate greedy k-center on already projected points; returns the selected row indices.

    Two exact schedules of the same computation (same selection up to float rounding ties):
    ``lazy=False`` lowers every anchor at every step (one matvec pass, no host sync — right for
    CUDA). ``lazy=True`` (default on CPU, where that pass is memory-bound: 0.3 GB per step for
    593k x 128) keeps the ``pool_size`` largest anchors up to date and leaves the rest stale; stale
    anchors only over-estimate, so while the pool's best beats the largest anchor outside the pool
    it is the true argmax. When it no longer does, all anchors catch up on the missed centers in one
    matmul (compute-bound instead of bandwidth-bound) and the pool is re-drawn.
    """
    if lazy is None:
        lazy = points.device.type == "cpu"
    sqnorms = (points * points).sum(1)
    anchor = _initial_anchors(points, sqnorms, start_indices)
    bar = tqdm(total=n_select, desc="coreset", disable=not progress, leave=False)
    if lazy:
        selected = _pooled_kcenter(points, sqnorms, anchor, n_select, pool_size, bar)
    else:
        selected = _dense_kcenter(points, sqnorms, anchor, n_select, bar)
    bar.close()
    return selected


def _dense_kcenter(
    points: torch.Tensor, sqnorms: torch.Tensor, anchor: torch.Tensor, n_select: int, bar: tqdm
) -> torch.Tensor:
    selected = torch.empty(n_select, dtype=torch.long, device=points.device)
    step_dist = torch.empty_like(anchor)
    for step in range(n_select):
        best = anchor.argmax().view(1)
        selected[step : step + 1] = best
        center = points.index_select(0, best)[0]
        torch.addmv(sqnorms, points, center, alpha=-2.0, out=step_dist)
        step_dist.add_(sqnorms.index_select(0, best)).clamp_(min=0.0)
        torch.minimum(anchor, step_dist, out=anchor)
        anchor.index_fill_(0, best, _ALREADY_SELECTED)
        bar.update()
    return selected


def _catch_up(
    points: torch.Tensor,
    sqnorms: torch.Tensor,
    anchor: torch.Tensor,
    centers: torch.Tensor,
    row_chunk: int = 16384,
    center_chunk: int = 1024,
) -> None:
    """anchor = min(anchor, squared distance to each of ``centers``), tiled so memory stays bounded."""
    for c0 in range(0, len(centers), center_chunk):
        chunk = centers[c0 : c0 + center_chunk]
        for r0 in range(0, len(points), row_chunk):
            rows = slice(r0, r0 + row_chunk)
            nearest = _squared_distances_to(points[rows], sqnorms[rows], chunk).amin(dim=1)
            torch.minimum(anchor[rows], nearest, out=anchor[rows])


def _pooled_kcenter(
    points: torch.Tensor, sqnorms: torch.Tensor, anchor: torch.Tensor, n_select: int, pool_size: int, bar: tqdm
) -> torch.Tensor:
    selected = torch.empty(n_select, dtype=torch.long, device=points.device)
    centers = torch.empty(n_select, points.shape[1], dtype=points.dtype, device=points.device)
    applied = 0  # centers already folded into every anchor
    step = 0
    while step < n_select:
        _catch_up(points, sqnorms, anchor, centers[applied:step])
        applied = step
        size = min(pool_size, len(points))
        top_values, top_indices = anchor.topk(min(size + 1, len(points)))
        outside_bound = float(top_values[size]) if size < len(points) else float("-inf")
        pool = top_indices[:size].sort().values  # ascending, so argmax keeps the first-index tie rule
        pool_anchor, pool_points, pool_sqnorms = anchor[pool], points[pool], sqnorms[pool]
        while step < n_select:
            j = int(pool_anchor.argmax())
            if float(pool_anchor[j]) < outside_bound:
                break  # a stale anchor outside the pool might be larger: catch everyone up
            best = int(pool[j])
            selected[step], centers[step] = best, points[best]
            d = torch.addmv(pool_sqnorms, pool_points, points[best], alpha=-2.0).add_(sqnorms[best]).clamp_(min=0.0)
            torch.minimum(pool_anchor, d, out=pool_anchor)
            pool_anchor[j] = _ALREADY_SELECTED
            anchor[best] = _ALREADY_SELECTED
            step += 1
            bar.update()
    return selected


def greedy_coreset(
    features: torch.Tensor,
    fraction: float,
    *,
    projection_dim: int = 128,
    n_starts: int = 10,
    seed: int = 0,
    device: str | torch.device | None = None,
    progress: bool = False,
) -> torch.Tensor:
    """Indices (LongTensor, on CPU) of the coreset rows of ``features`` [M, C], in selection order."""
    if not isinstance(features, torch.Tensor) or features.dim() != 2 or not features.is_floating_point():
        raise AutopatchError("coreset features must be a 2-D float tensor [rows, channels]")
    if len(features) == 0:
        raise AutopatchError("coreset features are empty (0 rows); there is nothing to subsample")
    check_fraction("coreset fraction", fraction)
    if n_starts < 1 or projection_dim < 1:
        raise AutopatchError(f"coreset needs n_starts >= 1 and projection_dim >= 1, got {n_starts}, {projection_dim}")
    if not bool(torch.isfinite(features).all()):
        raise AutopatchError("coreset features contain NaN or Inf values; check the encoder output")
    if fraction == 1.0:
        return torch.arange(len(features))
    device = torch.device(device) if device is not None else features.device
    with torch.no_grad():
        points = features.detach().to(device, torch.float32)
        if points.shape[1] > projection_dim:
            points = points @ random_projection(points.shape[1], projection_dim, seed).to(device)
        n_select = max(1, int(len(points) * fraction))
        starts = starting_points(len(points), n_starts, seed)
        return greedy_kcenter(points.contiguous(), n_select, starts, progress=progress).cpu()
