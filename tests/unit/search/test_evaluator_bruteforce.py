"""TrialEvaluator on a tiny synthetic split with a fake encoder equals a brute-force nearest-neighbour oracle."""

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import average_precision_score, roc_auc_score
from torch import nn

from autopatch.backbones import OFA_LAYOUT
from autopatch.backbones.base import BlockInfo, Encoder
from autopatch.backbones.registry import register_encoder
from autopatch.bank import MemoryBank
from autopatch.bank.memory_bank import kept_indices
from autopatch.data import Split, Splits
from autopatch.features import AveragePatchify, patchify
from autopatch.features.cache import FeatureCache
from autopatch.metrics import segmentation_metrics
from autopatch.metrics.bootstrap import bootstrap_counts
from autopatch.search.architecture import Architecture
from autopatch.search.evaluator import PHASES, TrialEvaluator, TrialFailed
from autopatch.search.fidelity import Fidelity
from autopatch.segmenter.scoring import PatchScorer

S = 32


class PoolingEncoder(Encoder):
    """Fixed random convs: block 1 at stride 4 (5 ch), block 2 at stride 8 (7 ch)."""

    family = "fake_evaluator_pooling"
    mean = (0.5, 0.5, 0.5)
    std = (0.25, 0.25, 0.25)
    native_resolution = S
    failure: Exception | None = None

    def __init__(self) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.stage1 = nn.Conv2d(3, 5, 4, stride=4)
        self.stage2 = nn.Conv2d(5, 7, 2, stride=2)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=generator))

    @property
    def blocks(self):
        return (BlockInfo(1, "stage1", 1, 4, 5), BlockInfo(2, "stage2", 2, 8, 7))

    def forward_features(self, x, block_ids):
        if self.failure is not None:
            raise self.failure
        maps = {1: torch.tanh(self.stage1(x))}
        if max(block_ids) >= 2:  # the Encoder contract: run only to the deepest requested block
            maps[2] = torch.tanh(self.stage2(maps[1]))
        return [maps[b] for b in block_ids]

    def config(self):
        return {}

    def truncated(self, deepest_block):
        return self


class NaNEncoder(PoolingEncoder):
    family = "fake_evaluator_nan"

    def forward_features(self, x, block_ids):
        return [m * float("nan") for m in super().forward_features(x, block_ids)]


class OutOfMemoryEncoder(PoolingEncoder):
    family = "fake_evaluator_oom"
    failure = torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")


