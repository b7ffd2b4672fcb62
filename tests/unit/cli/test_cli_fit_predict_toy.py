"""`autopatch fit / evaluate / predict` end to end on the shipped hazelnut toy set with a tiny stand-in encoder."""

from __future__ import annotations

import csv
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from autopatch.backbones import BlockInfo, Encoder, list_encoders, register_encoder
from autopatch.cli.main import main
from autopatch.data import load_images
from autopatch.segmenter import Segmenter

TOY_ROOT = Path(__file__).resolve().parents[3] / "examples" / "data" / "hazelnut_toy"
FAMILY = "cli_unit_tiny"


class PooledPixels(Encoder):
    """Block 0: 4x4-average-pooled normalised pixels (stride 4); block 1: a fixed 1x1 conv of it pooled again."""

    family = FAMILY
    mean = (0.5, 0.5, 0.5)
    std = (0.25, 0.25, 0.25)
    native_resolution = 32

    def __init__(self, depth: int = 2) -> None:
        super().__init__()
        self.depth = depth
        self.mix = nn.Conv2d(3, 3, 1)
        with torch.no_grad():
            self.mix.weight.copy_(torch.eye(3).view(3, 3, 1, 1))
            self.mix.bias.zero_()

    @property
    def blocks(self) -> tuple[BlockInfo, ...]:
        return (BlockInfo(0, "pool4", 0, 4, 3), BlockInfo(1, "pool8", 1, 8, 3))[: self.depth]

    def forward_features(self, x: torch.Tensor, block_ids: Sequence[int]) -> list[torch.Tensor]:
        first = nn.functional.avg_pool2d(x, 4)
        second = nn.functional.avg_pool2d(self.mix(first), 2)
        return [first if b == 0 else second for b in block_ids]

    def config(self) -> dict:
        return {"depth": self.depth}

    def truncated(self, deepest_block: int) -> PooledPixels:
        copy = PooledPixels(deepest_block + 1)
        copy.load_state_dict(self.state_dict())
        return copy


if FAMILY not in list_encoders():

    @register_encoder(FAMILY)
    def _pooled(pretrained: bool = True, weights: str | None = None, **config: int) -> PooledPixels:
        return PooledPixels(**config)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("model") / "toy.pt"
    code = main([
        "fit", str(TOY_ROOT), "--category", "hazelnut_toy", "--backbone", FAMILY, "--blocks", "1,0",
        "--patch-sizes", "1,3", "--image-size", "64", "--coreset", "0.5", "--device", "cpu", "--out", str(out),
    ])  # fmt: skip
    assert code == 0
    return out


