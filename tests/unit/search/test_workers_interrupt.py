"""Ctrl-C at any point of a trial leaves no trial RUNNING: asking and telling finish first, the evaluation
stops at once and is recorded failed with the reason. The signal is really raised (SIGINT to this process)."""

from __future__ import annotations

import signal

import optuna
import pytest
from optuna.trial import TrialState

from autopatch.search._interrupts import interrupts_held
from autopatch.search.definition import StudySettings, TrialOutcome
from autopatch.search.storage import Heartbeat
from autopatch.search.workers import FAIL_REASON_ATTR, WorkerJob, work


def ctrl_c() -> None:
    signal.raise_signal(signal.SIGINT)


def objective(trial: optuna.Trial) -> TrialOutcome:
    x = trial.suggest_float("x", 0.0, 1.0)
    return TrialOutcome(gflops=x, metrics={"rwap": 1 - x}, attrs={})


def study_and_job(tmp_path, trials: int = 3) -> tuple[optuna.Study, WorkerJob]:
    job = WorkerJob(StudySettings(str(tmp_path), "toy"), "s", "unused", Heartbeat(), None, trials=trials)
    return optuna.create_study(directions=["minimize", "maximize"]), job


def test_ctrl_c_right_after_a_trial_is_created_fails_that_trial(tmp_path, monkeypatch):
    study, job = study_and_job(tmp_path)
    ask = study.ask

    def ask_then_ctrl_c():
        trial = ask()
        ctrl_c()  # the storage holds the trial RUNNING; the Ctrl-C lands before the loop has it
        return trial

    monkeypatch.setattr(study, "ask", ask_then_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        work(study, objective, job)
    [trial] = study.get_trials()
    assert trial.state == TrialState.FAIL and trial.user_attrs[FAIL_REASON_ATTR] == "KeyboardInterrupt: "


def test_ctrl_c_while_a_result_is_told_keeps_the_result(tmp_path, monkeypatch):
    study, job = study_and_job(tmp_path)
    tell = study.tell

    def ctrl_c_then_tell(*args, **kwargs):
        ctrl_c()
        return tell(*args, **kwargs)

    monkeypatch.setattr(study, "tell", ctrl_c_then_tell)
    with pytest.raises(KeyboardInterrupt):
        work(study, objective, job)
    [trial] = study.get_trials()
    assert trial.state == TrialState.COMPLETE and trial.values == [trial.params["x"], 1 - trial.params["x"]]


def test_ctrl_c_in_the_evaluation_stops_it_at_once(tmp_path):
    study, job = study_and_job(tmp_path)
    reached = []

    def interrupted(trial):
        trial.suggest_float("x", 0.0, 1.0)
        ctrl_c()
        reached.append("after")  # never: Ctrl-C acts inside the evaluation

    with pytest.raises(KeyboardInterrupt):
        work(study, interrupted, job)
    assert reached == []
    assert [t.state for t in study.get_trials()] == [TrialState.FAIL]


def test_a_held_ctrl_c_is_delivered_once_when_the_block_ends():
    steps = []
    with pytest.raises(KeyboardInterrupt):
        with interrupts_held():
            ctrl_c()
            ctrl_c()
            steps.append("finished")
    assert steps == ["finished"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
