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
        self, maps: Sequence[torch.Tensor], nearest: Callable[[torch.Tensor], torch.Tensor] | None = None
    ) -> torch.Tensor:
        """Anomaly maps float32 [N, H, W] (the image size) on the bank's device for the block maps of N images.
        `nearest` (rows -> squared L2 to the nearest bank row) replaces the bank's own search, as an exported
        graph does."""
        grid = self.aggregation(maps)
        n, _, height, width = grid.shape
        distances = (nearest or self.bank.nearest)(patch_rows(grid)).view(n, 1, height, width)
        del grid
        scores = F.interpolate(distances.float(), size=self.image_size, mode="bilinear", align_corners=False).squeeze(1)
        if self.smoothing_sigma is not None:
            scores = gaussian_smooth(scores, self.smoothing_sigma)
        return scores