def test_fit_writes_a_model_with_threshold_and_metadata(model_file: Path, capsys: pytest.CaptureFixture) -> None:
    raw = torch.load(model_file, weights_only=True)
    assert raw["block_ids"] == [0, 1] and raw["patch_sizes"] == [3, 1] and raw["image_size"] == [64, 64]
    assert isinstance(raw["threshold"], float) and isinstance(raw["image_threshold"], float)
    assert raw["metadata"]["category"] == "hazelnut_toy"
    assert raw["metadata"]["val"]["threshold"] == raw["threshold"]
    assert raw["metadata"]["val"]["image_threshold"] == raw["image_threshold"]
    # train images x 16 x 16 patches (stride 4 at 64 px), half kept by the coreset
    assert raw["bank"]["patches"].shape == (raw["metadata"]["train_images"] * 16 * 16 // 2, 6)


def test_evaluate_prints_the_models_metrics(model_file: Path, capsys: pytest.CaptureFixture, sklearn_scores) -> None:
    assert main(["evaluate", str(model_file), str(TOY_ROOT), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split()[1] for line in out.splitlines()[1:]}
    for label in ("rwAP", "AP", "AUROC", "AUROC@0.3", "AUPRO@0.3", "F1", "precision", "recall", "GFLOPs", "images/s",
                  "image-F1max", "image-thr", "image-FPR"):  # fmt: skip
        assert label in rows
    for label, value in sklearn_scores(model_file, TOY_ROOT, "hazelnut_toy").items():
        assert float(rows[label]) == pytest.approx(value, abs=6e-5), label


def test_predict_folder_skips_non_images_and_reports_unreadable(
    model_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    source = tmp_path / "in"
    source.mkdir()
    goods = sorted((TOY_ROOT / "hazelnut_toy" / "test" / "colour").glob("*.png"))[:2]
    for path in goods:
        shutil.copy(path, source / path.name)
    (source / "notes.txt").write_text("not an image\n")
    (source / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    out = tmp_path / "out"
    assert main(["predict", str(model_file), str(source), "--out", str(out), "--device", "cpu"]) == 1  # one failed
    err = capsys.readouterr().err
    assert "skipped" in err and "notes.txt" in err
    assert "could not read" in err and "broken.png" in err
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"{p.stem}.png" for p in goods] + [f"{p.stem}.npy" for p in goods] + ["predictions.csv"]
    )
    strip = np.asarray(Image.open(out / f"{goods[0].stem}.png"))
    assert strip.shape == (64, 3 * 64, 3)
    scores = np.load(out / f"{goods[0].stem}.npy")
    width, height = Image.open(goods[0]).size  # the map comes back at the input file's own size
    assert scores.shape == (height, width) and scores.dtype == np.float32 and np.all(scores >= 0)


def test_predict_writes_a_verdict_per_image_by_the_stored_thresholds(
    model_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    source = tmp_path / "in"
    source.mkdir()
    for kind in ("good", "colour"):
        for path in sorted((TOY_ROOT / "hazelnut_toy" / "test" / kind).glob("*.png"))[:4]:
            shutil.copy(path, source / f"{kind}_{path.name}")
    out = tmp_path / "out"
    assert main(["predict", str(model_file), str(source), "--out", str(out)]) == 0
    raw = torch.load(model_file, weights_only=True)
    with open(out / "predictions.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [Path(row["file"]).name for row in rows] == sorted(p.name for p in source.iterdir())
    model = Segmenter.load(model_file)
    for row in rows:  # the oracle: the model's map at its size, torch's bilinear resize, the stored thresholds
        at_model = model.predict(load_images([row["file"]], model.image_size))
        width, height = Image.open(row["file"]).size
        want = F.interpolate(at_model[None], size=(height, width), mode="bilinear", align_corners=False)[0, 0]
        scores = np.load(out / f"{Path(row['file']).stem}.npy")
        np.testing.assert_allclose(scores, want.numpy(), rtol=0, atol=1e-5 * float(at_model.max()))
        assert float(row["image_score"]) == pytest.approx(float(at_model.max()), rel=1e-6)
        assert row["label"] == ("NG" if float(row["image_score"]) >= raw["image_threshold"] else "OK")
        assert int(row["defect_area_px"]) == int((scores >= raw["threshold"]).sum())
    ng = sum(row["label"] == "NG" for row in rows)
    assert f"8 images, {ng} NG (image threshold" in capsys.readouterr().out


def test_predict_exits_zero_only_when_every_image_was_read(model_file: Path, tmp_path: Path) -> None:
    good = sorted((TOY_ROOT / "hazelnut_toy" / "test" / "colour").glob("*.png"))[0]
    assert main(["predict", str(model_file), str(good), "--out", str(tmp_path / "one")]) == 0
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "broken.jpg").write_bytes(b"nope")
    assert main(["predict", str(model_file), str(tmp_path / "in"), "--out", str(tmp_path / "out")]) == 1


def test_evaluate_rejects_a_non_model_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bogus = tmp_path / "bogus.pt"
    bogus.write_text("hello")
    assert main(["evaluate", str(bogus), str(TOY_ROOT)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("autopatch evaluate: error: model file") and "bogus.pt" in err and "\n" not in err


def test_fit_rejects_a_malformed_block_list() -> None:
    with pytest.raises(SystemExit) as info:
        main(["fit", str(TOY_ROOT), "--category", "hazelnut_toy", "--backbone", FAMILY,
              "--blocks", "a,b", "--patch-sizes", "3", "--out", "x.pt"])  # fmt: skip
    assert info.value.code == 2


def test_fit_and_evaluate_a_folder_dataset_without_masks(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from sklearn.metrics import roc_auc_score

    from autopatch.data import FolderDataset, load_splits
    from autopatch.segmenter import Segmenter

    good, bad = TOY_ROOT / "hazelnut_toy" / "train" / "good", TOY_ROOT / "hazelnut_toy" / "test" / "colour"
    folders = ["--normal-dir", str(good), "--abnormal-dir", str(bad)]
    out = tmp_path / "folders.pt"
    assert main(["fit", *folders, "--backbone", FAMILY, "--blocks", "0", "--patch-sizes", "3",
                 "--image-size", "64", "--out", str(out)]) == 0  # fmt: skip
    assert "no masks: image-level decisions only" in capsys.readouterr().out
    model = Segmenter.load(out)
    assert model.threshold is None and isinstance(model.image_threshold, float)
    assert main(["evaluate", str(out), *folders]) == 0
    rows = {line.split()[0]: line.split()[1] for line in capsys.readouterr().out.splitlines()[1:]}
    assert rows["rwAP"] == rows["AUPRO@0.3"] == rows["F1"] == "-"  # no masks, no pixel metrics
    test = load_splits(FolderDataset(good, bad), None, 1, image_size=64).test
    per_image = model.predict(test.images).numpy().max(axis=(1, 2))
    assert float(rows["image-AUROC"]) == pytest.approx(roc_auc_score(test.is_anomalous, per_image), abs=6e-5)
    assert main(["evaluate", str(out), str(TOY_ROOT), *folders]) == 2  # both kinds of data at once
    assert "not both" in capsys.readouterr().err
