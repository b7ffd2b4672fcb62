"""What a study is: its settings, the objective protocols, the sampler, and opening a study safely.

`study` (running a whole search) and `workers` (the ask/tell loop of every worker process) both stand on
this module; neither imports the other's internals, so imports run one way: definition <- workers <- study.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import optuna

from autopatch.data import FolderDataset
from autopatch.data.synthetic import MIX, check_kind
from autopatch.errors import AutopatchError, check_count
from autopatch.image_size import check_resize, image_size_spec
from autopatch.search._optuna import TrialSeededTPESampler
from autopatch.search.fidelity import LEGACY_FIDELITY, Fidelity
from autopatch.search.names import COSTS, DEFAULT_RUNTIME, OBJECTIVES, RUNTIMES

if TYPE_CHECKING:
    from autopatch.image_size import ImageSize
    from autopatch.search.architecture import Architecture

# the cost (GFLOPs unless --cost), the validation objective (rwAP unless --objective)
DIRECTIONS = ("minimize", "maximize")
# Study attributes that change what a trial's numbers mean: resuming with a different value would mix them.
CHECKED_ATTRS = (
    "category", "space", "k", "image_size", "resize", "oracle", "bank_fraction", "query_stride", "projection", "seed",
    "max_gflops", "objective", "synthetic", "synthetic_kind", "cost", "runtime",
)  # fmt: skip
# what a study made before the attribute existed used
LEGACY_DEFAULTS = {
    "objective": "rwap", "resize": "stretch", "synthetic": 0, "synthetic_kind": MIX, "cost": "gflops", "runtime": None,
    **LEGACY_FIDELITY,
}  # fmt: skip
FLAGS = {"oracle": "--test-oracle", "query_stride": "--fidelity", "projection": "--fidelity"}  # not --<setting>
SETTINGS_ATTR = "settings_recorded"  # the creator writes it after every setting
REUSES_ATTR = "reuses_trial"  # a trial whose architecture the study had scored already names that trial
DEFAULT_ATTR = "default_architecture"  # a trial of one of the space's known-good architectures, run first


@dataclass(frozen=True)
class StudySettings:
    """What defines a study's trials; recorded as study user attrs and checked when a study is resumed."""

    data_root: str
    category: str
    space: str = "pretrained"
    k: int = 1
    seed: int = 0
    image_size: int | str = 224  # as `image_size.image_size_spec` records it: S, or "HxW"
    oracle: bool = False
    bank_fraction: float = 1.0  # with query_stride and projection: the trials' `Fidelity` (default: full)
    query_stride: int = 1
    projection: int | None = None
    max_gflops: float | None = None
    data_fingerprint: str | None = None  # data.data_fingerprint of the splits; None: not checked on resume
    objective: str = "rwap"  # a key of search.names.OBJECTIVES
    folders: dict[str, str | None] | None = None  # a FolderDataset's folders (data_root is then unused)
    resize: str = "stretch"  # or "keep-aspect": image_size is the shorter side (see autopatch.image_size)
    synthetic: int = 0  # synthetic validation anomalies (data.synthetic), seeded by `seed`
    synthetic_kind: str = MIX
    cost: str = "gflops"  # a key of search.names.COSTS: what the study minimises
    runtime: str | None = None  # with cost "latency": the deploy runtime it is measured in (default torch)

    def __post_init__(self) -> None:
        """Every number is checked here, before a study is created or a file written."""
        if self.objective not in OBJECTIVES:
            raise AutopatchError(f"--objective {self.objective!r} is unknown; use one of {', '.join(OBJECTIVES)}")
        if self.cost not in COSTS:
            raise AutopatchError(f"--cost {self.cost!r} is unknown; use one of {', '.join(COSTS)}")
        if self.cost == "gflops" and self.runtime is not None:
            raise AutopatchError(
                f"--runtime {self.runtime} applies to --cost latency only; add --cost latency, or drop it"
            )
        if self.cost == "latency":
            object.__setattr__(self, "runtime", self.runtime or DEFAULT_RUNTIME)
            if self.runtime not in RUNTIMES:
                raise AutopatchError(f"--runtime {self.runtime!r} is unknown; use one of {', '.join(RUNTIMES)}")
        check_count("--synthetic", self.synthetic, 0)
        check_kind(self.synthetic_kind)
        if self.k == 0 and not self.synthetic:
            raise AutopatchError("--k 0 validates on synthetic anomalies only: give --synthetic N (e.g. 16), not 0")
        check_count("--k", self.k, 0)
        object.__setattr__(self, "image_size", image_size_spec(self.image_size))
        check_resize(self.resize)
        Fidelity(self.bank_fraction, self.query_stride, self.projection)  # checks the three knobs
        if self.max_gflops is not None and not self.max_gflops > 0:
            raise AutopatchError(f"--max-gflops {self.max_gflops!r} must be a positive number of GFLOPs, e.g. 0.3")

    def default_study_name(self) -> str:
        """`<category>-<space>-k<k>-s<seed>[-syn<N>[<kind>]][-oracle][-<objective>][-latency-<runtime>]`: the same
        command resumes the same study."""
        name = f"{self.category}-{self.space}-k{self.k}-s{self.seed}"
        if self.synthetic:
            name += f"-syn{self.synthetic}" + ("" if self.synthetic_kind == MIX else self.synthetic_kind)
        name += "-oracle" if self.oracle else ""
        name += "" if self.objective == "rwap" else f"-{self.objective}"
        return name + ("" if self.cost == "gflops" else f"-{self.cost}-{self.runtime}")

    def data_source(self) -> str | FolderDataset:
        """What `data.load_splits` reads: the MVTec/VisA root, or the folder dataset."""
        return recorded_data_source(self.data_root, self.folders)

    @property
    def fidelity(self) -> Fidelity:
        """How the trials score the validation split (`search.fidelity`)."""
        return Fidelity(self.bank_fraction, self.query_stride, self.projection)

    @classmethod
    def with_fidelity(cls, fidelity: Fidelity, **settings: Any) -> StudySettings:
        """Settings whose trials score at `fidelity`."""
        return cls(**settings, **fidelity.to_dict())

    @property
    def metric(self) -> str:
        """The trial metric the objective maximises."""
        return OBJECTIVES[self.objective]

    def attrs(self) -> dict[str, Any]:
        return {**asdict(self), "data_root": str(self.data_root)}