class OneNaNTrainPixelEncoder(PoolingEncoder):
    """NaN at one block-1 pixel of the 4-image train split only (flat patch row `row` of the 4x8x8 grid)."""

    family = "fake_evaluator_one_nan"
    row = 0

    def forward_features(self, x, block_ids):
        maps = super().forward_features(x, block_ids)
        if len(x) == 4:
            n, pixel = divmod(self.row, 64)
            maps[0][n, :, pixel // 8, pixel % 8] = float("nan")
        return maps


for _cls in (PoolingEncoder, NaNEncoder, OutOfMemoryEncoder, OneNaNTrainPixelEncoder):
    register_encoder(_cls.family)(lambda pretrained=True, weights=None, _cls=_cls: _cls().eval())


def _split(seed: int, types: list[str]) -> Split:
    """Smooth random images; each anomalous one gets a bright square and its mask."""
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(len(types), 3, S // 4, S // 4, generator=g)
    images = F.interpolate(base, size=S, mode="bilinear", align_corners=False).mul(200).to(torch.uint8)
    masks = torch.zeros(len(types), S, S, dtype=torch.bool)
    for i, kind in enumerate(types):
        if kind != "good":
            top, left = (int(v) for v in torch.randint(0, S - 10, (2,), generator=g))
            size = 6 + 2 * i % 5
            masks[i, top : top + size, left : left + size] = True
            images[i][:, masks[i]] = 255
    return Split(images, masks, types, [Path(f"{seed}_{i}.png") for i in range(len(types))])


@pytest.fixture(scope="module")
def splits():
    return Splits(
        train=_split(1, ["good"] * 4),
        val=_split(2, ["good", "good", "crack", "scratch", "crack"]),
        test=_split(3, ["good", "crack", "scratch", "scratch"]),
    )


def _fill_by_loops(sparse: np.ndarray, size: tuple[int, int], stride: int) -> np.ndarray:
    """[n, h, w] values at grid points (stride*i, stride*j) -> [n, *size]: linear between points per axis,
    the last point held to the edge."""

    def taps(length: int, points: int) -> list[tuple[int, int, float]]:
        out = []
        for index in range(length):
            first = min(index // stride, points - 1)
            second = min(first + 1, points - 1)
            out.append((first, second, 0.0 if first == second else index / stride - first))
        return out

    rows, cols = taps(size[0], sparse.shape[1]), taps(size[1], sparse.shape[2])
    full = np.zeros((len(sparse), *size))
    for y, (y0, y1, wy) in enumerate(rows):
        for x, (x0, x1, wx) in enumerate(cols):
            top = (1 - wx) * sparse[:, y0, x0] + wx * sparse[:, y0, x1]
            bottom = (1 - wx) * sparse[:, y1, x0] + wx * sparse[:, y1, x1]
            full[:, y, x] = (1 - wy) * top + wy * bottom
    return full


def _oracle_metrics(split_train: Split, split_scored: Split, block_ids, patch_sizes, stride=1, dims=None):
    """Direct encoder call, explicit pooling/resize, and a loop over queries for the 1-NN; with `stride`, only
    the strided queries, filled in by loops; with `dims`, distances on the bank's leading principal axes
    (numpy's SVD of the centred bank)."""
    encoder = PoolingEncoder().eval()

    def patches(images):
        with torch.no_grad():
            maps = encoder.forward_features(encoder.normalize(images), list(block_ids))
        size = maps[0].shape[-2:]
        parts = []
        for m, p in zip(maps, patch_sizes, strict=True):
            pooled = F.avg_pool2d(m, p, stride=1, padding=(p - 1) // 2, count_include_pad=True) if p > 1 else m
            parts.append(F.interpolate(pooled, size=size, mode="bilinear", align_corners=False))
        return torch.cat(parts, 1).double()

    bank = patches(split_train.images)
    bank = bank.permute(0, 2, 3, 1).reshape(-1, bank.shape[1])
    query = patches(split_scored.images)
    n, c, h, w = query.shape
    sparse = query[:, :, ::stride, ::stride]
    rows = sparse.permute(0, 2, 3, 1).reshape(-1, c)
    if dims is not None:
        mean = bank.mean(0)
        axes = torch.from_numpy(np.linalg.svd((bank - mean).numpy(), full_matrices=False)[2][:dims].T)
        bank, rows = (bank - mean) @ axes, (rows - mean) @ axes
    nearest = torch.stack([((bank - row) ** 2).sum(1).min() for row in rows]).view(n, *sparse.shape[-2:])
    grid = torch.from_numpy(_fill_by_loops(nearest.numpy(), (h, w), stride))
    scores = F.interpolate(grid.unsqueeze(1).float(), size=S, mode="bilinear", align_corners=False)[:, 0]
    per_image, labels = scores.amax(dim=(1, 2)).numpy(), split_scored.is_anomalous
    masks, types = split_scored.masks.numpy(), split_scored.types
    draws = {"rwap_se": [], "image_ap_se": [], "image_auroc_se": []}  # the spread over the study's resamples
    for copies in bootstrap_counts(labels, seed=0):
        held = np.repeat(np.arange(len(types)), copies)
        resample = segmentation_metrics(scores.numpy()[held], masks[held], [types[i] for i in held])
        draws["rwap_se"].append(resample["rwap"])
        draws["image_ap_se"].append(average_precision_score(labels, per_image, sample_weight=copies))
        draws["image_auroc_se"].append(roc_auc_score(labels, per_image, sample_weight=copies))
    return {
        **segmentation_metrics(scores.numpy(), masks, types),
        "image_auroc": roc_auc_score(labels, per_image),
        "image_ap": average_precision_score(labels, per_image),
        **{name: np.std(values, ddof=1) for name, values in draws.items()},
    }


# A 4x4 map (block 2 alone) upsampled 8x has many exactly tied pixels; faiss' float32 distances differ
# from the float64 oracle by ~1e-8, which breaks some ties the other way and moves rwAP by ~2e-4.
@pytest.mark.parametrize(
    "blocks, patch_sizes, tolerance", [((1,), (1,), 1e-5), ((1, 2), (3, 2), 1e-5), ((2,), (5,), 1e-3)]
)
def test_metrics_equal_the_brute_force_oracle(splits, blocks, patch_sizes, tolerance):
    evaluator = TrialEvaluator(splits, seed=0, cache=FeatureCache(dtype=torch.float32))
    result = evaluator.evaluate(Architecture(PoolingEncoder.family, {}, blocks, patch_sizes))
    expected = _oracle_metrics(splits.train, splits.val, blocks, patch_sizes)
    pixel, image = {"rwap", "ap", "auroc", "pauroc_0.3", "aupro_0.3"}, {"image_auroc", "image_ap", "image_f1_max"}
    assert set(result.metrics) == pixel | image | {"rwap_se", "image_ap_se", "image_auroc_se"}
    for name, value in expected.items():
        assert result.metrics[name] == pytest.approx(float(value), abs=tolerance), name


@pytest.mark.parametrize(
    "blocks, patch_sizes, stride, dims", [((1,), (1,), 2, None), ((1, 2), (3, 2), 3, None), ((1, 2), (3, 2), 1, 4),
                                          ((1, 2), (1, 3), 2, 6)]
)  # fmt: skip
def test_query_stride_and_projection_equal_the_brute_force_oracle(splits, blocks, patch_sizes, stride, dims):
    fidelity = Fidelity(query_stride=stride, projection=dims)
    evaluator = TrialEvaluator(splits, fidelity=fidelity, seed=0, cache=FeatureCache(dtype=torch.float32))
    result = evaluator.evaluate(Architecture(PoolingEncoder.family, {}, blocks, patch_sizes))
    expected = _oracle_metrics(splits.train, splits.val, blocks, patch_sizes, stride, dims)
    exact = _oracle_metrics(splits.train, splits.val, blocks, patch_sizes)
    assert expected["rwap"] != pytest.approx(exact["rwap"], abs=1e-4)  # the fidelity changes what is measured
    for name, value in expected.items():
        assert result.metrics[name] == pytest.approx(float(value), abs=1e-4), name


def test_default_float16_cache_stays_close_to_the_oracle(splits):
    result = TrialEvaluator(splits).evaluate(Architecture(PoolingEncoder.family, {}, (1, 2), (3, 2)))
    expected = _oracle_metrics(splits.train, splits.val, (1, 2), (3, 2))
    for name, value in expected.items():
        assert result.metrics[name] == pytest.approx(float(value), abs=5e-3), name


def test_oracle_flag_scores_the_test_split(splits):
    arch = Architecture(PoolingEncoder.family, {}, (1, 2), (3, 1))
    result = TrialEvaluator(splits, oracle=True, cache=FeatureCache(dtype=torch.float32)).evaluate(arch)
    expected = _oracle_metrics(splits.train, splits.test, (1, 2), (3, 1))
    errors = {name for name in expected if name.endswith("_se")}
    assert not errors & set(result.metrics)  # Test' is an upper bound, not a choice: no standard errors
    for name in expected.keys() - errors:
        value = expected[name]
        assert result.metrics[name] == pytest.approx(float(value), abs=1e-5), name


def test_gflops_and_timings(splits):
    evaluator = TrialEvaluator(splits)
    shallow = evaluator.evaluate(Architecture(PoolingEncoder.family, {}, (1,), (1,)))
    deep = evaluator.evaluate(Architecture(PoolingEncoder.family, {}, (1, 2), (1, 1)))
    # 2 x MACs: conv 3->5, k4, 8x8 outputs; conv 5->7, k2, 4x4 outputs
    macs1 = 5 * 8 * 8 * 3 * 4 * 4
    macs2 = 7 * 4 * 4 * 5 * 2 * 2
    assert shallow.gflops == pytest.approx(2 * macs1 / 1e9)
    assert deep.gflops == pytest.approx(2 * (macs1 + macs2) / 1e9)
    assert list(deep.timings) == [*PHASES, "total"]
    assert deep.timings["total"] == sum(deep.timings[phase] for phase in PHASES)
    assert evaluator.cache.encodes == 2  # train and val encoded once for both trials


def _old_partial_bank_metrics(splits, blocks, patch_sizes, fraction, seed):
    """The pre-patchify_rows path, spelled out: patchify every train patch, let MemoryBank(fraction)
    pick its rows, score the val split with it."""
    encoder = PoolingEncoder().eval()

    def maps(images):
        with torch.no_grad():
            return encoder.forward_features(encoder.normalize(images), list(blocks))

    train = patchify(maps(splits.train.images), patch_sizes)
    bank = MemoryBank(fraction=fraction, seed=seed).fit(train.permute(0, 2, 3, 1).reshape(-1, train.shape[1]))
    query = patchify(maps(splits.val.images), patch_sizes)
    n, c, h, w = query.shape
    nearest = bank.nearest(query.permute(0, 2, 3, 1).reshape(-1, c).contiguous())
    scores = F.interpolate(nearest.view(n, 1, h, w), size=S, mode="bilinear", align_corners=False)[:, 0]
    return segmentation_metrics(scores.numpy(), splits.val.masks.numpy(), splits.val.types), bank


@pytest.mark.parametrize(
    "blocks, patch_sizes, fraction, seed",
    [((1,), (3,), 0.3, 0), ((1, 2), (3, 2), 0.3, 3), ((1, 2), (2, 5), 0.3, 1), ((1, 2), (1, 1), 0.05, 7)],
)
def test_a_partial_bank_equals_full_patchify_then_the_bank_fraction(splits, blocks, patch_sizes, fraction, seed):
    evaluator = TrialEvaluator(
        splits, fidelity=Fidelity(bank_fraction=fraction), seed=seed, cache=FeatureCache(dtype=torch.float32)
    )
    result = evaluator.evaluate(Architecture(PoolingEncoder.family, {}, blocks, patch_sizes))
    expected, old_bank = _old_partial_bank_metrics(splits, blocks, patch_sizes, fraction, seed)
    for name, value in expected.items():
        assert result.metrics[name] == pytest.approx(float(value), abs=1e-6), name
    # the same bank rows, in the same order (values equal up to float rounding of the bilinear taps)
    train_maps = evaluator.cache.block_maps(PoolingEncoder(), "train", splits.train.images, blocks)
    bank = MemoryBank(fraction=fraction, seed=seed)
    kept = PatchScorer(AveragePatchify(patch_sizes), bank, S).fit(train_maps).bank.patches
    torch.testing.assert_close(kept, old_bank.patches, rtol=1e-6, atol=1e-6)


def test_nan_features_fail_the_trial(splits):
    with pytest.raises(TrialFailed, match="NaN"):
        TrialEvaluator(splits).evaluate(Architecture(NaNEncoder.family, {}, (1,), (1,)))


def test_a_nan_train_patch_outside_the_kept_rows_still_fails_the_trial(splits):
    kept = set(kept_indices(4 * 8 * 8, 0.05, 2).tolist())
    OneNaNTrainPixelEncoder.row = next(r for r in range(256) if r not in kept)
    evaluator = TrialEvaluator(
        splits, fidelity=Fidelity(bank_fraction=0.05), seed=2, cache=FeatureCache(dtype=torch.float32)
    )
    with pytest.raises(TrialFailed, match="NaN"):
        evaluator.evaluate(Architecture(OneNaNTrainPixelEncoder.family, {}, (1,), (1,)))


def test_out_of_memory_fails_the_trial(splits):
    with pytest.raises(TrialFailed) as caught:
        TrialEvaluator(splits).evaluate(Architecture(OutOfMemoryEncoder.family, {}, (1,), (1,)))
    assert caught.value.reason == "out of memory"


@pytest.mark.slow  # builds OFA supernets and sub-networks (~20 s on a busy CPU)
def test_ofa_trials_slice_one_supernet_and_reuse_cached_setting_prefixes(splits):
    from autopatch.backbones import create_encoder
    from autopatch.backbones.flops import count_flops

    family = "ofa_mbv3_d234_e346_k357_w1.0"
    small = {"ks": [3] * 20, "e": [3] * 20, "d": [3, 3, 2, 2, 2]}
    large = {"ks": [7] * 20, "e": [6] * 20, "d": [2, 2, 4, 2, 2]}
    torch.manual_seed(0)  # the random-init supernet
    evaluator = TrialEvaluator(splits, pretrained=False, cache=FeatureCache(dtype=torch.float32))
    first = evaluator.evaluate(Architecture(family, small, (3, 7), (3, 3)))
    evaluator.evaluate(Architecture(family, large, (12,), (3,)))
    assert list(evaluator._supernets.loaded) == [family]  # one supernet, re-sliced per trial
    for config, blocks in [(small, (3, 7)), (large, (12,))]:
        reference = create_encoder(family, pretrained=False, **config)
        assert evaluator._gflops[(family, OFA_LAYOUT.block_prefix(config, blocks[-1]))] == pytest.approx(
            count_flops(reference, list(blocks), S) / 1e9
        )
    entries = len(evaluator.cache)
    # same network up to block 7 (later stages differ), other patch sizes: every map comes from the cache
    later_differs = {"ks": [3] * 12 + [7] * 8, "e": [3] * 12 + [6] * 8, "d": [3, 3, 2, 4, 4]}
    evaluator._supernets.loaded.clear()  # a cache miss would now need a supernet and fail the equality below
    torch.manual_seed(1)
    reused = evaluator.evaluate(Architecture(family, later_differs, (3, 7), (1, 5)))
    assert len(evaluator.cache) == entries and not evaluator._supernets.loaded
    assert reused.gflops == pytest.approx(first.gflops)
    # the cached maps are those of the first supernet: a fresh evaluator with that supernet agrees
    torch.manual_seed(0)
    fresh = TrialEvaluator(splits, pretrained=False, cache=FeatureCache(dtype=torch.float32))
    expected = fresh.evaluate(Architecture(family, small, (3, 7), (1, 5)))
    assert reused.metrics == pytest.approx(expected.metrics, abs=1e-6)


def test_an_even_patch_size_on_a_one_pixel_map_fails_the_trial():
    tiny = _split(4, ["good", "crack"])
    images, masks = tiny.images[:, :, :8, :8].contiguous(), tiny.masks[:, :8, :8].contiguous()
    masks[1, 2:5, 2:5] = True  # the crop must keep a defect, or the split is refused before any trial
    one_pixel = Split(images, masks, tiny.types, tiny.paths)
    splits = Splits(train=one_pixel, val=one_pixel, test=one_pixel)  # block 2 (stride 8) is 1x1
    with pytest.raises(TrialFailed, match="patch size 2 does not fit the 1x1 map of block 2"):
        TrialEvaluator(splits).evaluate(Architecture(PoolingEncoder.family, {}, (1, 2), (3, 2)))
