"""Every new study scores the space's default architectures first: PatchCore's choice (the last blocks of the
stride-8 and stride-16 stages, patch size 3) per encoder, checked against each encoder's own block table."""

from __future__ import annotations

import optuna
import pytest

from autopatch.backbones import OFA_LAYOUT, create_encoder
from autopatch.search.definition import DEFAULT_ATTR, StudySettings, open_study
from autopatch.search.evaluator import TrialResult
from autopatch.search.spaces import get_space
from autopatch.search.study import ArchitectureObjective, run_study


def last_block_at(blocks, stride):
    found = None
    for info in blocks:
        if info.stride == stride:
            found = info.id
    return found


def test_pretrained_defaults_are_patchcore_blocks_with_patch_size_3():
    space = get_space("pretrained")
    defaults = space.defaults()
    assert [arch.encoder for arch in defaults] == list(space.encoders)
    for arch in defaults:
        blocks = create_encoder(arch.encoder, pretrained=False).blocks
        assert arch.block_ids == (last_block_at(blocks, 8), last_block_at(blocks, 16))
        assert arch.patch_sizes == (3, 3)
    assert defaults[0].block_ids == (4, 10)  # PatchCore-Lite0, the README's baseline


@pytest.mark.parametrize(("name", "families"), [("ofa", OFA_LAYOUT.families), ("ofa-fixed", [OFA_LAYOUT.family(1.2)])])
def test_ofa_defaults_are_the_trained_supernet_with_patchcore_blocks(name, families):
    defaults = get_space(name).defaults()
    assert [arch.encoder for arch in defaults] == list(families)
    for arch in defaults:
        assert arch.block_ids == (8, 16)  # stage 2 (stride 8) and stage 4 (stride 16), deepest blocks
        assert arch.patch_sizes == (3, 3)
        assert set(arch.encoder_config["ks"][:16]) == {7} and set(arch.encoder_config["e"][:16]) == {6}
        blocks = create_encoder(arch.encoder, pretrained=False, **arch.encoder_config).blocks
        assert arch.block_ids == (last_block_at(blocks, 8), last_block_at(blocks, 16))


def test_a_new_study_holds_the_defaults_first_and_a_resumed_one_adds_none(tmp_path):
    storage = optuna.storages.InMemoryStorage()
    settings, first = StudySettings(str(tmp_path), "toy"), get_space("pretrained").default_params()
    study = open_study(settings, "s", storage, first_trials=first)
    waiting = study.get_trials(deepcopy=False)
    assert [t.state for t in waiting] == [optuna.trial.TrialState.WAITING] * len(first)
    assert all(t.user_attrs[DEFAULT_ATTR] for t in waiting)
    assert len(open_study(settings, "s", storage, first_trials=first).get_trials(deepcopy=False)) == len(first)


class Scores:
    def __init__(self) -> None:
        self.scored = []

    def evaluate(self, arch):
        self.scored.append(arch)
        metrics = {"rwap": 0.5, "ap": 0.4, "auroc": 0.9, "pauroc_0.3": 0.8, "aupro_0.3": 0.7}
        return TrialResult(metrics=metrics, gflops=0.1 * len(self.scored), timings={"total": 1.0})


class Factory:
    def __init__(self, space) -> None:
        self.space = space
        self.scores = Scores()

    def __call__(self):
        return ArchitectureObjective(self.space, self.scores)


def test_the_first_trials_of_a_search_score_the_defaults_then_the_sampler_takes_over(tmp_path):
    space = get_space("pretrained")
    factory, defaults = Factory(space), len(space.defaults())
    summary = run_study(StudySettings(str(tmp_path), "toy"), trials=defaults + 2, factory=factory, out_dir=tmp_path,
                        progress=False)  # fmt: skip
    assert factory.scores.scored[:defaults] == space.defaults()
    trials = summary.study.get_trials()
    assert [bool(t.user_attrs.get(DEFAULT_ATTR)) for t in trials] == [True] * defaults + [False] * 2
