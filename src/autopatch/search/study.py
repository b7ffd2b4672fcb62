"""The multi-objective study: (GFLOPs ↓, validation rwAP ↑) over a search space, resumable and parallel.

Workers run an ask/tell loop rather than `Study.optimize` because the loop must (a) record *why* a trial
failed (no block selected, NaN, out of memory) and go on, (b) stop at exactly `trials` COMPLETE trials in
total however many workers share the study, and (c) keep heartbeats so trials of killed workers are failed
and retried. Exactness: right after `ask`, a trial counts the lower-numbered trials that are COMPLETE,
RUNNING or WAITING (queued retries); it runs only when fewer than `trials` are. Numbers are handed out by
the storage in creation order, so among trials that complete, the highest-numbered one saw all the others
and no more than `trials` can complete. A trial that loses that count is failed unrun, with that reason.

The objective is built by a picklable factory, once per worker process, so each worker decodes the
images once and tests can inject a cheap objective without any test-only branch here. The calling process
is worker 0: it builds its objective before the study is created, so bad data or a bad space name is
reported with nothing written.

`--max-gflops` below every architecture is caught up front: the space's smallest architecture (its
shallowest first block, smallest kernel/expansion/width) is built without weights and its FLOPs counted.
"""

from __future__ import annotations

import gc
import math
import multiprocessing
import os
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import optuna
import torch
from optuna.storages._heartbeat import get_heartbeat_thread
from optuna.trial import FrozenTrial, TrialState
from tqdm.auto import tqdm

from autopatch.backbones.flops import count_flops
from autopatch.data import load_splits
from autopatch.device import resolve_device
from autopatch.errors import AutopatchError
from autopatch.search.architecture import Architecture, build_encoder, ofa_stage_blocks
from autopatch.search.evaluator import TrialEvaluator, TrialFailed
from autopatch.search.pareto import pareto_front
from autopatch.search.spaces import (
    OFA_EXPAND_RATIOS,
    OFA_KERNEL_SIZES,
    OFA_STAGES,
    OFA_SUPERNETS,
    OFASpace,
    PretrainedSpace,
    SearchSpace,
    get_space,
    pretrained_stages,
)
from autopatch.search.storage import (
    Heartbeat,
    check_storage_for_workers,
    default_storage_url,
    mask_password,
    open_storage,
)

DIRECTIONS = ("minimize", "maximize")  # GFLOPs, validation rwAP
FAIL_REASON_ATTR = "fail_reason"
CONSTRAINT_ATTR = "constraint"
MAX_CONSECUTIVE_FAILURES = 25
# Study attributes that change what a trial's numbers mean: resuming with a different value would mix them.
CHECKED_ATTRS = ("category", "space", "k", "image_size", "oracle", "bank_fraction", "seed", "max_gflops")


@dataclass(frozen=True)
class StudySettings:
    """What defines a study's trials; recorded as study user attrs and checked when a study is resumed."""

    data_root: str
    category: str
    space: str = "pretrained"
    k: int = 1
    seed: int = 0
    image_size: int = 224
    oracle: bool = False
    bank_fraction: float = 1.0
    max_gflops: float | None = None

    def default_study_name(self) -> str:
        """`<category>-<space>-k<k>-s<seed>[-oracle]`: the same command resumes the same study."""
        return f"{self.category}-{self.space}-k{self.k}-s{self.seed}" + ("-oracle" if self.oracle else "")

    def attrs(self) -> dict[str, Any]:
        return {**asdict(self), "data_root": str(self.data_root)}


@dataclass(frozen=True)
class TrialOutcome:
    """What one evaluated architecture yields: the two objectives' sources plus attrs to store verbatim."""

    gflops: float
    metrics: dict[str, float]
    attrs: dict[str, Any] = field(default_factory=dict)


class Objective(Protocol):
    """Scores one trial; raises TrialFailed(reason) when it cannot (the study records it and goes on)."""

    def __call__(self, trial: optuna.Trial) -> TrialOutcome: ...


class ObjectiveFactory(Protocol):
    """Picklable: sent to each spawned worker, which calls it once to build its objective."""

    def __call__(self) -> Objective: ...


