"""The workers of a study: an ask/tell loop shared by the calling process and any spawned or separate ones.

Workers run an ask/tell loop rather than `Study.optimize` because the loop must (a) record *why* a trial
failed (no block selected, NaN, out of memory) and go on, (b) stop at exactly `trials` COMPLETE trials in
total however many workers share the study, and (c) keep heartbeats so trials of killed workers are failed
and retried. Exactness: right after `ask`, a trial counts the lower-numbered trials that are COMPLETE,
RUNNING or WAITING (queued retries); it runs only when fewer than `trials` are. Numbers are handed out by
the storage in creation order, so among trials that complete, the highest-numbered one saw all the others
and no more than `trials` can complete. A trial that loses that count is failed unrun, with that reason.
"""

from __future__ import annotations

import gc
import math
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import optuna
import torch
from optuna.trial import FrozenTrial, TrialState

from autopatch.errors import AutopatchError, AutopatchWarning
from autopatch.search._interrupts import interrupts_held
from autopatch.search._optuna import heartbeat_thread
from autopatch.search.definition import Objective, ObjectiveFactory, StudySettings, first_trials_of, open_study
from autopatch.search.evaluator import TrialFailed
from autopatch.search.storage import Heartbeat, open_storage

FAIL_REASON_ATTR = "fail_reason"
CONSTRAINT_ATTR = "constraint"
MAX_CONSECUTIVE_FAILURES = 25


@dataclass(frozen=True)
class WorkerJob:
    """Everything one worker process needs; picklable for multiprocessing spawn."""

    settings: StudySettings
    study_name: str
    storage_url: str
    heartbeat: Heartbeat
    factory: ObjectiveFactory
    trials: int
    worker_index: int = 0
    workers: int = 1


def run_worker(job: WorkerJob) -> int:
    """A worker of its own (another process or machine): build the objective, open the study, work."""
    objective = job.factory()
    storage = open_storage(job.storage_url, job.heartbeat)
    study = open_study(job.settings, job.study_name, storage, first_trials=first_trials_of(objective))
    return work(study, objective, job)


def work(
    study: optuna.Study,
    objective: Objective,
    job: WorkerJob,
    on_progress: Callable[[Sequence[FrozenTrial]], None] | None = None,
) -> int:
    """Ask/tell until the study holds `job.trials` COMPLETE trials; returns how many this worker completed.
    A worker also waits here while others finish the last trials (one may fail or go stale and need a rerun)."""
    poll_s = min(max(job.heartbeat.interval_s / 2, 0.2), 5.0)
    completed = consecutive_failures = 0
    while True:
        _quietly(optuna.storages.fail_stale_trials, study)
        trials = study.get_trials(deepcopy=False)
        if on_progress is not None:
            on_progress(trials)
        counts = count_states(trials)
        if counts[TrialState.COMPLETE] >= job.trials:
            return completed
        if counts[TrialState.COMPLETE] + counts[TrialState.RUNNING] >= job.trials and not counts[TrialState.WAITING]:
            time.sleep(poll_s)  # the last slots are running elsewhere; one may fail or go stale and need a rerun
            continue
        reason = _run_trial(study, objective, job)
        completed += reason is None
        consecutive_failures = 0 if reason is None else consecutive_failures + 1
        if consecutive_failures >= MAX_CONSECUTIVE_FAILURES:
            raise AutopatchError(
                f"{consecutive_failures} trials in a row failed, the last with: {reason}; fix that and rerun"
            )


def _run_trial(study: optuna.Study, objective: Objective, job: WorkerJob) -> str | None:
    """Ask for a trial, evaluate it and tell the storage; returns the reason it failed, None when COMPLETE.
    Ctrl-C reaches only the evaluation: asking and telling finish first, so no trial is left RUNNING."""
    with interrupts_held() as released:
        trial = _quietly(study.ask)
        if _slots_taken_before(study, trial.number) >= job.trials:
            return _fail(study, trial, f"not run: {job.trials} trials were already complete or running")
        try:
            with heartbeat_thread(study, trial), released():  # the heartbeat starts and stops held
                outcome = objective(trial)
        except TrialFailed as failure:
            return _fail(study, trial, failure.reason)
        except (torch.OutOfMemoryError, MemoryError) as error:
            _free_memory()
            return _fail(study, trial, f"out of memory ({type(error).__name__})")
        except BaseException as error:  # a bug or Ctrl-C: leave the trial failed with the reason, then stop
            _fail(study, trial, f"{type(error).__name__}: {error}")
            raise
        metric = job.settings.metric
        score, cost = float(outcome.metrics[metric]), outcome.cost(job.settings)
        if not (math.isfinite(cost) and math.isfinite(outcome.gflops) and math.isfinite(score)):
            return _fail(study, trial, f"non-finite objective: {job.settings.cost}={cost}, {metric}={score}")
        latency = {} if outcome.latency is None else outcome.latency.attrs()
        for key, value in {**outcome.attrs, **outcome.metrics, **latency, "gflops": float(outcome.gflops)}.items():
            trial.set_user_attr(key, value)
        if job.settings.max_gflops is not None:  # <= 0 is feasible; kept as a user attr too, to be seen
            excess = float(outcome.gflops) - job.settings.max_gflops
            trial.set_constraint("max_gflops", excess)
            trial.set_user_attr(CONSTRAINT_ATTR, excess)
        study.tell(trial, [cost, score])
        return None


