"""`autopatch search --cost latency --runtime onnx` end to end: every trial's first value is its measured ONNX
Runtime latency (encoder + head, both stored), GFLOPs are stored beside it, `pareto` prints both, and
`export --format onnx` writes the ONNX file with the model file beside it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna
import pytest

from autopatch.cli.main import main
from autopatch.deploy import OnnxInferencer, TorchInferencer
from autopatch.search.storage import open_storage

TOY = Path(__file__).resolve().parents[2] / "examples" / "data" / "hazelnut_toy"


@pytest.mark.slow
def test_a_latency_search_stores_latency_and_gflops_and_pareto_prints_both(tmp_path, capsys):
    args = ["search", str(TOY), "--category", "hazelnut_toy", "--image-size", "64", "--device", "cpu",
            "--trials", "4", "--cost", "latency", "--runtime", "onnx", "--out", str(tmp_path)]  # fmt: skip
    assert main(args) == 0
    name = "hazelnut_toy-pretrained-k1-s0-syn16-latency-onnx"
    study = optuna.load_study(study_name=name, storage=open_storage(f"sqlite:///{tmp_path / f'{name}.db'}"))
    complete = [t for t in study.get_trials() if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == 4
    for trial in complete:
        attrs = trial.user_attrs
        assert trial.values[0] == attrs["latency_ms"] == attrs["latency_encoder_ms"] + attrs["latency_head_ms"]
        assert attrs["latency_encoder_ms"] > 0 and attrs["latency_head_ms"] > 0 and attrs["gflops"] > 0
        assert attrs["timings"]["latency"] > 0
    capsys.readouterr()
    assert main(["pareto", "--study", name, "--runs", str(tmp_path), "--plot", str(tmp_path / "front.png")]) == 0
    header = next(line for line in capsys.readouterr().out.splitlines() if line.lstrip().startswith("trial"))
    assert header.split()[:3] == ["trial", "GFLOPs", "ms"]
    assert (tmp_path / "front.png").stat().st_size > 0
    assert main([*args[:-2], "--runtime", "openvino", "--study", name, "--out", str(tmp_path)]) == 2
    assert "runtime='onnx', not 'openvino'" in capsys.readouterr().err

    exported = ["export", "--study", name, "--runs", str(tmp_path), "--format", "onnx"]
    assert main([*exported, "--out", str(tmp_path / "model.pt")]) == 2  # refused before the re-fit
    assert "--out " in capsys.readouterr().err and not (tmp_path / "model.pt").exists()
    assert main([*exported, "--max-ms", "0.001", "--out", str(tmp_path / "model.onnx")]) == 2
    assert "no completed trial with at most 0.001 ms" in capsys.readouterr().err
    assert main([*exported, "--out", str(tmp_path / "model.onnx")]) == 0
    assert f"converted    {tmp_path / 'model.onnx'}" in capsys.readouterr().out
    images = np.random.default_rng(0).integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
    want = TorchInferencer(tmp_path / "model.pt").predict(images)
    got = OnnxInferencer(tmp_path / "model.onnx").predict(images)
    assert np.abs(got.anomaly_maps - want.anomaly_maps).max() <= 1e-4 * np.abs(want.anomaly_maps).max()
    assert (got.labels == want.labels).all()