class ArchitectureObjective:
    """The search objective: the space suggests an architecture, the evaluator scores it on validation."""

    def __init__(self, space: SearchSpace, evaluator: TrialEvaluator) -> None:
        self.space = space
        self.evaluator = evaluator

    def __call__(self, trial: optuna.Trial) -> TrialOutcome:
        arch = self.space.suggest(trial)
        if arch is None:
            raise TrialFailed("infeasible: no extraction block selected")
        trial.set_user_attr("architecture", str(arch))  # set first: a failed trial still shows what it tried
        trial.set_user_attr("architecture_dict", arch.to_dict())
        result = self.evaluator.evaluate(arch)
        return TrialOutcome(gflops=result.gflops, metrics=result.metrics, attrs={"timings": result.timings})


@dataclass(frozen=True)
class ArchitectureObjectiveFactory:
    """Decodes the splits once (per process) and keeps one evaluator for the whole study."""

    settings: StudySettings
    device: str = "auto"

    def __call__(self) -> ArchitectureObjective:
        s = self.settings
        space = get_space(s.space)
        check_gflops_budget(space, s.image_size, s.max_gflops)
        device = resolve_device(self.device)
        splits = load_splits(s.data_root, s.category, s.k, image_size=s.image_size, oracle=s.oracle)
        evaluator = TrialEvaluator(splits, device, bank_fraction=s.bank_fraction, seed=s.seed, oracle=s.oracle)
        return ArchitectureObjective(space, evaluator)


@dataclass(frozen=True)
class SearchSummary:
    study_name: str
    storage_url: str
    complete: int
    failed: int
    front: list[FrozenTrial]


