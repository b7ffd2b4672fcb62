"""What a study is: its settings, the objective protocols, the sampler, and opening a study safely.

`study` (running a whole search) and `workers` (the ask/tell loop of every worker process) both stand on
this module; neither imports the other's internals, so imports run one way: definition <- workers <- study.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import optuna

from autopatch.errors import AutopatchError

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
