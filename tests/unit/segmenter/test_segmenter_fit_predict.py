"""Segmenter fit/predict/threshold/save-load on a tiny stand-in encoder, against brute-force numpy oracles."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.ndimage import gaussian_filter
from sklearn.metrics import average_precision_score, roc_auc_score
from torch import nn

from autopatch.backbones import BlockInfo, Encoder, list_encoders, register_encoder
from autopatch.data import Split, Splits
from autopatch.errors import AutopatchError
from autopatch.features import patchify
from autopatch.segmenter import Segmenter, fit_and_evaluate

FAMILY = "segmenter_unit_tiny"
SIZE = 32


class TinyEncoder(Encoder):
    """Strided 3x3 convs: block i has stride 2**(i+1) and 4 channels; a real Encoder, just small."""

    family = FAMILY
    mean = (0.5, 0.4, 0.3)
    std = (0.25, 0.2, 0.3)
    native_resolution = SIZE

    def __init__(self, depth: int = 3) -> None:
        super().__init__()
        self.depth = depth
        self.stages = nn.ModuleList(
            nn.Sequential(nn.Conv2d(3 if i == 0 else 4, 4, 3, stride=2, padding=1), nn.ReLU()) for i in range(depth)
        )

    @property
    def blocks(self) -> tuple[BlockInfo, ...]:
        return tuple(BlockInfo(i, f"stage{i}", i, 2 ** (i + 1), 4) for i in range(self.depth))

    def forward_features(self, x: torch.Tensor, block_ids: Sequence[int]) -> list[torch.Tensor]:
        outputs = {}
        for i in range(max(block_ids) + 1):
            x = self.stages[i](x)
            outputs[i] = x
        return [outputs[b] for b in block_ids]

    def config(self) -> dict:
        return {"depth": self.depth}

    def truncated(self, deepest_block: int) -> TinyEncoder:
        copy = TinyEncoder(deepest_block + 1)
        kept = {k: v.clone() for k, v in self.state_dict().items() if int(k.split(".")[1]) <= deepest_block}
        copy.load_state_dict(kept)
        return copy


if FAMILY not in list_encoders():

    @register_encoder(FAMILY)
    def _tiny(pretrained: bool = True, weights: str | None = None, **config: int) -> TinyEncoder:
        return TinyEncoder(**config)


def make_encoder() -> TinyEncoder:
    torch.manual_seed(0)
    return TinyEncoder()


def make_images(n: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, SIZE, SIZE), dtype=torch.uint8, generator=generator)


def oracle_scores(
    encoder: TinyEncoder, train: torch.Tensor, test: torch.Tensor, blocks: list[int], sizes: list[int]
) -> np.ndarray:
    """Brute-force: every test patch vs every train patch in float64, min squared L2, then resize."""

    def patches(images: torch.Tensor) -> np.ndarray:
        with torch.no_grad():
            maps = encoder.forward_features(encoder.normalize(images), blocks)
        return patchify(maps, sizes).double().numpy()

    bank = patches(train).transpose(0, 2, 3, 1).reshape(-1, 4 * len(blocks))
    query = patches(test)
    n, c, h, w = query.shape
    grid = np.zeros((n, h, w))
    for i in range(n):
        for y in range(h):
            for x in range(w):
                grid[i, y, x] = ((bank - query[i, :, y, x]) ** 2).sum(1).min()
    resized = F.interpolate(torch.from_numpy(grid)[:, None], size=(SIZE, SIZE), mode="bilinear", align_corners=False)
    return resized[:, 0].numpy()


def test_predict_matches_brute_force_nearest_neighbour() -> None:
    encoder, train, test = make_encoder(), make_images(4, 1), make_images(3, 2)
    segmenter = Segmenter(encoder, [0, 1], [3, 3], SIZE).fit(train, batch_size=3)
    scores = segmenter.predict(test, batch_size=2)
    assert scores.dtype == torch.float32 and scores.shape == (3, SIZE, SIZE) and scores.device.type == "cpu"
    want = oracle_scores(encoder, train, test, [0, 1], [3, 3])
    np.testing.assert_allclose(scores.numpy(), want, rtol=1e-4, atol=1e-4)


def test_training_images_score_zero_against_a_full_bank() -> None:
    train = make_images(3, 1)
    scores = Segmenter(make_encoder(), [1, 2], [3, 1], SIZE).fit(train).predict(train)
    assert float(scores.abs().max()) < 1e-3


def test_blocks_are_ordered_by_stride() -> None:
    encoder, train, test = make_encoder(), make_images(3, 1), make_images(2, 2)
    segmenter = Segmenter(encoder, [1, 0], [1, 3], SIZE)
    assert segmenter.block_ids == [0, 1] and segmenter.patch_sizes == [3, 1]
    assert segmenter.feature_map_size == (16, 16)
    want = oracle_scores(encoder, train, test, [0, 1], [3, 1])
    np.testing.assert_allclose(segmenter.fit(train).predict(test).numpy(), want, rtol=1e-4, atol=1e-4)


def test_smoothing_equals_scipy_gaussian_filter_of_raw_scores() -> None:
    encoder, train, test = make_encoder(), make_images(3, 1), make_images(2, 2)
    raw = Segmenter(encoder, [0], [3], SIZE).fit(train).predict(test)
    smooth = Segmenter(encoder, [0], [3], SIZE, smoothing_sigma=4.0).fit(train).predict(test)
    want = np.stack([gaussian_filter(m.astype(np.float64), sigma=4.0) for m in raw.numpy()])
    np.testing.assert_allclose(smooth.numpy(), want, rtol=1e-4, atol=1e-5)


def test_coreset_then_fraction_sizes_the_bank() -> None:
    train = make_images(4, 1)  # 4 x 16 x 16 = 1024 patches at block 0
    segmenter = Segmenter(make_encoder(), [0], [3], SIZE, coreset=0.25, bank_fraction=0.5).fit(train)
    assert segmenter.bank.patches.shape == (128, 4)  # floor(0.25 * 1024) = 256 coreset rows, then half kept


def test_gflops_counts_the_truncated_convolutions() -> None:
    segmenter = Segmenter(make_encoder(), [0, 1], [3, 3], SIZE)
    # 2 x MACs: conv0 3->4 at 16x16, conv1 4->4 at 8x8; the unused third stage is not counted
    want = 2 * (4 * 3 * 9 * 16 * 16 + 4 * 4 * 9 * 8 * 8)
    assert segmenter.gflops == pytest.approx(want / 1e9)


def test_fit_thresholds_maximise_pixel_and_image_f1_by_brute_force() -> None:
    encoder, train, val = make_encoder(), make_images(3, 1), make_images(4, 3)
    masks = torch.zeros(4, SIZE, SIZE, dtype=torch.bool)
    masks[0, 4:12, 6:20] = True
    masks[1, 20:30, 2:9] = True
    anomalous = [True, True, False, False]
    segmenter = Segmenter(encoder, [0], [3], SIZE).fit(train)
    result = segmenter.fit_thresholds(val, masks, anomalous)
    maps = segmenter.predict(val).numpy()
    scores, truth = maps.ravel(), masks.numpy().ravel()
    best = max(
        (2 * np.sum((scores >= t) & truth) / (np.sum(scores >= t) + truth.sum()), -t) for t in np.unique(scores)
    )
    assert result["f1"] == pytest.approx(best[0])
    assert segmenter.threshold == pytest.approx(-best[1]) == result["threshold"]
    per_image, labels = maps.reshape(4, -1).max(axis=1), np.array(anomalous)
    best_image = max(
        (2 * np.sum((per_image >= t) & labels) / (np.sum(per_image >= t) + labels.sum()), -t) for t in per_image
    )
    assert segmenter.image_threshold == pytest.approx(-best_image[1]) == result["image_threshold"]
    assert result["image_threshold_rule"] == "image F1-max on validation"


def make_split(images: torch.Tensor, masks: torch.Tensor) -> Split:
    types = ["defect" if bool(m.any()) else "good" for m in masks]
    return Split(images, masks, types, [Path(f"{i}.png") for i in range(len(types))])


def test_fit_and_evaluate_is_train_bank_val_threshold_test_metrics() -> None:
    encoder, train, val, test = make_encoder(), make_images(3, 1), make_images(2, 3), make_images(3, 4)
    val_masks = torch.zeros(2, SIZE, SIZE, dtype=torch.bool)
    val_masks[0, 4:12, 6:20] = True
    test_masks = torch.zeros(3, SIZE, SIZE, dtype=torch.bool)
    test_masks[1, 10:22, 3:15] = True
    none = torch.zeros(3, SIZE, SIZE, dtype=torch.bool)
    splits = Splits(make_split(train, none), make_split(val, val_masks), make_split(test, test_masks))
    result = fit_and_evaluate(Segmenter(encoder, [0, 1], [3, 3], SIZE), splits, batch_size=2)
    want = oracle_scores(encoder, train, test, [0, 1], [3, 3])
    np.testing.assert_allclose(result.test_scores, want, rtol=1e-4, atol=1e-4)
    truth = test_masks.numpy().ravel()
    assert result.test["ap"] == pytest.approx(average_precision_score(truth, result.test_scores.ravel()), abs=1e-9)
    alone = Segmenter(encoder, [0, 1], [3, 3], SIZE).fit(train)  # the threshold comes from val, not test
    alone_val = alone.fit_thresholds(val, val_masks, [True, False])
    plain = ("image_threshold_rule", "metrics", "draws")
    assert {k: v for k, v in result.val.items() if k not in plain} == pytest.approx(
        {k: v for k, v in alone_val.items() if k not in plain}, rel=1e-5
    )
    # the val split's own metrics, from the maps this model gives it (sklearn's AP over its pixels)
    val_maps = alone.predict(val).numpy()
    assert result.val["metrics"]["ap"] == pytest.approx(
        average_precision_score(val_masks.numpy().ravel(), val_maps.ravel()), abs=1e-6
    )
    image = {"image_auroc", "image_ap", "image_f1_max", "image_ap_se", "image_auroc_se"}
    assert set(alone_val["metrics"]) == image  # no defect types, no rwAP
    assert result.test["threshold"] == result.val["threshold"]
    assert result.test["image_threshold"] == result.val["image_threshold"]
    per_image = result.test_scores.reshape(3, -1).max(axis=1)
    assert result.test["image_auroc"] == pytest.approx(roc_auc_score([False, True, False], per_image), abs=1e-12)
    # 2 x MACs of the two strided 3x3 convs: 3->4 channels onto 16x16, 4->4 onto 8x8
    assert result.test["gflops"] == pytest.approx(2 * (4 * 16 * 16 * 3 * 9 + 4 * 8 * 8 * 4 * 9) / 1e9)
    assert result.test["images"] == 3


def test_save_load_round_trip_gives_identical_scores(tmp_path: Path) -> None:
    encoder, train, test = make_encoder(), make_images(3, 1), make_images(2, 2)
    segmenter = Segmenter(encoder, [0, 1], [3, 3], SIZE, bank_fraction=0.5, smoothing_sigma=2.0).fit(train)
    segmenter.threshold, segmenter.image_threshold = 1.25, 3.5
    segmenter.metadata = {"category": "bottle", "val": {"f1": 0.5}}
    before = segmenter.predict(test)
    path = segmenter.save(tmp_path / "model.pt")

    raw = torch.load(path, weights_only=True)
    assert raw["format"] == "autopatch-model" and raw["block_ids"] == [0, 1]
    assert not any(key.startswith("stages.2") for key in raw["encoder"]["state_dict"])  # truncated at block 1

    loaded = Segmenter.load(path)
    assert torch.equal(loaded.predict(test), before)
    assert loaded.threshold == 1.25 and loaded.metadata == {"category": "bottle", "val": {"f1": 0.5}}
    assert loaded.image_threshold == 3.5
    assert loaded.smoothing_sigma == 2.0 and loaded.image_size == (SIZE, SIZE)

    del raw["image_threshold"]  # a format-1 file, written before image thresholds: loads without one
    torch.save({**raw, "format_version": 1}, tmp_path / "v1.pt")
    old = Segmenter.load(tmp_path / "v1.pt")
    assert old.image_threshold is None and old.threshold == 1.25


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_scores_match_cpu() -> None:
    encoder, train, test = make_encoder(), make_images(3, 1), make_images(2, 2)
    cpu = Segmenter(encoder, [0, 1], [3, 3], SIZE, smoothing_sigma=4.0).fit(train).predict(test)
    gpu = Segmenter(encoder, [0, 1], [3, 3], SIZE, smoothing_sigma=4.0, device="cuda").fit(train).predict(test)
    assert gpu.device.type == "cpu"
    np.testing.assert_allclose(gpu.numpy(), cpu.numpy(), rtol=1e-3, atol=1e-3)


def test_wrong_image_size_is_a_clear_error() -> None:
    segmenter = Segmenter(make_encoder(), [0], [3], SIZE).fit(make_images(2, 1))
    with pytest.raises(AutopatchError, match=r"expects \(3, 32, 32\); load them with image_size=32"):
        segmenter.predict(torch.zeros(1, 3, 40, 40, dtype=torch.uint8))


def test_unknown_block_and_mismatched_patch_sizes_are_clear_errors() -> None:
    with pytest.raises(AutopatchError, match="has no block 7"):
        Segmenter(make_encoder(), [7], [3], SIZE)
    with pytest.raises(AutopatchError, match="one patch size per block"):
        Segmenter(make_encoder(), [0, 1], [3], SIZE)


def test_load_refuses_weights_that_do_not_fit_the_encoder(tmp_path: Path) -> None:
    path = Segmenter(make_encoder(), [0], [3], SIZE).fit(make_images(2, 1)).save(tmp_path / "model.pt")
    raw = torch.load(path, weights_only=True)
    raw["encoder"]["state_dict"]["stages.0.0.weight"] = torch.zeros(4, 3, 5, 5)
    torch.save(raw, path)
    with pytest.raises(AutopatchError, match=r"model\.pt: encoder weights do not fit segmenter_unit_tiny"):
        Segmenter.load(path)


def test_save_refuses_metadata_that_is_not_json(tmp_path: Path) -> None:
    segmenter = Segmenter(make_encoder(), [0], [3], SIZE).fit(make_images(2, 1))
    segmenter.metadata = {"root": tmp_path}
    with pytest.raises(AutopatchError, match="JSON-serialisable"):
        segmenter.save(tmp_path / "model.pt")