def make_sampler(seed: int) -> optuna.samplers.TPESampler:
    """Multivariate TPE (explicit: newer Optuna turns it off for multi-objective) with constant liar, so
    parallel workers don't all probe one point. `group=True` models each set of parameters that occur
    together jointly: the `pretrained` space's block choices are encoder-specific parameters, which plain
    multivariate TPE would sample independently. The --max-gflops constraint needs no `constraints_func`
    (deprecated in Optuna 5): each trial sets it with `Trial.set_constraint` and TPE reads it from there."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(multivariate=True, group=True, constant_liar=True, seed=seed)


def open_study(
    settings: StudySettings, study_name: str, storage: optuna.storages.BaseStorage, *, seed_offset: int = 0
) -> optuna.Study:
    """Create the study, or load it after checking it was made with the same settings (else nothing written)."""
    sampler = make_sampler(settings.seed + seed_offset)
    existing = _existing_attrs(storage, study_name)
    if existing is not None:
        _check_same_settings(study_name, existing, settings.attrs())
        return optuna.load_study(study_name=study_name, storage=storage, sampler=sampler)
    study = optuna.create_study(
        storage=storage, study_name=study_name, directions=list(DIRECTIONS), sampler=sampler, load_if_exists=True
    )
    for key, value in settings.attrs().items():
        study.set_user_attr(key, value)
    return study


def load_existing_study(study_name: str, storage: optuna.storages.BaseStorage) -> optuna.Study:
    """A study that must already exist (pareto, export); the error lists the studies the storage holds."""
    if _existing_attrs(storage, study_name) is None:
        names = sorted(s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False))
        raise AutopatchError(f"no study {study_name!r} in this storage; it holds: {', '.join(names) or 'none'}")
    return optuna.load_study(study_name=study_name, storage=storage)


def _existing_attrs(storage: optuna.storages.BaseStorage, study_name: str) -> dict[str, Any] | None:
    try:
        study_id = storage.get_study_id_from_name(study_name)
    except KeyError:
        return None
    return storage.get_study_user_attrs(study_id)


def _check_same_settings(study_name: str, stored: dict[str, Any], wanted: dict[str, Any]) -> None:
    if not stored:
        return  # created a moment ago by a parallel worker that has not written its attrs yet
    for key in CHECKED_ATTRS:
        if stored.get(key) != wanted[key]:
            raise AutopatchError(
                f"study {study_name!r} exists with {key}={stored.get(key)!r}, not {wanted[key]!r}; "
                f"pass the same {key} to resume it, or a new --study name"
            )


# --- the worker loop ---------------------------------------------------------------------------------


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
    study = open_study(job.settings, job.study_name, open_storage(job.storage_url, job.heartbeat), seed_offset=job.worker_index)
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
        counts = _count_states(trials)
        if counts[TrialState.COMPLETE] >= job.trials:
            return completed
        if counts[TrialState.COMPLETE] + counts[TrialState.RUNNING] >= job.trials and not counts[TrialState.WAITING]:
            time.sleep(poll_s)  # the last slots are running elsewhere; one may fail or go stale and need a rerun
            continue
        trial = _quietly(study.ask)
        reason = _run_trial(study, trial, objective, job)
        completed += reason is None
        consecutive_failures = 0 if reason is None else consecutive_failures + 1
        if consecutive_failures >= MAX_CONSECUTIVE_FAILURES:
            raise AutopatchError(f"{consecutive_failures} trials in a row failed, the last with: {reason}; fix that and rerun")


def _run_trial(study: optuna.Study, trial: optuna.Trial, objective: Objective, job: WorkerJob) -> str | None:
    """Evaluate one trial and tell the storage; returns the reason it failed, None when COMPLETE."""
    if _slots_taken_before(study, trial.number) >= job.trials:
        return _fail(study, trial, f"not run: {job.trials} trials were already complete or running")
    try:
        with get_heartbeat_thread(trial._trial_id, study._storage):
            outcome = objective(trial)
    except TrialFailed as failure:
        return _fail(study, trial, failure.reason)
    except (torch.OutOfMemoryError, MemoryError) as error:
        _free_memory()
        return _fail(study, trial, f"out of memory ({type(error).__name__})")
    except BaseException as error:  # a bug or Ctrl-C: leave the trial failed with the reason, then stop
        _fail(study, trial, f"{type(error).__name__}: {error}")
        raise
    rwap = float(outcome.metrics["rwap"])
    if not (math.isfinite(outcome.gflops) and math.isfinite(rwap)):
        return _fail(study, trial, f"non-finite objective: gflops={outcome.gflops}, rwap={rwap}")
    for key, value in {**outcome.attrs, **outcome.metrics, "gflops": float(outcome.gflops)}.items():
        trial.set_user_attr(key, value)
    if job.settings.max_gflops is not None:  # <= 0 is feasible; kept as a user attr too, to be seen
        excess = float(outcome.gflops) - job.settings.max_gflops
        trial.set_constraint("max_gflops", excess)
        trial.set_user_attr(CONSTRAINT_ATTR, excess)
    study.tell(trial, [float(outcome.gflops), rwap])
    return None


def _slots_taken_before(study: optuna.Study, number: int) -> int:
    taken = (TrialState.COMPLETE, TrialState.RUNNING, TrialState.WAITING)
    return sum(1 for t in study.get_trials(deepcopy=False, states=taken) if t.number < number)


def _fail(study: optuna.Study, trial: optuna.Trial, reason: str) -> str:
    trial.set_user_attr(FAIL_REASON_ATTR, reason)
    study.tell(trial, state=TrialState.FAIL)
    return reason


def _count_states(trials: Sequence[FrozenTrial]) -> dict[TrialState, int]:
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
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return call(*args)


def _worker_main(job: WorkerJob) -> None:
    """Entry point of a spawned worker: user errors print as one line and exit 2, like the CLI."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    share_cores(job.workers)
    try:
        run_worker(job)
    except AutopatchError as error:
        print(f"autopatch search worker {job.worker_index}: error: {error}", file=sys.stderr)
        sys.exit(2)


# --- the whole search --------------------------------------------------------------------------------


