"""The study's ask/tell loop with a cheap objective: resume, exact totals, failures, constraint, stale trials."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import optuna
import pytest
import torch
from optuna.trial import TrialState

from autopatch.errors import AutopatchError
from autopatch.search import StudySettings, TrialOutcome, open_study, run_study
from autopatch.search.evaluator import TrialFailed
from autopatch.search.storage import Heartbeat, open_storage

FAST = Heartbeat(interval_s=1, grace_period_s=2, max_retry=2)


class CheapObjective:
    """gflops = x, rwap = 1 - (x - 0.6)^2; x < 0.1 is 'infeasible', x in the `nan_band` gives NaN rwAP."""

    def __init__(self, nan_band: tuple[float, float] = (2.0, 2.0), oom_band: tuple[float, float] = (2.0, 2.0)):
        self.nan_band, self.oom_band = nan_band, oom_band

    def __call__(self, trial: optuna.Trial) -> TrialOutcome:
        x = trial.suggest_float("x", 0.0, 1.0)
        if x < 0.1:
            raise TrialFailed("infeasible: no extraction block selected")
        if self.oom_band[0] <= x < self.oom_band[1]:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        rwap = math.nan if self.nan_band[0] <= x < self.nan_band[1] else 1.0 - (x - 0.6) ** 2
        return TrialOutcome(gflops=x, metrics={"rwap": rwap, "ap": rwap / 2}, attrs={"architecture": f"x={x:.3f}"})


@dataclass(frozen=True)
class CheapFactory:
    nan_band: tuple[float, float] = (2.0, 2.0)
    oom_band: tuple[float, float] = (2.0, 2.0)

    def __call__(self) -> CheapObjective:
        return CheapObjective(self.nan_band, self.oom_band)


def settings(tmp_path, **changes) -> StudySettings:
    return StudySettings(data_root=str(tmp_path), category="toy", **changes)


def all_trials(tmp_path, name: str, suffix: str = "db") -> list[optuna.trial.FrozenTrial]:
    path = tmp_path / f"{name}.{suffix}"
    url = f"sqlite:///{path}" if suffix == "db" else f"journal:///{tmp_path / f'{name}.journal'}"
    return optuna.load_study(study_name=name, storage=open_storage(url, create=False)).get_trials()


def states(trials) -> dict[TrialState, int]:
    counts = dict.fromkeys(TrialState, 0)
    for t in trials:
        counts[t.state] += 1
    return counts


def test_default_sqlite_study_resumes_to_the_exact_total_and_records_settings(tmp_path):
    s = settings(tmp_path, seed=3)
    first = run_study(s, factory=CheapFactory(), trials=4, out_dir=tmp_path, progress=False)
    assert first.study_name == "toy-pretrained-k1-s3"
    assert (tmp_path / "toy-pretrained-k1-s3.db").is_file()
    assert first.complete == 4
    second = run_study(s, factory=CheapFactory(), trials=7, out_dir=tmp_path, progress=False)
    assert second.complete == 7
    before = all_trials(tmp_path, first.study_name)
    third = run_study(s, factory=CheapFactory(), trials=7, out_dir=tmp_path, progress=False)  # finished: runs nothing
    assert third.complete == 7 and len(all_trials(tmp_path, first.study_name)) == len(before)
    study = optuna.load_study(study_name=first.study_name, storage=f"sqlite:///{tmp_path / 'toy-pretrained-k1-s3.db'}")
    assert study.user_attrs == {**s.attrs(), "settings_recorded": True}
    complete = [t for t in before if t.state == TrialState.COMPLETE]
    for t in complete:
        assert t.user_attrs["gflops"] == pytest.approx(t.params["x"])
        assert t.user_attrs["rwap"] == pytest.approx(1 - (t.params["x"] - 0.6) ** 2)
        assert t.values == [pytest.approx(t.params["x"]), pytest.approx(t.user_attrs["rwap"])]
        assert t.user_attrs["architecture"].startswith("x=")


def test_failed_trials_keep_their_reason_and_the_study_goes_on(tmp_path):
    factory = CheapFactory(nan_band=(0.1, 0.35), oom_band=(0.35, 0.5))
    summary = run_study(settings(tmp_path), factory=factory, trials=6, out_dir=tmp_path, progress=False)
    trials = all_trials(tmp_path, summary.study_name)
    assert states(trials)[TrialState.COMPLETE] == 6
    for t in trials:
        x = t.params["x"]
        if t.state == TrialState.FAIL:
            reason = t.user_attrs["fail_reason"]
            expected = "infeasible" if x < 0.1 else "non-finite" if x < 0.35 else "out of memory"
            assert reason.startswith(expected), (x, reason)
        else:
            assert x >= 0.5
    assert summary.failed == states(trials)[TrialState.FAIL] > 0


def test_max_gflops_is_an_optuna_constraint_and_bounds_the_front(tmp_path):
    summary = run_study(
        settings(tmp_path, max_gflops=0.5), factory=CheapFactory(), trials=8, out_dir=tmp_path, progress=False
    )
    trials = [t for t in all_trials(tmp_path, summary.study_name) if t.state == TrialState.COMPLETE]
    for t in trials:
        assert t.user_attrs["constraint"] == pytest.approx(t.params["x"] - 0.5)
        assert t.constraints == {"max_gflops": pytest.approx(t.params["x"] - 0.5)}
    feasible = [t for t in trials if t.params["x"] <= 0.5]
    # below x = 0.6 both GFLOPs (= x) and rwAP rise with x: every feasible trial is a trade-off, none above 0.5 is
    expected = [t.number for t in sorted(feasible, key=lambda t: t.params["x"])]
    assert [t.number for t in summary.front] == expected


@pytest.mark.filterwarnings("ignore:Heartbeat of storage:UserWarning")  # the orphan is a bare study.ask()
def test_a_stale_running_trial_is_failed_and_retried_before_the_total_is_reached(tmp_path):
    """A journal study with one trial left RUNNING by a 'killed' worker: heartbeat silence -> FAIL + retry."""
    s = settings(tmp_path)
    url = f"journal:///{tmp_path / 'stale.journal'}"
    study = open_study(s, "stale", open_storage(url, FAST))
    study.enqueue_trial({"x": 0.7})  # a feasible point, so its retry must complete with the same x
    orphan = study.ask()
    orphan.suggest_float("x", 0.0, 1.0)
    start = time.monotonic()
    summary = run_study(
        s, factory=CheapFactory(), trials=3, study_name="stale", storage_url=url, heartbeat=FAST, progress=False
    )
    assert time.monotonic() - start < 30
    trials = optuna.load_study(study_name="stale", storage=open_storage(url, FAST)).get_trials()
    assert summary.complete == 3 == states(trials)[TrialState.COMPLETE]
    assert trials[orphan.number].state == TrialState.FAIL
    retries = [t for t in trials if t.system_attrs.get("failed_trial") == orphan.number]
    assert len(retries) == 1
    assert retries[0].state == TrialState.COMPLETE and retries[0].params["x"] == 0.7
    assert states(trials)[TrialState.RUNNING] == 0


@pytest.mark.slow
def test_three_journal_workers_reach_exactly_the_total(tmp_path):
    summary = run_study(
        settings(tmp_path), factory=CheapFactory(), trials=9, out_dir=tmp_path, workers=3, progress=False
    )
    assert (tmp_path / f"{summary.study_name}.journal").is_file()
    trials = all_trials(tmp_path, summary.study_name, suffix="journal")
    numbers = [t.number for t in trials]
    assert len(numbers) == len(set(numbers))
    assert states(trials)[TrialState.COMPLETE] == 9 == summary.complete
    assert states(trials)[TrialState.RUNNING] == 0


def test_a_storage_that_cannot_save_stops_the_search_with_its_real_cause(tmp_path, monkeypatch):
    import sqlite3

    real_tell = optuna.study.Study.tell
    told = []

    def tell(self, trial, *args, **kwargs):
        if len(told) == 2:  # the disk fills after two trials
            try:
                raise sqlite3.OperationalError("database or disk is full")
            except sqlite3.OperationalError as full:
                raise optuna.exceptions.StorageInternalError("An exception is raised during the commit.") from full
        told.append(trial)
        return real_tell(self, trial, *args, **kwargs)

    monkeypatch.setattr(optuna.study.Study, "tell", tell)
    with pytest.raises(AutopatchError) as error:
        run_study(settings(tmp_path), factory=CheapFactory(), trials=5, out_dir=tmp_path, progress=False)
    message = str(error.value)
    assert "\n" not in message and "database or disk is full" in message and "rerun the same command" in message
    assert str(tmp_path) in message
