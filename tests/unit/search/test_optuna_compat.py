"""Everything autopatch takes from Optuna's private API (search/_optuna.py) still works with the installed
Optuna: a new Optuna major is admitted in pyproject.toml only once this passes against it."""

import optuna
import pytest
from optuna.storages import RetryHeartbeatStaleTrialCallback, fail_stale_trials
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from autopatch.search._optuna import HEARTBEAT_ATTR, HeartbeatJournalStorage, heartbeat_thread, trial_id

pytestmark = [
    pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning"),
    pytest.mark.filterwarnings("ignore:Heartbeat of storage:UserWarning"),  # ask/tell, not optimize: known
]


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def journal(tmp_path, clock, grace_s=60, max_retry=1):
    backend = JournalFileBackend(str(tmp_path / "s.journal"))
    return HeartbeatJournalStorage(backend, 1, grace_s, RetryHeartbeatStaleTrialCallback(max_retry), clock)


def test_trial_id_is_the_storage_id_of_the_trial(tmp_path):
    storage = journal(tmp_path, Clock())
    study = optuna.create_study(storage=storage, study_name="a")
    optuna.create_study(storage=storage, study_name="b").ask()  # ids now differ from numbers
    trial = study.ask()
    assert trial_id(trial) == 1 and storage.get_trial(trial_id(trial)).number == trial.number == 0
    frozen = study.get_trials()[0]
    assert trial_id(frozen) == trial_id(trial)


def test_heartbeat_thread_stamps_the_running_trial(tmp_path):
    clock = Clock()
    study = optuna.create_study(storage=journal(tmp_path, clock))
    trial = study.ask()
    with heartbeat_thread(study, trial):
        pass  # the thread records one heartbeat as it starts
    assert study.get_trials()[0].system_attrs[HEARTBEAT_ATTR] == clock.now


def test_a_silent_running_trial_is_failed_and_retried_exactly_once(tmp_path):
    clock = Clock()
    study = optuna.create_study(storage=journal(tmp_path, clock, grace_s=60))
    trial = study.ask()
    with heartbeat_thread(study, trial):
        pass
    started = study.get_trials()[0].datetime_start.timestamp()
    clock.now = max(clock.now, started) + 59  # within the grace period: still alive
    fail_stale_trials(study)
    assert [t.state for t in study.get_trials()] == [TrialState.RUNNING]
    clock.now += 2  # 61 s of silence
    fail_stale_trials(study)
    assert [t.state for t in study.get_trials()] == [TrialState.FAIL, TrialState.WAITING]
