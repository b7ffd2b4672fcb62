"""Pareto front and export selection against a brute-force O(n^2) dominance oracle."""

from __future__ import annotations

import random

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from autopatch.errors import AutopatchError
from autopatch.search.definition import DEFAULT_ATTR
from autopatch.search.pareto import (
    candidates,
    front_table,
    noise_summary,
    pareto_front,
    select_lower_bound,
    select_trial,
)

STATES = [TrialState.COMPLETE, TrialState.FAIL, TrialState.COMPLETE]  # the middle trial failed


def make_trials(points, states=None):
    trials = []
    for number, (gflops, rwap) in enumerate(points):
        state = states[number] if states else TrialState.COMPLETE
        values = [gflops, rwap] if state == TrialState.COMPLETE else None
        trial = optuna.trial.create_trial(state=state, values=values)
        trial.number = number
        trials.append(trial)
    return trials


def brute_force_front(points, max_gflops=None):
    keep = [i for i, p in enumerate(points) if max_gflops is None or p[0] <= max_gflops]
    front = []
    for i in keep:
        g, r = points[i]
        dominated = any(
            points[j][0] <= g and points[j][1] >= r and (points[j][0] < g or points[j][1] > r) for j in keep if j != i
        )
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: (points[i][0], -points[i][1], i))


@pytest.mark.parametrize("seed", range(20))
def test_front_matches_brute_force_including_ties(seed):
    rng = random.Random(seed)
    # coarse grids make equal GFLOPs, equal rwAP and duplicate points common
    points = [(rng.randint(1, 8) / 4, rng.randint(0, 6) / 6) for _ in range(rng.randint(1, 40))]
    trials = make_trials(points)
    assert [t.number for t in pareto_front(trials)] == brute_force_front(points)
    budget = rng.choice([0.5, 1.0, 1.5])
    assert [t.number for t in pareto_front(trials, budget)] == brute_force_front(points, budget)


def test_failed_and_running_trials_are_ignored():
    trials = make_trials([(1.0, 0.5), (0.0, 0.0), (2.0, 0.9)], STATES)
    assert [t.number for t in pareto_front(trials)] == [0, 2]


def test_select_best_number_and_budget():
    trials = make_trials([(1.0, 0.5), (2.0, 0.9), (3.0, 0.9), (0.5, 0.2)])
    assert select_trial(trials, "best").number == 1  # highest rwAP, fewer GFLOPs on the tie
    assert select_trial(trials, "best", max_gflops=1.5).number == 0
    assert select_trial(trials, 3).number == 3
    assert select_trial(trials, "2").number == 2


@pytest.mark.parametrize(
    ("choice", "budget", "message"),
    [("9", None, "does not exist"), ("x", None, "neither"), ("-1", None, ">= 0"), ("1", None, "FAIL"),
     ("2", 1.0, "above --max-gflops"), ("best", 0.1, "no completed trial")],
)
def test_bad_selections_are_one_line_errors(choice, budget, message):
    trials = make_trials([(1.0, 0.5), (0.5, 0.1), (2.0, 0.9)], STATES)
    with pytest.raises(AutopatchError, match=message) as error:
        select_trial(trials, choice, budget)
    assert "\n" not in str(error.value)


def test_front_table_lists_each_trial_once_with_its_numbers():
    trials = make_trials([(0.25, 0.5), (1.5, 0.875)])
    trials[0].set_user_attr("architecture", "efficientnet_lite0 | B1;P1;W24")
    trials[0].set_user_attr("image_auroc", 0.9375)
    trials[0].set_user_attr("rwap_se", 0.0625)
    trials[1].set_user_attr(DEFAULT_ATTR, True)
    lines = front_table(trials).splitlines()
    assert lines[0].split() == ["trial", "GFLOPs", "rwAP", "±SE", "imgAUROC", "architecture"]
    assert lines[1].split() == ["0", "0.2500", "0.5000", "0.0625", "0.9375", "efficientnet_lite0", "|", "B1;P1;W24"]
    assert lines[2].split() == ["1", "1.5000", "0.8750", "-", "-", "?", "*"]


