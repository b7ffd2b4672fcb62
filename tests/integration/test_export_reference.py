"""`export --trial best` keeps the study's reference model (PatchCore on the space's smallest encoder) unless the
lower-bound pick beats it on validation by more than the standard error of the paired difference. The oracles
fit PatchCore through the public baseline path and the pick as a plain Segmenter, and compute the paired
difference in a loop of their own."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

import autopatch
from autopatch.backbones import create_encoder
from autopatch.baselines import build_patchcore
from autopatch.data import load_splits
from autopatch.search import REFERENCE_ATTR, best_trial
from autopatch.search.export import trial_architecture
from autopatch.segmenter import Segmenter, fit_on_splits

TOY = Path(__file__).resolve().parents[2] / "examples" / "data" / "hazelnut_toy"
pytestmark = pytest.mark.slow


def paired_margin(value, draws, other, other_draws) -> float:
    differences = [a - b for a, b in zip(draws, other_draws, strict=True) if not math.isnan(a - b)]
    mean = sum(differences) / len(differences)
    spread = math.sqrt(sum((d - mean) ** 2 for d in differences) / (len(differences) - 1))
    return value - other - spread


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    out = tmp_path_factory.mktemp("reference")  # no synthetic anomalies: the same splits as run_baseline's
    return out, autopatch.run_search(TOY, "hazelnut_toy", trials=4, image_size=64, fidelity="full", bank_fraction=0.5,
                                synthetic=0, out=out, device="cpu", progress=False, seed=3)  # fmt: skip


def test_the_pick_is_compared_with_patchcore_fitted_on_the_same_splits(searched, capsys):
    from autopatch.cli.main import main

    runs, found = searched
    assert main(["pareto", "--study", found.study_name, "--runs", str(runs)]) == 0
    assert "export --trial best keeps PatchCore on the space's smallest encoder" in capsys.readouterr().out
    splits = load_splits(TOY, "hazelnut_toy", 1, image_size=64)
    patchcore = build_patchcore(create_encoder("efficientnet_lite0", pretrained=True), 64, seed=3)
    reference = fit_on_splits(patchcore, splits)
    pick = best_trial(found.study, device="cpu")
    arch = trial_architecture(pick.candidate)
    segmenter = Segmenter(create_encoder(arch.encoder, pretrained=True), arch.block_ids, arch.patch_sizes, 64,
                          bank_fraction=0.5, device="cpu", seed=3)  # fmt: skip
    mine = fit_on_splits(segmenter, splits)
    want = paired_margin(mine["metrics"]["rwap"], mine["draws"]["rwap"], reference["metrics"]["rwap"],
                         reference["draws"]["rwap"])  # fmt: skip
    assert pick.margin == pytest.approx(want, abs=1e-3)  # the search's evaluator and a Segmenter agree to ~1e-4
    assert pick.reference.metrics["rwap"] == pytest.approx(reference["metrics"]["rwap"], abs=1e-9)
    assert (pick.trial is pick.candidate) == (want > 0)
    # fitted once and kept with the study, and `pareto` shows it
    assert found.study.user_attrs[REFERENCE_ATTR]["metrics"]["rwap"] == pick.reference.metrics["rwap"]
    assert main(["pareto", "--study", found.study_name, "--runs", str(runs)]) == 0
    value = reference["metrics"]["rwap"]
    shown = f"reference PatchCore efficientnet_lite0 [4,10] coreset 0.1: validation rwAP {value:.4f}"
    assert shown in capsys.readouterr().out


def test_export_writes_the_reference_when_no_trial_beats_it(searched, tmp_path, capsys):
    from autopatch.cli.main import main

    runs, found = searched
    stored = dict(found.study.user_attrs[REFERENCE_ATTR])
    unbeatable = {**stored, "metrics": {**stored["metrics"], "rwap": 1.0}, "draws": {"rwap": [1.0] * 100}}
    found.study.set_user_attr(REFERENCE_ATTR, unbeatable)
    try:
        exported = autopatch.export(found, tmp_path / "model.pt", device="cpu")
        assert exported.trial is None and exported.pick.trial is None and exported.pick.margin < 0
        baseline = autopatch.run_baseline(TOY, "hazelnut_toy", "efficientnet_lite0", image_size=64, seed=3,
                                          device="cpu")  # fmt: skip
        assert exported.test_metrics["rwap"] == pytest.approx(baseline.metrics["rwap"], abs=1e-9)
        assert Segmenter.load(exported.path).aggregation.kind == "patchcore"
        assert main(["export", "--study", found.study_name, "--runs", str(runs), "--device", "cpu",
                     "--out", str(tmp_path / "cli.pt")]) == 0  # fmt: skip
        printed = capsys.readouterr().out
        assert "trial        none: the study's reference model, PatchCore efficientnet_lite0" in printed
        assert "does not beat it on validation" in printed
        # --no-reference: the lower-bound pick, whatever the reference scores
        assert main(["export", "--study", found.study_name, "--runs", str(runs), "--device", "cpu",
                     "--no-reference", "--out", str(tmp_path / "own.pt")]) == 0  # fmt: skip
        assert f"trial        {best_trial(found.study, reference=False).trial.number}:" in capsys.readouterr().out
    finally:
        found.study.set_user_attr(REFERENCE_ATTR, stored)
