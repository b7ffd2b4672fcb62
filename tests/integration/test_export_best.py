"""`export --trial best` after a search at the fast fidelity picks by an exact re-score of the front, not by the
search's own (strided, projected) values: the oracle re-fits every front trial as a Segmenter and scores its
validation split."""

from __future__ import annotations

from pathlib import Path

import pytest

import autopatch
from autopatch.backbones import create_encoder
from autopatch.data import load_splits
from autopatch.search import FIDELITIES, Fidelity, best_trial
from autopatch.search.export import trial_architecture
from autopatch.search.pareto import objectives, pareto_front, select_trial
from autopatch.segmenter import Segmenter, fit_on_splits

TOY = Path(__file__).resolve().parents[2] / "examples" / "data" / "hazelnut_toy"
pytestmark = pytest.mark.slow


def oracle_value(trial, splits, seed: int, fraction: float) -> float:
    arch = trial_architecture(trial)
    encoder = create_encoder(arch.encoder, pretrained=True, **arch.encoder_config)
    segmenter = Segmenter(encoder, arch.block_ids, arch.patch_sizes, splits.image_size, bank_fraction=fraction,
                          device="cpu", seed=seed)  # fmt: skip
    return fit_on_splits(segmenter, splits)["metrics"]["rwap"]


def test_best_after_a_strided_projected_search_is_the_exactly_rescored_front_best(tmp_path):
    coarse = Fidelity(bank_fraction=0.5, query_stride=3, projection=4)  # far from exact, so the re-score matters
    found = autopatch.run_search(TOY, "hazelnut_toy", trials=8, image_size=64, fidelity=coarse, out=tmp_path,
                                 device="cpu", progress=False)  # fmt: skip
    trials = found.study.get_trials(deepcopy=False)
    front = pareto_front(trials)
    splits = load_splits(TOY, "hazelnut_toy", 1, image_size=64)
    exact = {t.number: oracle_value(t, splits, seed=0, fraction=0.5) for t in front}
    want = min(front, key=lambda t: (-exact[t.number], objectives(t)[0], t.number))
    assert best_trial(found.study, device="cpu").number == want.number
    # the search's own values rank the front otherwise, which is why the re-score is there
    searched = {t.number: objectives(t)[1] for t in front}
    assert sorted(front, key=lambda t: -searched[t.number]) != sorted(front, key=lambda t: -exact[t.number])


def test_best_of_a_study_at_full_query_fidelity_is_its_own_best_value(tmp_path):
    found = autopatch.run_search(TOY, "hazelnut_toy", trials=3, image_size=64, fidelity="full", bank_fraction=0.5,
                                 out=tmp_path, device="cpu", progress=False)  # fmt: skip
    trials = found.study.get_trials(deepcopy=False)
    assert best_trial(found.study, device="cpu").number == select_trial(trials, "best").number


def test_search_and_pareto_say_how_the_trials_were_scored(tmp_path, capsys):
    from autopatch.cli.main import main

    common = ["--image-size", "64", "--device", "cpu", "--trials", "2"]
    assert main(["search", str(TOY), "--category", "hazelnut_toy", *common, "--bank-fraction", "0.5",
                 "--out", str(tmp_path)]) == 0  # fmt: skip
    fast = FIDELITIES["fast"]
    said = (f"trials scored at bank fraction 0.5, query stride {fast.query_stride}, projection {fast.projection} "
            "dims; export --trial best re-scores the front exactly")  # fmt: skip
    assert said in capsys.readouterr().out.splitlines()
    assert main(["pareto", "--study", "hazelnut_toy-pretrained-k1-s0", "--runs", str(tmp_path)]) == 0
    assert said in capsys.readouterr().out.splitlines()
    assert main(["search", str(TOY), "--category", "hazelnut_toy", *common, "--fidelity", "full", "--study", "exact",
                 "--out", str(tmp_path)]) == 0  # fmt: skip
    assert "trials scored at bank fraction 1, query stride 1, projection none" in capsys.readouterr().out.splitlines()
