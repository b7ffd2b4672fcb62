"""The PatchCore baseline end to end on a tiny stand-in encoder, against a brute-force numpy PatchCore:
neighbourhoods gathered by loops, bilinear resize and adaptive pooling written out by hand, 1-NN by
exhaustive search in float64, scipy's Gaussian (what the original calls) on the upsampled map."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter
from torch import nn

from autopatch.backbones import BlockInfo, Encoder, create_encoder, list_encoders, register_encoder
from autopatch.bank import greedy_coreset
from autopatch.baselines import build_patchcore, default_layers
from autopatch.errors import AutopatchError
from autopatch.segmenter import Segmenter

FAMILY = "patchcore_unit_tiny"
SIZE = 64
PRETRAIN, TARGET = 8, 6


class FourBlocks(Encoder):
    """Blocks 0..3 at strides 4, 8, 16, 16 with 3, 4, 5, 5 channels (fixed random convs)."""

    family = FAMILY
    mean = (0.5, 0.5, 0.5)
    std = (0.25, 0.25, 0.25)
    native_resolution = SIZE
    _SPEC = ((4, 3), (8, 4), (16, 5), (16, 5))

    def __init__(self, depth: int = 4) -> None:
        super().__init__()
        self.depth = depth
        self.convs = nn.ModuleList([
            nn.Conv2d(3, 3, 4, stride=4), nn.Conv2d(3, 4, 3, stride=2, padding=1),
            nn.Conv2d(4, 5, 3, stride=2, padding=1), nn.Conv2d(5, 5, 1),
        ][:depth])  # fmt: skip

    @property
    def blocks(self) -> tuple[BlockInfo, ...]:
        return tuple(BlockInfo(i, f"b{i}", i, s, c) for i, (s, c) in enumerate(self._SPEC[: self.depth]))

    def forward_features(self, x: torch.Tensor, block_ids: Sequence[int]) -> list[torch.Tensor]:
        outputs = {}
        for i in range(max(block_ids) + 1):
            x = torch.tanh(self.convs[i](x))
            outputs[i] = x
        return [outputs[b] for b in block_ids]

    def config(self) -> dict:
        return {"depth": self.depth}

    def truncated(self, deepest_block: int) -> FourBlocks:
        copy = FourBlocks(deepest_block + 1)
        copy.load_state_dict({k: v for k, v in self.state_dict().items() if int(k.split(".")[1]) <= deepest_block})
        return copy


if FAMILY not in list_encoders():

    @register_encoder(FAMILY)
    def _four(pretrained: bool = True, weights: str | None = None, **config: int) -> FourBlocks:
        torch.manual_seed(0)
        return FourBlocks(**config)


def images(n: int, seed: int) -> torch.Tensor:
    return torch.randint(0, 256, (n, 3, SIZE, SIZE), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


# --- the brute-force oracle -------------------------------------------------------------------------


def bilinear(grid: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """[C, h, w] -> [C, out_h, out_w], half-pixel centres, edge-clamped (torch align_corners=False)."""
    channels, h, w = grid.shape
    out = np.zeros((channels, out_h, out_w))
    for y in range(out_h):
        sy = max((y + 0.5) * h / out_h - 0.5, 0.0)
        y0 = int(math.floor(sy))
        y1, ly = min(y0 + 1, h - 1), sy - y0
        for x in range(out_w):
            sx = max((x + 0.5) * w / out_w - 0.5, 0.0)
            x0 = int(math.floor(sx))
            x1, lx = min(x0 + 1, w - 1), sx - x0
            out[:, y, x] = ((1 - ly) * ((1 - lx) * grid[:, y0, x0] + lx * grid[:, y0, x1])
                            + ly * ((1 - lx) * grid[:, y1, x0] + lx * grid[:, y1, x1]))  # fmt: skip
    return out


def adaptive_mean(vector: np.ndarray, out: int) -> np.ndarray:
    n = len(vector)
    return np.array([vector[(j * n) // out : math.ceil((j + 1) * n / out)].mean() for j in range(out)])


def neighbourhoods(feature_map: np.ndarray) -> np.ndarray:
    """[C, h, w] -> [C*9, h, w]: the zero-padded 3x3 neighbourhood of each location, (c, dy, dx) order."""
    channels, h, w = feature_map.shape
    out = np.zeros((channels * 9, h, w))
    for c in range(channels):
        for dy in range(3):
            for dx in range(3):
                for y in range(h):
                    for x in range(w):
                        yy, xx = y + dy - 1, x + dx - 1
                        if 0 <= yy < h and 0 <= xx < w:
                            out[c * 9 + dy * 3 + dx, y, x] = feature_map[c, yy, xx]
    return out


def oracle_features(encoder: FourBlocks, batch: torch.Tensor, layers: list[int]) -> np.ndarray:
    """[N*h0*w0, TARGET] PatchCore patch features."""
    with torch.no_grad():
        maps = [m.double().numpy() for m in encoder.forward_features(encoder.normalize(batch), layers)]
    h0, w0 = maps[0].shape[-2:]
    rows = []
    for n in range(batch.shape[0]):
        grids = [bilinear(neighbourhoods(m[n]), h0, w0) for m in maps]
        for y in range(h0):
            for x in range(w0):
                pooled = np.concatenate([adaptive_mean(g[:, y, x], PRETRAIN) for g in grids])
                rows.append(adaptive_mean(pooled, TARGET))
    return np.array(rows)


def oracle_scores(encoder: FourBlocks, train: torch.Tensor, test: torch.Tensor, layers: list[int]) -> np.ndarray:
    bank = oracle_features(encoder, train, layers)
    queries = oracle_features(encoder, test, layers)
    nearest = np.array([((bank - q) ** 2).sum(axis=1).min() for q in queries])
    grid = SIZE // 8  # stride-8 first layer
    maps = nearest.reshape(test.shape[0], grid, grid)
    return np.stack([gaussian_filter(bilinear(m[None], SIZE, SIZE)[0], sigma=4) for m in maps])


# --- tests ------------------------------------------------------------------------------------------


def test_baseline_pipeline_equals_brute_force() -> None:
    encoder = create_encoder(FAMILY)
    segmenter = build_patchcore(encoder, SIZE, coreset=None, pretrain_dim=PRETRAIN, target_dim=TARGET)
    assert segmenter.block_ids == [1, 3] and segmenter.smoothing_sigma == 4.0
    train, test = images(3, 0), images(2, 1)
    ours = segmenter.fit(train).predict(test).numpy()
    expected = oracle_scores(encoder, train, test, [1, 3])
    np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-6)


def test_layers_are_ordered_finest_first() -> None:
    segmenter = build_patchcore(create_encoder(FAMILY), SIZE, layers=[3, 1], coreset=None, pretrain_dim=PRETRAIN,
                                target_dim=TARGET)  # fmt: skip
    assert segmenter.block_ids == [1, 3]
    assert segmenter.aggregation.config()["channels"] == [4, 5]


def test_coreset_keeps_the_greedy_rows_of_the_full_bank() -> None:
    encoder = create_encoder(FAMILY)
    full = build_patchcore(encoder, SIZE, coreset=None, pretrain_dim=PRETRAIN, target_dim=TARGET).fit(images(3, 0))
    sampled = build_patchcore(encoder, SIZE, coreset=0.25, pretrain_dim=PRETRAIN, target_dim=TARGET).fit(images(3, 0))
    keep = greedy_coreset(full.bank.patches.cpu(), 0.25, seed=0)
    torch.testing.assert_close(sampled.bank.patches.cpu(), full.bank.patches.cpu()[keep])


def test_model_file_round_trip(tmp_path: Path) -> None:
    segmenter = build_patchcore(create_encoder(FAMILY), SIZE, coreset=0.5, pretrain_dim=PRETRAIN, target_dim=TARGET)
    segmenter.fit(images(3, 0))
    path = segmenter.save(tmp_path / "patchcore.pt")
    raw = torch.load(path, weights_only=True)
    config = {"channels": [4, 5], "patch_size": 3, "pretrain_dim": PRETRAIN, "target_dim": TARGET}
    assert raw["aggregation"] == {"kind": "patchcore", "config": config}
    loaded = Segmenter.load(path)
    torch.testing.assert_close(loaded.predict(images(2, 1)), segmenter.predict(images(2, 1)))


@pytest.mark.parametrize(
    ("name", "expected"),
    [("wide_resnet50_2", (2, 3)), ("mobilenet_v3_large", (6, 12)), ("efficientnet_lite0", (4, 10))],
)
def test_default_layers_are_the_last_stride_8_and_16_blocks(name: str, expected: tuple[int, int]) -> None:
    assert default_layers(create_encoder(name, pretrained=False)) == expected


def test_bad_layers_are_one_line_errors() -> None:
    encoder = create_encoder(FAMILY)
    with pytest.raises(AutopatchError, match="repeat"):
        build_patchcore(encoder, SIZE, layers=[1, 1])
    with pytest.raises(AutopatchError, match="no block 9"):
        build_patchcore(encoder, SIZE, layers=[1, 9])
    with pytest.raises(AutopatchError, match="no stride-16 block"):
        default_layers(FourBlocks(depth=2))
