"""A search with no real defect: `--k 0 --synthetic N` validates on synthetic anomalies, is recorded with its
settings, refuses a resume with others, and exports a model whose thresholds come from that validation. Without
`--synthetic` a search adds 16 of them, unless it is scored on Test'."""

from __future__ import annotations

from pathlib import Path

import optuna

from autopatch.cli.main import main
from autopatch.data import load_splits
from autopatch.search.storage import open_storage

TOY = Path(__file__).resolve().parents[2] / "examples" / "data" / "hazelnut_toy"
COMMON = ["--category", "hazelnut_toy", "--image-size", "64", "--device", "cpu"]


def test_a_search_with_zero_real_defects_runs_resumes_and_exports(tmp_path, capsys):
    args = ["search", str(TOY), *COMMON, "--k", "0", "--synthetic", "6", "--trials", "4", "--out", str(tmp_path)]
    assert main(args) == 0
    name = "hazelnut_toy-pretrained-k0-s0-syn6"
    study = optuna.load_study(study_name=name, storage=open_storage(f"sqlite:///{tmp_path / f'{name}.db'}"))
    assert study.user_attrs["synthetic"] == 6 and study.user_attrs["k"] == 0
    complete = [t for t in study.get_trials() if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == 4 and all(0 < t.user_attrs["rwap"] < 1 for t in complete)  # pixel metrics: masks exist
    capsys.readouterr()
    assert main([*args[:-4], "--synthetic-kind", "nsa", "--study", name, "--trials", "5", "--out", str(tmp_path)]) == 2
    assert "synthetic_kind='mix', not 'nsa'" in capsys.readouterr().err
    model = tmp_path / "model.pt"
    assert main(["export", "--study", name, "--runs", str(tmp_path), "--out", str(model)]) == 0
    printed = capsys.readouterr().out
    val = load_splits(TOY, "hazelnut_toy", 0, image_size=64, synthetic=6)
    assert sum(kind.startswith("synthetic_") for kind in val.val.types) == 6
    assert "image thr" in printed and "(image F1-max on validation)" in printed  # chosen on synthetic anomalies


def test_a_search_adds_16_synthetic_anomalies_unless_told_not_to_or_scored_on_test(tmp_path):
    for extra, name, synthetic in (
        ([], "hazelnut_toy-pretrained-k1-s0-syn16", 16),  # the documented default
        (["--synthetic", "0"], "hazelnut_toy-pretrained-k1-s0", 0),  # the paper's protocol, and older studies'
        (["--test-oracle"], "hazelnut_toy-pretrained-k1-s0-oracle", 0),  # Test' is the validation: nothing added
    ):
        assert main(["search", str(TOY), *COMMON, *extra, "--trials", "1", "--out", str(tmp_path)]) == 0
        study = optuna.load_study(study_name=name, storage=open_storage(f"sqlite:///{tmp_path / f'{name}.db'}"))
        assert study.user_attrs["synthetic"] == synthetic
