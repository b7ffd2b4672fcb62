"""The multi-objective study: (GFLOPs ↓, validation rwAP ↑) over a search space, resumable and parallel.

This module defines a study (its settings, objective, sampler, resume check, GFLOPs budget) and runs it;
the ask/tell loop of its workers is in `workers`. The objective is built by a picklable factory, once per
worker process, so each worker decodes the images once and tests can inject a cheap objective without any
test-only branch here. The calling process is worker 0: it builds its objective before the study is
created, so bad data or a bad space name is reported with nothing written.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import optuna
from optuna.trial import FrozenTrial, TrialState

from autopatch.backbones.flops import count_flops
from autopatch.data import load_splits
from autopatch.device import resolve_device
from autopatch.errors import AutopatchError
from autopatch.search.architecture import Architecture, build_encoder, ofa_stage_blocks
from autopatch.search.evaluator import TrialEvaluator, TrialFailed
from autopatch.search.pareto import pareto_front
from autopatch.search.progress import SearchProgress
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
from autopatch.search.workers import WorkerJob, count_states, share_cores, spawn_workers, work

DIRECTIONS = ("minimize", "maximize")  # GFLOPs, validation rwAP
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


# --- the whole search --------------------------------------------------------------------------------


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
    processes = spawn_workers(job, workers - 1)
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
    counts = count_states(trials)
    return SearchSummary(
        study_name=study.study_name,
        storage_url=mask_password(storage_url),
        complete=counts[TrialState.COMPLETE],
        failed=counts[TrialState.FAIL],
        front=pareto_front(trials, study.user_attrs.get("max_gflops")),
    )
