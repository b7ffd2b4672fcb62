"""Parallel search on a real PostgreSQL server: exact trial totals, and a SIGKILLed worker's trial failed + retried.

A session fixture initialises a throw-away cluster in a temp dir on 127.0.0.1 (initdb/pg_ctl as an
unprivileged user: PostgreSQL refuses to run as root, which is how CI runs). The objective is a cheap
stand-in injected through the study's objective factory, so these tests measure the study layer only.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from autopatch.search import StudySettings, TrialOutcome, open_study, run_study
from autopatch.search.storage import Heartbeat, open_storage
from autopatch.search.workers import WorkerJob, run_worker

pytestmark = pytest.mark.postgres

FAST = Heartbeat(interval_s=1, grace_period_s=2, max_retry=2)


class SleepyObjective:
    """gflops = x, rwap = 1 - (x - 0.6)^2 after `sleep_s`; with `hang_marker`, the first trial writes its number
    to that file and then hangs (the test kills the process there)."""

    def __init__(self, sleep_s: float, hang_marker: str | None) -> None:
        self.sleep_s, self.hang_marker = sleep_s, hang_marker

    def __call__(self, trial: optuna.Trial) -> TrialOutcome:
        x = trial.suggest_float("x", 0.0, 1.0)
        if self.hang_marker is not None:
            Path(self.hang_marker).write_text(str(trial.number))
            time.sleep(600)
        time.sleep(self.sleep_s)
        return TrialOutcome(gflops=x, metrics={"rwap": 1.0 - (x - 0.6) ** 2})


@dataclass(frozen=True)
class SleepyFactory:
    sleep_s: float = 0.05
    hang_marker: str | None = None

    def __call__(self) -> SleepyObjective:
        return SleepyObjective(self.sleep_s, self.hang_marker)


def study_trials(url: str, name: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=open_storage(url, FAST)).get_trials()


def count(trials, state: TrialState) -> int:
    return sum(t.state == state for t in trials)


def test_four_workers_end_with_exactly_n_complete_trials(postgres_url, tmp_path):
    settings = StudySettings(data_root=str(tmp_path), category="toy")
    summary = run_study(settings, factory=SleepyFactory(), trials=16, study_name="four", storage_url=postgres_url,
                         workers=4, heartbeat=FAST, progress=False)
    trials = study_trials(postgres_url, "four")
    numbers = [t.number for t in trials]
    assert len(numbers) == len(set(numbers)) == len(trials)
    assert count(trials, TrialState.COMPLETE) == 16 == summary.complete
    assert count(trials, TrialState.RUNNING) == count(trials, TrialState.WAITING) == 0


def test_a_worker_killed_mid_trial_is_failed_retried_and_the_total_still_reached(postgres_url, tmp_path):
    settings = StudySettings(data_root=str(tmp_path), category="toy")
    open_study(settings, "killed", open_storage(postgres_url, FAST))
    marker = tmp_path / "hanging-trial"
    context = multiprocessing.get_context("spawn")

    def job(index: int, factory: SleepyFactory) -> WorkerJob:
        return WorkerJob(settings, "killed", postgres_url, FAST, factory, trials=8, worker_index=index)

    victim = context.Process(target=run_worker, args=(job(0, SleepyFactory(hang_marker=str(marker))),))
    victim.start()
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert time.monotonic() < deadline and victim.is_alive(), "the victim worker never started a trial"
        time.sleep(0.1)
    os.kill(victim.pid, signal.SIGKILL)
    victim.join()
    killed = int(marker.read_text())
    survivors = [context.Process(target=run_worker, args=(job(i, SleepyFactory(sleep_s=0.1)),)) for i in (1, 2)]
    for process in survivors:
        process.start()
    for process in survivors:
        process.join(timeout=90)
        assert process.exitcode == 0
    trials = study_trials(postgres_url, "killed")
    assert count(trials, TrialState.COMPLETE) == 8
    assert count(trials, TrialState.RUNNING) == 0
    assert trials[killed].state == TrialState.FAIL
    retries = [t for t in trials if t.system_attrs.get("failed_trial") == killed]
    assert len(retries) == 1 and retries[0].state == TrialState.COMPLETE
    assert retries[0].params == trials[killed].params
