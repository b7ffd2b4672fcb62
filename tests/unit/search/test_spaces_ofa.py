"""The `ofa` and `ofa-fixed` spaces obey the paper's Table 1 / Table 7 over many random trials."""

import optuna
import pytest

from autopatch.search.spaces import get_space

optuna.logging.set_verbosity(optuna.logging.WARNING)

# Table 1, written out by hand (the supernet's block_group_info): stage i holds blocks 4i-3 .. 4i.
STAGE_BLOCKS = {1: [1, 2, 3, 4], 2: [5, 6, 7, 8], 3: [9, 10, 11, 12], 4: [13, 14, 15, 16], 5: [17, 18, 19, 20]}
WIDTHS = {"ofa_mbv3_d234_e346_k357_w1.0", "ofa_mbv3_d234_e346_k357_w1.2"}
N_TRIALS = 300


def _ask_many(space_name, n=N_TRIALS, seed=0):
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    space = get_space(space_name)
    for _ in range(n):
        trial = study.ask()
        yield trial, space.suggest(trial)


def test_ofa_space_parameter_names_and_ranges_follow_table_1():
    expected_names = {"supernet_name"} | {
        f"stage_{i}_{p}" for i in range(5) for p in ("kernel_size", "expand_ratio", "block", "patch_size")
    }
    seen_blocks = {i: set() for i in range(5)}
    seen_patch = set()
    for trial, _ in _ask_many("ofa"):
        params = trial.params
        assert set(params) == expected_names
        assert params["supernet_name"] in WIDTHS
        for i in range(5):
            assert params[f"stage_{i}_kernel_size"] in (3, 5, 7)
            assert params[f"stage_{i}_expand_ratio"] in (3, 4, 6)
            assert params[f"stage_{i}_block"] in (None, *STAGE_BLOCKS[i + 1])
            assert 1 <= params[f"stage_{i}_patch_size"] <= 16
            seen_blocks[i].add(params[f"stage_{i}_block"])
            seen_patch.add(params[f"stage_{i}_patch_size"])
    for i in range(5):  # every choice is reachable
        assert seen_blocks[i] == {None, *STAGE_BLOCKS[i + 1]}
    assert seen_patch == set(range(1, 17))


def test_ofa_space_architecture_matches_the_params_and_the_depth_rule():
    infeasible = 0
    for trial, arch in _ask_many("ofa"):
        p = trial.params
        chosen = [p[f"stage_{i}_block"] for i in range(5)]
        if all(b is None for b in chosen):
            assert arch is None
            infeasible += 1
            continue
        assert arch.encoder == p["supernet_name"]
        assert list(arch.block_ids) == [b for b in chosen if b is not None]
        assert list(arch.patch_sizes) == [p[f"stage_{i}_patch_size"] for i in range(5) if chosen[i] is not None]
        ks, e, d = arch.encoder_config["ks"], arch.encoder_config["e"], arch.encoder_config["d"]
        assert len(ks) == len(e) == 20 and len(d) == 5
        for i in range(5):
            stage = STAGE_BLOCKS[i + 1]
            assert [ks[b - 1] for b in stage] == [p[f"stage_{i}_kernel_size"]] * 4  # one kernel per stage
            assert [e[b - 1] for b in stage] == [p[f"stage_{i}_expand_ratio"]] * 4
            block = chosen[i]
            expected_depth = 2 if block is None else max(2, stage.index(block) + 1)
            assert d[i] == expected_depth
    # P(no block) = (1/5)^5: a handful of infeasible trials at most
    assert infeasible <= 3


def test_ofa_fixed_space_is_table_7_width_12_kernel_7_expand_6():
    names = {f"stage_{i}_{p}" for i in range(5) for p in ("block", "patch_size")}
    for trial, arch in _ask_many("ofa-fixed", n=100):
        assert set(trial.params) == names
        if arch is None:
            continue
        assert arch.encoder == "ofa_mbv3_d234_e346_k357_w1.2"
        assert arch.encoder_config["ks"] == [7] * 20
        assert arch.encoder_config["e"] == [6] * 20


def test_no_selected_block_gives_none():
    study = optuna.create_study()
    fixed = {f"stage_{i}_block": None for i in range(5)}
    study.enqueue_trial(fixed)
    trial = study.ask()
    assert get_space("ofa").suggest(trial) is None


@pytest.mark.parametrize("seed", [1, 2])
def test_same_seed_same_architectures(seed):
    first = [str(a.to_dict()) if a else None for _, a in _ask_many("ofa", n=20, seed=seed)]
    second = [str(a.to_dict()) if a else None for _, a in _ask_many("ofa", n=20, seed=seed)]
    assert first == second