@dataclass(frozen=True)
class Latency:
    """Batch-1 milliseconds of an architecture as deployed: its truncated encoder and its scoring head."""

    encoder_ms: float
    head_ms: float

    @property
    def total_ms(self) -> float:
        return self.encoder_ms + self.head_ms

    def attrs(self) -> dict[str, float]:
        """As a trial stores it (`from_attrs` reads it back)."""
        return {"latency_ms": self.total_ms, "latency_encoder_ms": self.encoder_ms, "latency_head_ms": self.head_ms}

    @classmethod
    def from_attrs(cls, attrs: dict[str, Any]) -> Latency | None:
        if "latency_encoder_ms" not in attrs:
            return None
        return cls(float(attrs["latency_encoder_ms"]), float(attrs["latency_head_ms"]))


class LatencyMeter(Protocol):
    """Times `arch` deployed at `image_size` with a memory bank of `bank_rows` rows, in the runtime it was made
    for. Made in each worker by a picklable `Callable[[runtime], LatencyMeter]` (`deploy.LatencyMeter`)."""

    def __call__(self, arch: Architecture, image_size: ImageSize, bank_rows: int) -> Latency: ...


@dataclass(frozen=True)
class TrialOutcome:
    """What one evaluated architecture yields: the objectives' sources (GFLOPs, the metrics, and the latency of a
    `--cost latency` study) plus attrs to store verbatim."""

    gflops: float
    metrics: dict[str, float]
    attrs: dict[str, Any] = field(default_factory=dict)
    latency: Latency | None = None

    def cost(self, settings: StudySettings) -> float:
        """The value the study minimises."""
        if settings.cost == "gflops":
            return float(self.gflops)
        if self.latency is None:
            raise AutopatchError("a --cost latency study needs each trial's latency; its objective measured none")
        return self.latency.total_ms


class Objective(Protocol):
    """Scores one trial; raises TrialFailed(reason) when it cannot (the study records it and goes on). An
    objective may also have `first_trials()`: the parameters a new study scores first (`first_trials_of`)."""

    def __call__(self, trial: optuna.Trial) -> TrialOutcome: ...


def first_trials_of(objective: Objective) -> Sequence[dict[str, Any]]:
    """What a study created for `objective` enqueues (see `open_study`): its `first_trials()`, else none."""
    first = getattr(objective, "first_trials", None)
    return first() if first is not None else ()


class ObjectiveFactory(Protocol):
    """Picklable: sent to each spawned worker, which calls it once to build its objective."""

    def __call__(self) -> Objective: ...


