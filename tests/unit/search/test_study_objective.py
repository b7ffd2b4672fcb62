"""The real objective's infeasible trials and the up-front --max-gflops check against sampled architectures."""

from __future__ import annotations

import optuna
import pytest

from autopatch.errors import AutopatchError
from autopatch.search.evaluator import TrialFailed
from autopatch.search.spaces import get_space, pretrained_stages
from autopatch.search.study import ArchitectureObjective, _gflops, check_gflops_budget, smallest_architectures


def test_a_trial_without_any_block_fails_with_the_reason():
    space = get_space("pretrained")
    encoder = space.encoders[0]
    params = {"encoder": encoder}
    for index in range(len(pretrained_stages(encoder))):
        params[f"{encoder}_stage_{index}_block"] = None
        params[f"stage_{index}_patch_size"] = 3
    trial = optuna.trial.FixedTrial(params)
    with pytest.raises(TrialFailed, match="no extraction block"):
        ArchitectureObjective(space, evaluator=None)(trial)  # never reaches the evaluator


@pytest.mark.parametrize("space_name", ["pretrained", "ofa-fixed"])
def test_smallest_architecture_bounds_randomly_sampled_ones(space_name):
    space = get_space(space_name)
    smallest = min(_gflops(arch, 64) for arch in smallest_architectures(space))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    sampled = 0
    while sampled < 5:
        arch = space.suggest(study.ask())
        if arch is not None:
            assert _gflops(arch, 64) >= smallest
            sampled += 1
    check_gflops_budget(space, 64, smallest)  # exactly the smallest is feasible
    with pytest.raises(AutopatchError, match="below the smallest architecture") as error:
        check_gflops_budget(space, 64, smallest * 0.99)
    assert "\n" not in str(error.value)
