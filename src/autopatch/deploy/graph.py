"""A fitted Segmenter as one torch module whose forward is the whole model, for export to other runtimes.

uint8 RGB images [N, H, W, 3] (what PIL, OpenCV after BGR->RGB, and cameras give) -> the encoder's input
normalisation -> the truncated encoder -> `PatchScorer.score` (aggregation, 1-NN, upsampling, smoothing:
the Segmenter's own scoring step) with the memory bank as a constant and the 1-NN as tiled matmul + min
(`bank.knn.tiled_min_distances`; no `cdist`, no Q x M matrix) -> the image score (the map's maximum)
and both decisions. Outputs, in this order: anomaly_map float32 [N, H, W], image_score float32 [N],
label bool [N] (True = NG: image_score >= the image threshold), mask bool [N, H, W] (anomaly_map >= the
pixel threshold; all false for a model fitted without masks, which has none, and whose inferencers return no
mask).
"""

from __future__ import annotations

import torch
from torch import nn

from autopatch.bank.knn import tiled_min_distances
from autopatch.deploy.inference import require_image_threshold
from autopatch.errors import AutopatchError
from autopatch.segmenter import Segmenter

BANK_CHUNK = 1024  # bank rows per matmul tile: peak memory N*h*w x BANK_CHUNK floats


class ScoringGraph(nn.Module):
    """`segmenter` end to end (see the module docstring); its image threshold must be set."""

    def __init__(self, segmenter: Segmenter, bank_chunk: int = BANK_CHUNK) -> None:
        super().__init__()
        require_image_threshold(segmenter.image_threshold, segmenter.metadata.get("architecture"))
        if segmenter.device.type != "cpu":
            raise AutopatchError("convert a model loaded on the CPU (Segmenter.load(path, device='cpu'))")
        self.segmenter = segmenter
        self.encoder = segmenter.encoder.eval()
        # L2 distances do not change when bank and queries move together; centred on the bank's mean their norms
        # are small, so ||q||^2 - 2 q.b + ||b||^2 loses fewer digits to cancellation in runtimes with other GEMMs
        bank = segmenter.bank.patches.detach().double()
        mean = bank.mean(0)
        centred = (bank - mean).float().contiguous()
        self.register_buffer("bank_mean", mean.float())
        self.register_buffer("bank", centred)
        self.register_buffer("bank_sqnorm", (centred * centred).sum(1))
        self.bank_chunk = int(bank_chunk)

    def _nearest(self, rows: torch.Tensor) -> torch.Tensor:
        return tiled_min_distances(rows - self.bank_mean, self.bank, self.bank_sqnorm, self.bank_chunk)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.decide(*self.features(images))

    def features(self, images: torch.Tensor) -> list[torch.Tensor]:
        """The encoder's part: uint8 [N, H, W, 3] -> the block maps."""
        x = self.encoder.normalize(images.permute(0, 3, 1, 2))
        return self.encoder.forward_features(x, self.segmenter.block_ids)

    def decide(self, *maps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The scoring head's part: the block maps -> the four outputs."""
        anomaly_map = self.segmenter.scorer.score(list(maps), nearest=self._nearest)
        image_score = anomaly_map.amax(dim=(1, 2))
        label = image_score >= float(self.segmenter.image_threshold)
        pixel_threshold = self.segmenter.threshold
        mask = anomaly_map >= (float("inf") if pixel_threshold is None else float(pixel_threshold))
        return anomaly_map, image_score, label, mask
