"""Turn a trial of a study into the deployable model file: refit its architecture on the train split.

Search trials may score at a lower fidelity (`search.fidelity`); the exported model always starts from
the full train bank (optionally greedy-coreset subsampled), picks its pixel threshold on the validation
split and reports test-split metrics, so the user sees what the file will do, not what the trial scored.
`best_trial` re-scores the candidates exactly when the study used a query stride or a projection, so those
never decide the pick by themselves, and picks by a lower confidence bound, so the noise is in view; that pick
replaces the study's reference model (`search.reference`) only when the validation says it is better.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from autopatch.backbones import create_encoder
from autopatch.data import FolderDataset, Splits, load_splits
from autopatch.device import resolve_device
from autopatch.errors import AutopatchError
from autopatch.files import check_output_file
from autopatch.metrics import DEFAULT_NORMAL_FPR, SE_SUFFIX
from autopatch.search.architecture import Architecture
from autopatch.search.definition import LEGACY_DEFAULTS, recorded_data_source
from autopatch.search.evaluator import TrialEvaluator
from autopatch.search.fidelity import Fidelity
from autopatch.search.names import objective_metric
from autopatch.search.pareto import candidates, objectives, select_lower_bound, select_trial
from autopatch.search.reference import Reference, build_reference, study_reference
from autopatch.search.spaces import get_space
from autopatch.segmenter import Segmenter, fit_and_evaluate


@dataclass(frozen=True)
class ExportResult:
    path: Path
    trial: int | None  # None: the study's reference model (`search.reference`)
    architecture: str
    val_threshold: dict[str, Any]
    test_metrics: dict[str, Any]
    converted: Path | None = None  # the file for another runtime made from `path` (`autopatch export --format`)
    pick: Pick | None = None  # how 'best' chose, when it did


def trial_architecture(trial: FrozenTrial) -> Architecture:
    """The architecture a COMPLETE trial scored, as stored by the search."""
    data = trial.user_attrs.get("architecture_dict")
    if data is None:
        raise AutopatchError(f"trial {trial.number} stores no architecture; it was not written by `autopatch search`")
    return Architecture.from_dict(data)


def study_splits(
    study: optuna.Study, data_root: str | Path | FolderDataset | None = None, oracle: bool | None = None
) -> Splits:
    """The splits a study was searched on (`data_root` overrides the data it recorded; `oracle` whether the
    test split is Test', by default as the study was searched)."""
    attrs = study.user_attrs
    oracle = bool(attrs["oracle"]) if oracle is None else oracle
    root = data_root if data_root is not None else recorded_data_source(attrs["data_root"], attrs.get("folders"))
    category = None if isinstance(root, FolderDataset) else attrs["category"]
    recorded = {**LEGACY_DEFAULTS, **attrs}
    return load_splits(
        root, category, int(attrs["k"]), image_size=attrs["image_size"], oracle=oracle, resize=recorded["resize"],
        synthetic=int(recorded["synthetic"]), synthetic_kind=recorded["synthetic_kind"],
        synthetic_seed=int(attrs["seed"]),
    )  # fmt: skip


@dataclass(frozen=True)
class Pick:
    """What 'best' exports: `trial`, or the study's `reference` model when `trial` is None. `candidate` is the
    candidate with the highest validation lower bound; `margin` how far it is above the reference less the standard
    error of that difference (`Reference.margin`): it replaces the reference only above 0. `reference` and `margin`
    are None when the reference was not compared (not asked for, a Test' study, or outside the budget)."""

    trial: FrozenTrial | None
    candidate: FrozenTrial
    reference: Reference | None = None
    margin: float | None = None


def best_trial(
    study: optuna.Study,
    max_gflops: float | None = None,
    data_root: str | Path | FolderDataset | None = None,
    device: str = "auto",
    max_ms: float | None = None,
    reference: bool = True,
) -> Pick:
    """'best': among the front and the default architectures within `max_gflops` and `max_ms` of measured latency
    (`search.pareto.candidates`), the highest validation objective minus its bootstrap standard error
    (`search.pareto.select_lower_bound`), kept only when it beats the study's reference (`search.reference`;
    unless `reference` is False, the study is a Test' study, or the reference is outside `max_gflops`; `max_ms`
    rules it out, as it has no measured latency). When the study's trials queried a stride or a projection, every
    candidate is first re-scored at full fidelity but for the study's bank fraction (exact 1-NN, every query), and
    those values and their standard errors decide."""
    attrs = study.user_attrs
    trials = study.get_trials(deepcopy=False)
    choices = candidates(trials, max_gflops, max_ms)
    if not choices:
        chosen = select_trial(trials, "best", max_gflops, max_ms)  # its one-line error
        return Pick(chosen, chosen)
    metric = objective_metric(attrs)
    fidelity = Fidelity.recorded(attrs)
    resolved = resolve_device(device)
    # the splits and the evaluator only when a re-score or the reference needs them (an exact study may not)
    splits = cache(lambda: study_splits(study, data_root))
    evaluator = cache(lambda: TrialEvaluator(splits(), resolved, fidelity=fidelity.exact_rescore(),
                                             seed=int(attrs["seed"]), oracle=bool(attrs["oracle"])))  # fmt: skip
    if fidelity.exact:
        results = {}
        scored = {t.number: {**t.user_attrs, metric: objectives(t)[1]} for t in choices}
    else:
        results = {t.number: evaluator().evaluate(trial_architecture(t)) for t in choices}
        scored = {number: result.metrics for number, result in results.items()}
    values = {number: metrics[metric] for number, metrics in scored.items()}
    errors = {number: metrics.get(metric + SE_SUFFIX) for number, metrics in scored.items()}
    chosen = select_lower_bound(choices, values, errors)
    if not reference or attrs["oracle"] or max_ms is not None:
        return Pick(chosen, chosen)
    known = study_reference(study, get_space(attrs["space"]).reference_encoder, splits, resolved)
    if metric not in known.metrics or (max_gflops is not None and known.gflops > max_gflops):
        return Pick(chosen, chosen)
    if chosen.number not in results:  # an exact study stores no resamples: score the pick once more for them
        results[chosen.number] = evaluator().evaluate(trial_architecture(chosen))
    margin = known.margin(metric, values[chosen.number], results[chosen.number].draws.get(metric))
    return Pick(chosen if margin > 0 else None, chosen, known, margin)


def export_trial(
    study: optuna.Study,
    trial: FrozenTrial,
    out: str | Path,
    *,
    coreset: float | None = None,
    bank_fraction: float = 1.0,
    normal_fpr: float = DEFAULT_NORMAL_FPR,
    data_root: str | Path | FolderDataset | None = None,
    device: str = "auto",
    batch_size: int = 32,
    progress: bool = False,
) -> ExportResult:
    """Fit `trial`'s architecture on the study's train split, thresholds on val, save to `out`, score on test.

    `data_root` (a root, or a `FolderDataset`) overrides the data the study recorded (e.g. the study was run on
    another machine).
    """
    check_output_file(out, "model file")
    attrs = study.user_attrs
    arch = trial_architecture(trial)
    splits = study_splits(study, data_root)
    encoder = create_encoder(arch.encoder, pretrained=True, **arch.encoder_config)
    segmenter = Segmenter(
        encoder, arch.block_ids, arch.patch_sizes, splits.image_size, coreset=coreset, bank_fraction=bank_fraction,
        device=device, seed=int(attrs["seed"]),
    )  # fmt: skip
    details = {"architecture_dict": arch.to_dict(), "trial": trial.number, "coreset": coreset,
               "bank_fraction": bank_fraction}  # fmt: skip
    return _fit_and_save(study, segmenter, splits, out, str(arch), details, normal_fpr, batch_size, progress)


def export_reference(
    study: optuna.Study,
    reference: Reference,
    out: str | Path,
    *,
    normal_fpr: float = DEFAULT_NORMAL_FPR,
    data_root: str | Path | FolderDataset | None = None,
    device: str = "auto",
    batch_size: int = 32,
    progress: bool = False,
) -> ExportResult:
    """Fit the study's reference model (`search.reference`) as it was scored (its coreset, the study's seed) on the
    study's train split, thresholds on val, save to `out`, score on test: what 'best' exports when no trial
    beats it."""
    check_output_file(out, "model file")
    splits = study_splits(study, data_root)
    segmenter = build_reference(reference.encoder, splits.image_size, device, int(study.user_attrs["seed"]))
    details = {"trial": None, "reference": True, "coreset": segmenter.coreset}
    return _fit_and_save(study, segmenter, splits, out, reference.architecture, details, normal_fpr, batch_size,
                         progress)  # fmt: skip


def _fit_and_save(
    study: optuna.Study,
    segmenter: Segmenter,
    splits: Splits,
    out: str | Path,
    architecture: str,
    details: dict[str, Any],
    normal_fpr: float,
    batch_size: int,
    progress: bool,
) -> ExportResult:
    evaluation = fit_and_evaluate(segmenter, splits, batch_size=batch_size, progress=progress, normal_fpr=normal_fpr)
    attrs = study.user_attrs
    segmenter.metadata = {
        "category": attrs["category"],
        "k": int(attrs["k"]),
        "architecture": architecture,
        **details,
        "study": study.study_name,
        "train_images": len(splits.train),
        "val": evaluation.val,
    }
    return ExportResult(
        path=segmenter.save(out), trial=details["trial"], architecture=architecture, val_threshold=evaluation.val,
        test_metrics=evaluation.test,
    )
