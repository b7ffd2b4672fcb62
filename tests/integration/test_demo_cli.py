"""`autopatch demo` end to end on the bundled toy data (tiny), then `pareto` and `export` on the study it left."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
import torch
from PIL import Image

from autopatch.cli.main import main

DATA = Path(__file__).resolve().parents[2] / "examples" / "data" / "hazelnut_toy"


def test_demo_writes_front_model_evaluation_and_heatmaps_then_pareto_and_export_reuse_it(
    tmp_path, capsys, sklearn_scores
):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--trials", "2", "--image-size", "64", "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "Pareto front" in printed and str(out.resolve()) in printed

    study = optuna.load_study(study_name="demo", storage=f"sqlite:///{out / 'demo.db'}")
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == 2
    assert Image.open(out / "pareto.png").format == "PNG"
    evaluation = json.loads((out / "evaluation.json").read_text())
    oracle = sklearn_scores(out / "model.pt", DATA, "hazelnut_toy")  # the written metrics are the saved model's
    assert evaluation["test"]["ap"] == pytest.approx(oracle["AP"], abs=1e-9)
    assert evaluation["test"]["auroc"] == pytest.approx(oracle["AUROC"], abs=1e-9)
    assert evaluation["test"]["f1"] == pytest.approx(oracle["F1"], abs=1e-9)
    # the best trial, or the study's reference PatchCore when no trial beats it on validation
    if evaluation["trial"] is None:
        assert evaluation["architecture"] == study.user_attrs["reference"]["architecture"]
    else:
        assert evaluation["architecture"] == next(t for t in complete if t.number == evaluation["trial"]).user_attrs[
            "architecture"
        ]
    model = torch.load(out / "model.pt", map_location="cpu", weights_only=True)
    assert model["image_size"] == [64, 64] and model["metadata"]["trial"] == evaluation["trial"]
    test_images = sorted(p.stem for p in (DATA / "hazelnut_toy" / "test" / "colour").glob("*.png"))
    assert sorted(p.stem for p in (out / "heatmaps" / "colour").glob("*.png")) == test_images
    assert (out / "heatmaps" / "good").is_dir()

    plot = tmp_path / "front.png"
    assert main(["pareto", "--study", "demo", "--runs", str(out), "--plot", str(plot)]) == 0
    table = capsys.readouterr().out
    assert "GFLOPs" in table and Image.open(plot).format == "PNG"

    cheapest = min(complete, key=lambda t: t.values[0])
    exported = tmp_path / "cheap.pt"
    args = ["export", "--study", "demo", "--runs", str(out), "--trial", str(cheapest.number), "--coreset", "0.5"]
    assert main([*args, "--device", "cpu", "--out", str(exported)]) == 0
    assert "rwAP" in capsys.readouterr().out
    assert torch.load(exported, map_location="cpu", weights_only=True)["metadata"]["trial"] == cheapest.number


def test_bad_inputs_are_one_line_errors_and_write_nothing(tmp_path, capsys):
    runs = tmp_path / "runs"
    cases = [
        ["search", str(DATA), "--category", "hazelnut_toy", "--space", "pretrained", "--k", "99", "--out", str(runs)],
        ["search", str(DATA), "--category", "nope", "--space", "pretrained", "--out", str(runs)],
        ["search", str(DATA), "--category", "hazelnut_toy", "--space", "pretrained", "--image-size", "64",
         "--max-gflops", "0.0001", "--out", str(runs)],
        ["search", str(DATA), "--category", "hazelnut_toy", "--space", "pretrained", "--workers", "2",
         "--storage", f"sqlite:///{runs / 'x.db'}", "--out", str(runs)],
        ["search", str(DATA), "--category", "hazelnut_toy", "--space", "pretrained", "--storage", "redis://x/0"],
        ["pareto", "--study", "missing", "--runs", str(runs)],
        ["export", "--study", "missing", "--runs", str(runs), "--out", str(tmp_path / "m.pt")],
        ["demo", "--data", str(tmp_path), "--out", str(runs)],
    ]
    for argv in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"autopatch {argv[0]}: error: "), (argv, err)
    assert not runs.exists() or list(runs.iterdir()) == []
