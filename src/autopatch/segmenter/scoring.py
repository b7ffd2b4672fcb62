"""The one scoring step (paper Algorithm 1) behind both a `Segmenter` and every search trial.

block maps -> patch aggregation -> memory bank -> squared L2 to the nearest bank patch -> bilinear
upsample to the image size -> optional Gaussian smoothing. `Segmenter` feeds it the maps its encoder
computes batch by batch; the search's evaluator feeds it cached maps of a whole split. Because both go
through `PatchScorer`, what a trial scored is what `export` ships (tests/unit/search hold that contract).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from autopatch.bank import MemoryBank, greedy_coreset
from autopatch.data import ImageSize, parse_image_size
from autopatch.features.aggregation import PatchAggregation
from autopatch.segmenter.smoothing import gaussian_smooth


def patch_rows(grid: torch.Tensor) -> torch.Tensor:
    """[N, C, H, W] patch vectors -> [N*H*W, C] rows (image-major, then y, then x), contiguous."""
    return grid.permute(0, 2, 3, 1).reshape(-1, grid.shape[1]).contiguous()


def fill_strided(sparse: torch.Tensor, size: tuple[int, int], stride: int) -> torch.Tensor:
    """Values [N, 1, h, w] at the grid points (stride*i, stride*j) of a [N, 1, *size] grid -> the whole grid:
    bilinear between the points (each point keeps its value), the last point's row and column held to the
    far edges."""
    h, w = sparse.shape[-2:]
    spread = F.interpolate(sparse, size=((h - 1) * stride + 1, (w - 1) * stride + 1), mode="bilinear",
                           align_corners=True)  # fmt: skip
    return F.pad(spread, (0, size[1] - spread.shape[-1], 0, size[0] - spread.shape[-2]), mode="replicate")


class PatchScorer:
    """Aggregation + memory bank + upsampling (+ smoothing): block maps in, anomaly maps out.

    `coreset` (a fraction in (0, 1)) greedy-subsamples the bank rows before the bank keeps its own
    random `fraction` of them.
    """

    def __init__(
        self,
        aggregation: PatchAggregation,
        bank: MemoryBank,
        image_size: int | str | ImageSize,
        coreset: float | None = None,
        smoothing_sigma: float | None = None,
        seed: int = 0,
    ) -> None:
        self.aggregation = aggregation
        self.bank = bank
        self.image_size = parse_image_size(image_size)
        self.coreset = coreset
        self.smoothing_sigma = smoothing_sigma
        self.seed = int(seed)

    def rows(self, maps: Sequence[torch.Tensor]) -> torch.Tensor:
        """Every patch vector of `maps` as bank-ready rows."""
        return patch_rows(self.aggregation(maps))

    def _rows_at(self, maps: Sequence[torch.Tensor], ys: torch.Tensor, xs: torch.Tensor) -> torch.Tensor:
        """The rows of the grid points (y, x) for y in `ys`, x in `xs` of every image, image-major then y, x."""
        rows_of = getattr(self.aggregation, "rows", None)
        if rows_of is None:
            return patch_rows(self.aggregation(maps)[:, :, ys][:, :, :, xs])
        n, height, width = maps[0].shape[0], *maps[0].shape[-2:]
        flat = torch.arange(n)[:, None, None] * (height * width) + ys[None, :, None] * width + xs[None, None, :]
        return rows_of(maps, flat.reshape(-1)).contiguous()

    def fit_rows(self, rows: torch.Tensor, progress: bool = False) -> PatchScorer:
        """The memory bank from normal patch rows (greedy coreset first, when set); returns self."""
        if self.coreset is not None and self.coreset < 1.0:
            keep = greedy_coreset(rows, self.coreset, seed=self.seed, device=self.bank.device, progress=progress)
            rows = rows[keep.to(rows.device)]
        self.bank.fit(rows)
        return self

    def fit(self, maps: Sequence[torch.Tensor]) -> PatchScorer:
        """The memory bank from the block maps of all normal images at once. Without a coreset, and when
        the aggregation can compute single rows, only the rows the bank keeps are computed."""
        rows_of = getattr(self.aggregation, "rows", None)
        if (self.coreset is not None and self.coreset < 1.0) or rows_of is None:
            return self.fit_rows(self.rows(maps))
        total = maps[0].shape[0] * maps[0].shape[-2] * maps[0].shape[-1]
        self.bank.fit_from(total, lambda keep: rows_of(maps, keep).contiguous())
        return self

    def score(
        self,
        maps: Sequence[torch.Tensor],
        nearest: Callable[[torch.Tensor], torch.Tensor] | None = None,
        query_stride: int = 1,
    ) -> torch.Tensor:
        """Anomaly maps float32 [N, H, W] (the image size) on the bank's device for the block maps of N images.
        `nearest` (rows -> squared L2 to the nearest bank row) replaces the bank's own search, as an exported
        graph does. `query_stride` s > 1 (a search fidelity) queries only every s-th patch of the grid in
        each direction and fills the patches between them bilinearly (`fill_strided`)."""
        search = nearest or self.bank.nearest
        n, height, width = maps[0].shape[0], *maps[0].shape[-2:]  # an aggregation's grid is the first map's
        if query_stride == 1:
            distances = search(self.rows(maps)).view(n, 1, height, width)
        else:
            ys, xs = torch.arange(0, height, query_stride), torch.arange(0, width, query_stride)
            sparse = search(self._rows_at(maps, ys, xs)).view(n, 1, len(ys), len(xs))
            distances = fill_strided(sparse, (height, width), query_stride)
        scores = F.interpolate(distances.float(), size=self.image_size, mode="bilinear", align_corners=False).squeeze(1)
        if self.smoothing_sigma is not None:
            scores = gaussian_smooth(scores, self.smoothing_sigma)
        return scores
