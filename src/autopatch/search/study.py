"""The multi-objective study: (GFLOPs ↓, validation rwAP ↑) over a search space, resumable and parallel.

This module runs a study: the architecture objective, the GFLOPs budget check, `run_study`. What a study
is (settings, protocols, sampler, opening) is in `definition`, the ask/tell loop of its workers in
`workers`. The objective is built by a picklable factory, once per
worker process, so each worker decodes the images once and tests can inject a cheap objective without any
test-only branch here. The calling process is worker 0: it builds its objective before the study is
created, so bad data or a bad space name is reported with nothing written.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from autopatch.backbones import OFA_LAYOUT
from autopatch.backbones.flops import count_flops
from autopatch.data import load_splits
from autopatch.device import resolve_device
from autopatch.errors import AutopatchError, check_positive
from autopatch.files import check_output_folder
from autopatch.image_size import ImageSize, size_label
from autopatch.metrics import BOOTSTRAPPED, IMAGE_METRIC_NAMES, METRIC_NAMES, SE_SUFFIX
from autopatch.search.architecture import Architecture, build_encoder
from autopatch.search.definition import (
    REUSES_ATTR,
    Latency,
    LatencyMeter,
    ObjectiveFactory,
    StudySettings,
    TrialOutcome,
    first_trials_of,
    open_study,
)
from autopatch.search.evaluator import TrialEvaluator, TrialFailed
from autopatch.search.names import OBJECTIVE_LABELS, PIXEL_OBJECTIVES
from autopatch.search.pareto import pareto_front
from autopatch.search.progress import SearchProgress
from autopatch.search.spaces import (
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
from autopatch.search.workers import WorkerJob, count_states, share_cores, spawn_workers, stop_workers, work

# a trial of an older study may lack the image ones and the standard errors
ALL_METRICS = (*METRIC_NAMES, *IMAGE_METRIC_NAMES, *(name + SE_SUFFIX for name in BOOTSTRAPPED))


def completed_trial_of(study: optuna.Study, arch: Architecture) -> FrozenTrial | None:
    """The first COMPLETE trial of `study` that scored `arch` itself (not by reusing another's result)."""
    wanted = arch.to_dict()
    for done in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        if done.user_attrs.get("architecture_dict") == wanted and REUSES_ATTR not in done.user_attrs:
            return done
    return None


class ArchitectureObjective:
    """The search objective: the space suggests an architecture, the evaluator scores it on validation, and
    `latency` (for a `--cost latency` study) times it as deployed."""

    def __init__(self, space: SearchSpace, evaluator: TrialEvaluator, latency: LatencyMeter | None = None) -> None:
        self.space = space
        self.evaluator = evaluator
        self.latency = latency

    def first_trials(self) -> list[dict[str, Any]]:
        """A new study scores the space's default architectures first."""
        return self.space.default_params()

    def __call__(self, trial: optuna.Trial) -> TrialOutcome:
        arch = self.space.suggest(trial)
        if arch is None:
            raise TrialFailed("infeasible: no extraction block selected")
        trial.set_user_attr("architecture", str(arch))  # set first: a failed trial still shows what it tried
        trial.set_user_attr("architecture_dict", arch.to_dict())
        done = completed_trial_of(trial.study, arch)
        if done is not None:  # the study holds this architecture's result: reuse it, never evaluate it again
            metrics = {name: float(done.user_attrs[name]) for name in ALL_METRICS if name in done.user_attrs}
            gflops = float(done.user_attrs["gflops"])
            latency = Latency.from_attrs(done.user_attrs)
            return TrialOutcome(gflops, metrics, attrs={REUSES_ATTR: done.number}, latency=latency)
        result = self.evaluator.evaluate(arch)
        timings, latency = dict(result.timings), None
        if self.latency is not None:
            start = perf_counter()
            latency = self.latency(arch, self.evaluator.image_size, result.bank_rows)
            timings["latency"] = perf_counter() - start
        return TrialOutcome(gflops=result.gflops, metrics=result.metrics, attrs={"timings": timings}, latency=latency)


@dataclass(frozen=True)
class ArchitectureObjectiveFactory:
    """Decodes the splits once (per process) and keeps one evaluator for the whole study. A `--cost latency` study
    needs `latency_meter`: called with the study's runtime, it makes the worker's `LatencyMeter`
    (`autopatch.deploy.LatencyMeter`; the search cannot import `deploy`, which stands on it)."""

    settings: StudySettings
    device: str = "auto"
    latency_meter: Callable[[str], LatencyMeter] | None = None

    def __call__(self) -> ArchitectureObjective:
        s = self.settings
        latency = None
        if s.cost == "latency":
            if self.latency_meter is None:
                raise AutopatchError(
                    "--cost latency needs a latency meter: run the search through autopatch.run_search, or give "
                    "ArchitectureObjectiveFactory(latency_meter=autopatch.deploy.LatencyMeter)"
                )
            latency = self.latency_meter(s.runtime)  # a missing runtime fails here, before the study is made
        space = get_space(s.space)
        device = resolve_device(self.device)
        splits = load_splits(
            s.data_source(), s.category, s.k, image_size=s.image_size, oracle=s.oracle, resize=s.resize,
            synthetic=s.synthetic, synthetic_kind=s.synthetic_kind, synthetic_seed=s.seed,
        )  # fmt: skip
        check_gflops_budget(space, splits.image_size, s.max_gflops)
        evaluator = TrialEvaluator(splits, device, fidelity=s.fidelity, seed=s.seed, oracle=s.oracle)
        if s.objective in PIXEL_OBJECTIVES and not evaluator.pixel_labels:
            raise AutopatchError(
                f"--objective {s.objective} needs a defect mask for every validation anomaly, and this data has "
                "none; use --objective image-ap or image-auroc, or give the masks (--mask-dir)"
            )
        return ArchitectureObjective(space, evaluator, latency)


@dataclass(frozen=True)
class SearchSummary:
    """A finished (or resumed) search: the study itself, where it lives (password masked), trial counts
    and its Pareto front, cheapest first."""

    study: optuna.Study
    storage_url: str
    complete: int
    failed: int
    front: list[FrozenTrial]

    @property
    def study_name(self) -> str:
        return self.study.study_name


# --- the whole search --------------------------------------------------------------------------------


def run_study(
    settings: StudySettings,
    *,
    trials: int,
    factory: ObjectiveFactory | None = None,
    device: str = "auto",
    study_name: str | None = None,
    storage_url: str | None = None,
    out_dir: str | Path = "runs",
    workers: int = 1,
    heartbeat: Heartbeat = Heartbeat(),
    progress: bool = True,
) -> SearchSummary:
    """Run (or resume) the study until `trials` trials are COMPLETE in total; returns its Pareto front.

    This process is worker 0; workers > 1 spawns the others. Without `storage_url` the study lives in
    `out_dir` (SQLite for one worker, a journal file for several). The objective is the architecture
    search of `settings` on `device` unless `factory` builds another one; a new architecture study scores its
    space's default architectures first.
    """
    check_positive("--trials", trials)
    factory = factory if factory is not None else ArchitectureObjectiveFactory(settings, device=device)
    name = study_name or settings.default_study_name()
    url = storage_url or default_storage_url(out_dir, name, workers)
    check_storage_for_workers(url, workers)
    if storage_url is None:
        check_output_folder(out_dir, "study folder")
    objective = factory()  # decodes the data: bad data, space or device fail here, before anything is written
    storage = open_storage(url, heartbeat)
    # creates it (its first trials enqueued), or proves the settings match, before any trial
    study = open_study(settings, name, storage, first_trials=first_trials_of(objective))
    job = WorkerJob(settings, name, url, heartbeat, factory, trials, workers=workers)
    bar = SearchProgress(trials, enabled=progress, grace_s=heartbeat.grace_period_s,
                         label=OBJECTIVE_LABELS[settings.objective])  # fmt: skip
    share_cores(workers)
    processes = spawn_workers(job, workers - 1)
    try:
        work(study, objective, job, on_progress=bar.update)  # its last update saw the finished study
    except BaseException as error:
        stop_workers(processes)
        if isinstance(error, KeyboardInterrupt):
            raise SearchInterrupted(study) from None
        if isinstance(error, optuna.exceptions.StorageInternalError):  # Optuna blames "invalid data"
            cause = str(error.__cause__ or error).strip().splitlines()[0]
            raise AutopatchError(
                f"the study storage {mask_password(url)} could not save a trial ({cause}); free disk space or "
                "fix the database, then rerun the same command to resume"
            ) from None
        raise
    finally:
        bar.close()
        for process in processes:
            process.join()
    return summarize(study, url)


class SearchInterrupted(KeyboardInterrupt):
    """Ctrl-C during a search: the running trial is recorded failed; says how much the study keeps."""

    def __init__(self, study: optuna.Study) -> None:
        complete = count_states(study.get_trials(deepcopy=False))[TrialState.COMPLETE]
        super().__init__(
            f"stopped: study {study.study_name!r} keeps its {complete} complete trials; "
            "rerun the same command to resume"
        )


def check_gflops_budget(space: SearchSpace, image_size: ImageSize, max_gflops: float | None) -> None:
    """Error when even the space's smallest architecture exceeds `max_gflops` (no trial could satisfy it)."""
    if max_gflops is None:
        return
    smallest = min(_gflops(arch, image_size) for arch in smallest_architectures(space))
    if smallest > max_gflops:
        raise AutopatchError(
            f"--max-gflops {max_gflops} is below the smallest architecture of space {space.name!r} "
            f"({smallest:.4f} GFLOPs at image size {size_label(image_size)}); raise it or lower --image-size"
        )


def smallest_architectures(space: SearchSpace) -> list[Architecture]:
    """Per encoder, the cheapest point: its first extractable block, minimal OFA kernel/expansion/depth."""
    if isinstance(space, PretrainedSpace):
        return [Architecture(name, {}, (pretrained_stages(name)[0][0],), (1,)) for name in space.encoders]
    if isinstance(space, OFASpace):
        kernel = space.kernel_size or min(OFA_LAYOUT.kernel_sizes)
        expand = space.expand_ratio or min(OFA_LAYOUT.expand_ratios)
        config = OFA_LAYOUT.uniform_setting(kernel, expand, min(OFA_LAYOUT.depths))
        supernets = [space.supernet] if space.supernet else list(OFA_LAYOUT.families)
        return [Architecture(name, config, (OFA_LAYOUT.stage_blocks(1)[0],), (1,)) for name in supernets]
    raise AutopatchError(f"space {space.name!r} has no known smallest architecture; drop --max-gflops")


def _gflops(arch: Architecture, image_size: ImageSize) -> float:
    return count_flops(build_encoder(arch, pretrained=False), arch.block_ids, image_size) / 1e9


def summarize(study: optuna.Study, storage_url: str) -> SearchSummary:
    trials = study.get_trials(deepcopy=False)
    counts = count_states(trials)
    return SearchSummary(
        study=study,
        storage_url=mask_password(storage_url),
        complete=counts[TrialState.COMPLETE],
        failed=counts[TrialState.FAIL],
        front=pareto_front(trials, study.user_attrs.get("max_gflops")),
    )