def _slots_taken_before(study: optuna.Study, number: int) -> int:
    taken = (TrialState.COMPLETE, TrialState.RUNNING, TrialState.WAITING)
    return sum(1 for t in study.get_trials(deepcopy=False, states=taken) if t.number < number)


def _fail(study: optuna.Study, trial: optuna.Trial, reason: str) -> str:
    trial.set_user_attr(FAIL_REASON_ATTR, reason)
    study.tell(trial, state=TrialState.FAIL)
    return reason


def count_states(trials: Sequence[FrozenTrial]) -> dict[TrialState, int]:
    counts = dict.fromkeys(TrialState, 0)
    for t in trials:
        counts[t.state] += 1
    return counts


def _free_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _quietly(call: Callable[..., Any], *args: Any) -> Any:
    """Silence Optuna's 'heartbeat is supposed to be used with Study.optimize' (this loop is why not) and its
    experimental-feature notices for heartbeats, once per trial otherwise."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Heartbeat of storage", category=UserWarning)
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return call(*args)


def _worker_main(job: WorkerJob) -> None:
    """Entry point of a spawned worker: user errors print as one line and exit 2, like the CLI."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    signal.signal(signal.SIGINT, _InterruptOnce())
    warnings.simplefilter("ignore", AutopatchWarning)  # the calling process has shown the data's warnings
    share_cores(job.workers)
    try:
        run_worker(job)
    except AutopatchError as error:
        print(f"autopatch search worker {job.worker_index}: error: {error}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:  # Ctrl-C reaches every process of the group: its trial is recorded failed, and
        sys.exit(130)  # the calling process prints the one line


class _InterruptOnce:
    """A worker's SIGINT handler: the terminal's Ctrl-C and the calling process's (see `stop_workers`) are one
    stop, so the first raises KeyboardInterrupt and the rest are ignored."""

    def __init__(self) -> None:
        self.interrupted = False

    def __call__(self, _signum: int, _frame: object) -> None:
        if not self.interrupted:
            self.interrupted = True
            raise KeyboardInterrupt


def share_cores(workers: int) -> None:
    """N torch processes on one machine each get cores/N threads instead of all fighting over every core."""
    if workers > 1:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))


def spawn_workers(job: WorkerJob, count: int) -> list[multiprocessing.process.BaseProcess]:
    """Workers 1..count in fresh interpreters (spawn: no forked torch/thread state); each decodes the data.

    They start with Ctrl-C ignored (an ignored signal stays ignored in the new interpreter) until `_worker_main`
    installs its handler: a Ctrl-C while a worker still imports would otherwise end it with a traceback.
    `stop_workers` repeats its SIGINT, so a worker that was starting up still stops."""
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=_worker_main, args=(replace(job, worker_index=index),), daemon=False)
        for index in range(1, count + 1)
    ]
    main_thread = threading.current_thread() is threading.main_thread()  # signal handlers are set only there
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if main_thread and processes else None
    try:
        for process in processes:
            process.start()
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    return processes


def stop_workers(
    processes: Sequence[multiprocessing.process.BaseProcess], grace_s: float = 30.0, repeat_s: float = 0.5
) -> None:
    """Stop spawned workers as Ctrl-C does: each records its running trial failed and exits. SIGINT is sent
    every `repeat_s` (a worker takes the first and ignores the rest, and one still starting up gets it once
    its handler is set); one that has not exited after `grace_s` is terminated (its trial goes stale and is
    retried by the next run)."""
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        alive = [process for process in processes if process.is_alive() and process.pid is not None]
        if not alive:
            break
        for process in alive:
            os.kill(process.pid, signal.SIGINT)
        multiprocessing.connection.wait([process.sentinel for process in alive], timeout=repeat_s)
    for process in processes:
        if process.is_alive():
            process.terminate()
        process.join()
