"""`autopatch baseline` on the shipped hazelnut toy set: prints evaluate's table, and the saved PatchCore
model file is an ordinary model file that `autopatch evaluate` reloads to the same numbers."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from autopatch.cli.common import METRIC_ROWS
from autopatch.cli.main import main

TOY_ROOT = Path(__file__).resolve().parents[3] / "examples" / "data" / "hazelnut_toy"


def table(printed: str) -> dict[str, str]:
    labels = {label for label, _ in METRIC_ROWS}
    rows = (line.split() for line in printed.splitlines())
    return {parts[0]: parts[1] for parts in rows if parts and parts[0] in labels}


def test_baseline_prints_evaluate_table_and_saves_a_loadable_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], sklearn_scores
) -> None:
    model = tmp_path / "patchcore.pt"
    code = main([
        "baseline", str(TOY_ROOT), "--category", "hazelnut_toy", "--backbone", "efficientnet_lite0",
        "--image-size", "64", "--coreset", "0.5", "--device", "cpu", "--out", str(model),
    ])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    rows = table(printed)
    assert set(rows) == {label for label, _ in METRIC_ROWS}
    assert "PatchCore efficientnet_lite0 [4,10] coreset 0.5" in printed
    for label, value in sklearn_scores(model, TOY_ROOT, "hazelnut_toy").items():  # what was printed is the model's
        assert float(rows[label]) == pytest.approx(value, abs=6e-5), label

    raw = torch.load(model, weights_only=True)
    assert raw["aggregation"]["kind"] == "patchcore" and raw["smoothing_sigma"] == 4.0
    assert raw["block_ids"] == [4, 10] and raw["bank"]["patches"].shape[1] == 1024

    assert main(["evaluate", str(model), str(TOY_ROOT), "--device", "cpu"]) == 0
    again = table(capsys.readouterr().out)
    for label in ("rwAP", "AP", "AUROC", "AUROC@0.3", "AUPRO@0.3", "threshold", "F1", "GFLOPs"):
        assert again[label] == rows[label]


def test_unknown_layer_is_a_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["baseline", str(TOY_ROOT), "--category", "hazelnut_toy", "--backbone", "efficientnet_lite0",
                 "--layers", "4,99", "--image-size", "64", "--device", "cpu"])  # fmt: skip
    assert code == 2
    assert "no block 99" in capsys.readouterr().err


def test_baseline_on_a_folder_dataset_without_masks_decides_per_image(tmp_path: Path, capsys) -> None:
    toy = TOY_ROOT / "hazelnut_toy"
    model = tmp_path / "patchcore.pt"
    code = main([
        "baseline", "--normal-dir", str(toy / "train" / "good"), "--abnormal-dir", str(toy / "test" / "colour"),
        "--backbone", "efficientnet_lite0", "--image-size", "32x64", "--coreset", "0.5", "--device", "cpu",
        "--out", str(model),
    ])  # fmt: skip
    assert code == 0
    rows = table(capsys.readouterr().out)
    assert rows["rwAP"] == "-" and rows["threshold"] == "-"  # no masks: no pixel metric, no pixel threshold
    raw = torch.load(model, weights_only=True)
    assert raw["image_size"] == [32, 64] and raw["threshold"] is None and isinstance(raw["image_threshold"], float)
    assert raw["metadata"]["category"] == "hazelnut_toy"  # the folder that holds both folders