def recorded_data_source(data_root: str, folders: dict[str, str | None] | None) -> str | FolderDataset:
    """The data a study was made on, from its recorded `data_root` and `folders` (see `folder_strings`)."""
    if not folders:
        return data_root
    return FolderDataset(**{key: None if value is None else Path(value) for key, value in folders.items()})


def folder_strings(dataset: FolderDataset) -> dict[str, str | None]:
    """A folder dataset as the JSON-able, absolute folder names a study records."""
    return {key: None if value is None else str(Path(value).resolve()) for key, value in asdict(dataset).items()}


def make_sampler(seed: int) -> optuna.samplers.TPESampler:
    """Multivariate TPE (explicit: newer Optuna turns it off for multi-objective) with constant liar, so
    parallel workers don't all probe one point, and random draws seeded per trial number (see
    `TrialSeededTPESampler`): a resumed run or another process never replays the start-up trials.
    `group=True` models each set of parameters that occur together jointly: the `pretrained` space's block
    choices are encoder-specific parameters, which plain multivariate TPE would sample independently. The
    --max-gflops constraint needs no `constraints_func` (deprecated in Optuna 5): each trial sets it with
    `Trial.set_constraint` and TPE reads it from there."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return TrialSeededTPESampler(multivariate=True, group=True, constant_liar=True, seed=seed)


def open_study(
    settings: StudySettings,
    study_name: str,
    storage: optuna.storages.BaseStorage,
    *,
    first_trials: Sequence[dict[str, Any]] = (),
    wait_s: float = 30.0,
) -> optuna.Study:
    """Create the study, or load it after checking it was made with the same settings (else nothing written).

    A new study holds `first_trials` (parameters: the space's default architectures) as its first, enqueued
    trials, marked `DEFAULT_ATTR`; a study that exists gets none.

    Race-free for processes starting at once on one storage: exactly one creates the study (the others get
    Optuna's DuplicatedStudyError and load it), and a study counts as made only once its creator has written
    every setting (`SETTINGS_ATTR` last), so nobody compares against half-written settings. Others wait up
    to `wait_s` for that.
    """
    sampler = make_sampler(settings.seed)
    deadline = time.monotonic() + wait_s
    while True:
        stored = _existing_attrs(storage, study_name)
        if stored is None:
            try:
                study = optuna.create_study(
                    storage=storage, study_name=study_name, directions=list(DIRECTIONS), sampler=sampler
                )
            except optuna.exceptions.DuplicatedStudyError:
                continue  # another process created it just now: load it on the next pass
            attrs = settings.attrs()  # the checked ones last: once they are all there, so is everything else
            for key in sorted(attrs, key=lambda key: key in CHECKED_ATTRS):
                study.set_user_attr(key, attrs[key])
            for params in first_trials:  # enqueued before the marker: every worker sees them
                study.enqueue_trial(params, user_attrs={DEFAULT_ATTR: True})
            study.set_user_attr(SETTINGS_ATTR, True)
            return study
        if _settings_recorded(stored):
            _check_same_settings(study_name, stored, settings.attrs())
            return optuna.load_study(study_name=study_name, storage=storage, sampler=sampler)
        if time.monotonic() > deadline:
            raise AutopatchError(
                f"study {study_name!r} exists but its settings were never fully written (its creator was stopped "
                "while creating it); pass a new --study name, or delete that study from the storage"
            )
        time.sleep(0.2)


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


def _settings_recorded(stored: dict[str, Any]) -> bool:
    """The creator wrote every setting: the marker it writes last, or (studies made before the marker
    existed) all of the checked settings."""
    return bool(stored.get(SETTINGS_ATTR)) or all(key in stored for key in CHECKED_ATTRS if key not in LEGACY_DEFAULTS)


def _check_same_settings(study_name: str, stored: dict[str, Any], wanted: dict[str, Any]) -> None:
    ours, theirs = wanted.get("data_fingerprint"), stored.get("data_fingerprint")
    if ours is not None and theirs is not None and ours != theirs:
        raise AutopatchError(
            f"study {study_name!r} was scored on the data in {stored.get('data_root')} but {wanted['data_root']} "
            "holds other files (names, sizes or splits differ); resume it on the same data, or pass a new --study name"
        )
    for key in CHECKED_ATTRS:
        theirs = stored.get(key, LEGACY_DEFAULTS.get(key))
        if theirs != wanted[key]:
            flag = FLAGS.get(key, "--" + key.replace("_", "-"))
            raise AutopatchError(
                f"study {study_name!r} exists with {key}={theirs!r}, not {wanted[key]!r}; "
                f"pass the same {flag} to resume it, or a new --study name"
            )