class SearchProgress:
    """tqdm bar over COMPLETE trials with best rwAP so far and Pareto front size. The bar starts at the trials
    a resumed study already holds, so its ETA comes from this run's pace only."""

    def __init__(self, total: int, enabled: bool = True) -> None:
        self.total = total
        self.enabled = enabled
        self.bar: tqdm | None = None

    def update(self, trials: Sequence[FrozenTrial]) -> None:
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        done = min(len(complete), self.total)
        if self.bar is None:
            self.bar = tqdm(total=self.total, initial=done, desc="search", unit="trial", disable=not self.enabled)
        elif done > self.bar.n:
            self.bar.update(done - self.bar.n)
        best = max((t.values[1] for t in complete), default=float("nan"))
        failed = sum(t.state == TrialState.FAIL for t in trials)
        self.bar.set_postfix(best_rwap=f"{best:.4f}", front=len(pareto_front(complete)), failed=failed)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def run_search(
    settings: StudySettings,
    factory: ObjectiveFactory,
    *,
    trials: int,
    study_name: str | None = None,
    storage_url: str | None = None,
    out_dir: str | Path = "runs",
    workers: int = 1,
    heartbeat: Heartbeat = Heartbeat(),
    progress: bool = True,
) -> SearchSummary:
    """Run (or resume) the study until `trials` trials are COMPLETE in total; returns its Pareto front.

    This process is worker 0; workers > 1 spawns the others. Without `storage_url` the study lives in
    `out_dir` (SQLite for one worker, a journal file for several).
    """
    if trials < 1:
        raise AutopatchError(f"--trials {trials} must be at least 1")
    name = study_name or settings.default_study_name()
    url = storage_url or default_storage_url(out_dir, name, workers)
    check_storage_for_workers(url, workers)
    objective = factory()  # decodes the data: bad data, space or device fail here, before anything is written
    if storage_url is None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
    storage = open_storage(url, heartbeat)
    study = open_study(settings, name, storage)  # creates it, or proves the settings match, before any trial
    job = WorkerJob(settings, name, url, heartbeat, factory, trials, workers=workers)
    bar = SearchProgress(trials, enabled=progress)
    share_cores(workers)
    processes = _spawn_workers(job, workers - 1)
    try:
        work(study, objective, job, on_progress=bar.update)  # its last update saw the finished study
    except BaseException:
        for process in processes:  # their running trials go stale and are retried by the next run
            process.terminate()
        raise
    finally:
        bar.close()
        for process in processes:
            process.join()
    return summarize(study, url)


def share_cores(workers: int) -> None:
    """N torch processes on one machine each get cores/N threads instead of all fighting over every core."""
    if workers > 1:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))


def _spawn_workers(job: WorkerJob, count: int) -> list[multiprocessing.process.BaseProcess]:
    """Workers 1..count in fresh interpreters (spawn: no forked torch/thread state); each decodes the data."""
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=_worker_main, args=(replace(job, worker_index=index),), daemon=False)
        for index in range(1, count + 1)
    ]
    for process in processes:
        process.start()
    return processes


def check_gflops_budget(space: SearchSpace, image_size: int, max_gflops: float | None) -> None:
    """Error when even the space's smallest architecture exceeds `max_gflops` (no trial could satisfy it)."""
    if max_gflops is None:
        return
    smallest = min(_gflops(arch, image_size) for arch in smallest_architectures(space))
    if smallest > max_gflops:
        raise AutopatchError(
            f"--max-gflops {max_gflops} is below the smallest architecture of space {space.name!r} "
            f"({smallest:.4f} GFLOPs at image size {image_size}); raise it or lower --image-size"
        )


def smallest_architectures(space: SearchSpace) -> list[Architecture]:
    """Per encoder, the cheapest point: its first extractable block, minimal OFA kernel/expansion/depth."""
    if isinstance(space, PretrainedSpace):
        return [Architecture(name, {}, (pretrained_stages(name)[0][0],), (1,)) for name in space.encoders]
    if isinstance(space, OFASpace):
        kernel = space.kernel_size or min(OFA_KERNEL_SIZES)
        expand = space.expand_ratio or min(OFA_EXPAND_RATIOS)
        blocks = OFA_STAGES * len(ofa_stage_blocks(1))
        config = {"ks": [kernel] * blocks, "e": [expand] * blocks, "d": [2] * OFA_STAGES}
        supernets = [space.supernet] if space.supernet else list(OFA_SUPERNETS)
        return [Architecture(name, config, (ofa_stage_blocks(1)[0],), (1,)) for name in supernets]
    raise AutopatchError(f"space {space.name!r} has no known smallest architecture; drop --max-gflops")


def _gflops(arch: Architecture, image_size: int) -> float:
    return count_flops(build_encoder(arch, pretrained=False), arch.block_ids, image_size) / 1e9


def summarize(study: optuna.Study, storage_url: str) -> SearchSummary:
    trials = study.get_trials(deepcopy=False)
    counts = _count_states(trials)
    return SearchSummary(
        study_name=study.study_name,
        storage_url=mask_password(storage_url),
        complete=counts[TrialState.COMPLETE],
        failed=counts[TrialState.FAIL],
        front=pareto_front(trials, study.user_attrs.get("max_gflops")),
    )