def random_trials(rng, count=9):
    trials = [optuna.trial.create_trial(values=[float(rng.integers(1, 4)), float(rng.random())]) for _ in range(count)]
    for number, trial in enumerate(trials):
        trial.number = number
    return trials


@pytest.mark.parametrize("seed", range(5))
def test_without_standard_errors_the_pick_is_the_highest_value_then_the_fewest_gflops(seed):
    rng = np.random.default_rng(seed)
    trials = random_trials(rng)
    rescored = {t.number: float(rng.integers(0, 3)) / 2 for t in trials}  # ties on purpose
    best_value = max(rescored.values())
    tied = [t for t in trials if rescored[t.number] == best_value]
    cheapest = min(t.values[0] for t in tied)
    want = next(t for t in tied if t.values[0] == cheapest)  # the first (lowest number) of the cheapest
    assert select_lower_bound(trials, rescored).number == want.number
    assert select_lower_bound(trials, rescored, {want.number: None}).number == want.number


@pytest.mark.parametrize("seed", range(30))
def test_the_pick_is_the_highest_lower_bound(seed):
    rng = np.random.default_rng(seed)
    trials = random_trials(rng)
    values = {t.number: float(rng.integers(0, 8)) / 8 for t in trials}
    errors = {t.number: float(rng.integers(0, 3)) / 8 for t in trials}
    # the oracle: a loop over the trials in number order, written without min/sort keys
    want = None
    for t in trials:
        bound = values[t.number] - errors[t.number]
        if want is None:
            want = t
            continue
        best = values[want.number] - errors[want.number]
        if bound > best or (bound == best and t.values[0] < want.values[0]):
            want = t
    assert select_lower_bound(trials, values, errors).number == want.number


def test_a_noisier_higher_value_gives_way_to_a_surer_one():
    trials = make_trials([(0.5, 0.6), (1.0, 0.7)])
    values = {0: 0.6, 1: 0.7}
    assert select_lower_bound(trials, values, {0: 0.01, 1: 0.2}).number == 0  # 0.59 > 0.5
    assert select_lower_bound(trials, values, {0: 0.01, 1: 0.05}).number == 1  # 0.65 > 0.59


def test_candidates_add_the_default_trials_off_the_front():
    trials = make_trials([(0.5, 0.6), (1.0, 0.7), (2.0, 0.5), (3.0, 0.4), (0.2, 0.1)])
    trials[2].set_user_attr(DEFAULT_ATTR, True)  # dominated by trial 1
    trials[3].set_user_attr(DEFAULT_ATTR, True)  # dominated, and above the budget below
    assert [t.number for t in candidates(trials)] == [4, 0, 1, 2, 3]
    assert [t.number for t in candidates(trials, max_gflops=2.5)] == [4, 0, 1, 2]


def with_errors(points, errors):
    trials = make_trials(points)
    for trial, error in zip(trials, errors, strict=True):
        if error is not None:
            trial.set_user_attr("rwap_se", error)
    return trials


def test_noise_summary_says_when_the_validation_cannot_separate_the_front():
    separated = noise_summary(with_errors([(0.5, 0.5), (1.0, 0.75)], [None, 0.125]), "rwap", "rwAP")
    assert separated.startswith("validation rwAP of the best trial 0.7500 ± 0.1250")
    assert "1 of 2 front trials" in separated
    assert "cannot separate" not in separated
    inside = noise_summary(with_errors([(0.5, 0.5), (1.0, 0.75)], [None, 0.25]), "rwap", "rwAP")
    assert "2 of 2 front trials" in inside and "cannot separate the front" in inside
    noise = noise_summary(with_errors([(0.5, 0.001), (1.0, 0.005)], [None, 0.001]), "rwap", "rwAP")
    assert "ranking noise" in noise
    assert noise_summary(with_errors([(0.5, 0.5), (1.0, 0.75)], [0.1, None]), "rwap", "rwAP") is None
