"""Everything autopatch takes from Optuna's private API (search/_optuna.py) still works with the installed
Optuna: a new Optuna major is admitted in pyproject.toml only once this passes against it."""

import time

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


def _startup_params(sampler_seed: int, numbers: int, study: optuna.Study | None = None) -> list[dict]:
    from autopatch.search._optuna import TrialSeededTPESampler

    study = study or optuna.create_study()
    study.sampler = TrialSeededTPESampler(seed=sampler_seed, multivariate=True, group=True)
    params = []
    for _ in range(numbers):
        trial = study.ask()
        params.append({"x": trial.suggest_float("x", 0, 1), "k": trial.suggest_categorical("k", [3, 5, 7])})
        study.tell(trial, trial.params["x"])
    return params


def test_each_trials_random_draw_depends_only_on_the_seed_and_its_number():
    uninterrupted = _startup_params(0, 8)
    assert _startup_params(0, 8) == uninterrupted  # reproducible from the seed
    resumed = optuna.create_study()  # a run stopped after 5 trials, resumed by a new process (new sampler)
    _startup_params(0, 5, resumed)
    assert _startup_params(0, 3, resumed) == uninterrupted[5:]
    assert uninterrupted[5:] != uninterrupted[:3]  # the resumed run does not replay the first trials
    assert _startup_params(1, 8) != uninterrupted


def test_an_rdb_trial_killed_before_its_first_heartbeat_is_failed_and_retried(tmp_path):
    from autopatch.search._optuna import HeartbeatRDBStorage

    storage = HeartbeatRDBStorage(
        f"sqlite:///{tmp_path / 's.db'}", heartbeat_interval=1, grace_period=1,
        heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(1),
    )  # fmt: skip
    study = optuna.create_study(storage=storage)
    orphan = study.ask()  # RUNNING, and its worker "died" before any heartbeat
    alive = study.ask()
    with heartbeat_thread(study, alive):
        pass
    fail_stale_trials(study)
    assert [t.state for t in study.get_trials()] == [TrialState.RUNNING] * 2  # within the grace period
    time.sleep(1.2)
    with heartbeat_thread(study, alive):  # `alive` beats again; the orphan stays silent
        pass
    fail_stale_trials(study)
    states = {t.number: t.state for t in study.get_trials()}
    assert states[orphan.number] == TrialState.FAIL and states[alive.number] == TrialState.RUNNING
    assert [t.state for t in study.get_trials()][2:] == [TrialState.WAITING]  # the orphan's retry
