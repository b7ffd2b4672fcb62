"""Every use of Optuna's private API, in one place (exercised by tests/unit/search/test_optuna_compat.py).

Optuna keeps heartbeats for `Study.optimize` on RDB storages. autopatch's ask/tell loop (see `workers`)
needs them from outside `optimize`, and for the journal file too, which takes four private names:
`optuna.storages._heartbeat.{BaseHeartbeat, get_heartbeat_thread}`, `Trial._trial_id` /
`FrozenTrial._trial_id` and `Study._storage`. `TrialSeededTPESampler` reseeds TPE's two random states
(`TPESampler._rng`, `TPESampler._random_sampler._rng`) per trial. `HeartbeatRDBStorage` extends
`RDBStorage._get_stale_trial_ids`, reading `optuna.storages._rdb.models.TrialHeartbeatModel`.
pyproject.toml bounds Optuna to the major versions the test suite has passed with; a new major is let in
only after that test passes against it.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import optuna
import sqlalchemy.orm
from optuna.samplers import TPESampler
from optuna.storages import JournalStorage, RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages._heartbeat import BaseHeartbeat, get_heartbeat_thread
from optuna.storages._rdb import models as rdb_models
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, TrialState

HEARTBEAT_ATTR = "heartbeat_at"


def trial_id(trial: optuna.Trial | FrozenTrial) -> int:
    """The storage's id of `trial` (not its number, which counts within one study)."""
    return trial._trial_id


def heartbeat_thread(study: optuna.Study, trial: optuna.Trial) -> AbstractContextManager[Any]:
    """A context that keeps `trial` alive in the study's storage while the block runs (a no-op on storages
    without heartbeat), exactly as `Study.optimize` does around each trial."""
    return get_heartbeat_thread(trial._trial_id, study._storage)


def trial_seed(seed: int, number: int) -> int:
    """A 32-bit seed that depends only on the study seed and the trial number."""
    digest = hashlib.sha256(f"autopatch-trial:{int(seed)}:{int(number)}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


class TrialSeededTPESampler(TPESampler):
    """TPE whose random draws for trial n depend only on (seed, n) and the study's history.

    Plain TPESampler(seed) draws from one random stream per process. So a resumed run, or another process
    on the same storage, starts that stream again and proposes the random start-up trials it already
    holds. Here both random states are reseeded before each trial from `trial_seed(seed, trial.number)`.
    A single run is still reproducible from its seed, a resumed one continues the same sequence, and
    processes sharing a study (each trial has its own number) draw different points.
    """

    def __init__(self, *, seed: int, **kwargs: Any) -> None:
        super().__init__(seed=seed, **kwargs)
        self._trial_seed_base = int(seed)

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        seed = trial_seed(self._trial_seed_base, trial.number)
        self._rng.rng.seed(seed)
        self._random_sampler._rng.rng.seed(seed)
        super().before_trial(study, trial)


class HeartbeatRDBStorage(RDBStorage):
    """Optuna's RDB storage, except that a RUNNING trial that never recorded a heartbeat counts as stale once
    it started more than the grace period ago.

    Optuna skips such trials, so a worker killed between `ask` and its first heartbeat left its trial
    RUNNING forever, and a resumed search waited for it forever.
    """

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        stale = super()._get_stale_trial_ids(study_id)
        grace_s = self.grace_period if self.grace_period is not None else 2 * (self.heartbeat_interval or 0)
        now = time.time()
        running = self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,))
        if not running:
            return stale
        ids = [trial._trial_id for trial in running]
        heartbeat = rdb_models.TrialHeartbeatModel
        with sqlalchemy.orm.Session(self.engine) as session:  # this study's running trials only
            beating = {row[0] for row in session.query(heartbeat.trial_id).filter(heartbeat.trial_id.in_(ids))}
        for trial in running:
            started = trial.datetime_start.timestamp() if trial.datetime_start else now
            if trial._trial_id not in beating and now - started > grace_s and trial._trial_id not in stale:
                stale.append(trial._trial_id)
        return stale


class HeartbeatJournalStorage(JournalStorage, BaseHeartbeat):
    """Optuna's journal file storage plus the heartbeat Optuna only implements for RDB storages.

    A running trial's worker stamps the time into the trial's system attrs every `interval_s`; a RUNNING trial
    silent for longer than `grace_period_s` is stale, and `optuna.storages.fail_stale_trials` fails and retries it
    exactly as for RDB. The journal file lives on one machine, so all stamps come from one clock.
    """

    def __init__(
        self,
        backend: JournalFileBackend,
        interval_s: int,
        grace_period_s: int,
        retry: RetryHeartbeatStaleTrialCallback,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(backend)
        self._interval_s = interval_s
        self._grace_period_s = grace_period_s
        self._retry = retry
        self._clock = clock

    def record_heartbeat(self, trial_id: int) -> None:
        self.set_trial_system_attr(trial_id, HEARTBEAT_ATTR, self._clock())

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        now = self._clock()
        running = self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,))
        return [t._trial_id for t in running if now - _last_sign_of_life(t, now) > self._grace_period_s]

    def get_heartbeat_interval(self) -> int | None:
        return self._interval_s

    def get_heartbeat_stale_trial_callback(self) -> RetryHeartbeatStaleTrialCallback:
        return self._retry


def _last_sign_of_life(trial: FrozenTrial, now: float) -> float:
    """Latest heartbeat or start; a retried trial inherits its predecessor's old stamp, so the start counts too."""
    started = trial.datetime_start.timestamp() if trial.datetime_start else now
    return max(float(trial.system_attrs.get(HEARTBEAT_ATTR, started)), started)
