"""Turn a trial of a study into the deployable model file: refit its architecture on the train split.

Search trials may score at a lower fidelity (`search.fidelity`); the exported model always starts from
the full train bank (optionally greedy-coreset subsampled), picks its pixel threshold on the validation
split and reports test-split metrics, so the user sees what the file will do, not what the trial scored.
`best_trial` re-scores the candidates exactly when the study used a query stride or a projection, so those
never decide the pick by themselves, and picks by a lower confidence bound, so the noise is in view.
"""

from __future__ import annotations

from dataclasses import dataclass
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
from autopatch.segmenter import Segmenter, fit_and_evaluate


@dataclass(frozen=True)
class ExportResult:
    path: Path
    trial: int
    architecture: str
    val_threshold: dict[str, Any]
    test_metrics: dict[str, Any]
    converted: Path | None = None  # the file for another runtime made from `path` (`autopatch export --format`)


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


def best_trial(
    study: optuna.Study,
    max_gflops: float | None = None,
    data_root: str | Path | FolderDataset | None = None,
    device: str = "auto",
    max_ms: float | None = None,
) -> FrozenTrial:
    """'best': among the front and the default architectures within `max_gflops` and `max_ms` of measured latency
    (`search.pareto.candidates`),
    the highest validation objective minus its bootstrap standard error (`search.pareto.select_lower_bound`).
    When the study's trials queried a stride or a projection, every candidate is first re-scored at full
    fidelity but for the study's bank fraction (exact 1-NN, every query), and those values and their standard
    errors decide."""
    attrs = study.user_attrs
    trials = study.get_trials(deepcopy=False)
    choices = candidates(trials, max_gflops, max_ms)
    if not choices:
        return select_trial(trials, "best", max_gflops, max_ms)  # its one-line error
    metric = objective_metric(attrs)
    fidelity = Fidelity.recorded(attrs)
    if fidelity.exact:
        scored = {t.number: {**t.user_attrs, metric: objectives(t)[1]} for t in choices}
    else:
        evaluator = TrialEvaluator(
            study_splits(study, data_root), resolve_device(device), fidelity=Fidelity(fidelity.bank_fraction),
            seed=int(attrs["seed"]), oracle=bool(attrs["oracle"]),
        )  # fmt: skip
        scored = {t.number: evaluator.evaluate(trial_architecture(t)).metrics for t in choices}
    values = {number: metrics[metric] for number, metrics in scored.items()}
    errors = {number: metrics.get(metric + SE_SUFFIX) for number, metrics in scored.items()}
    return select_lower_bound(choices, values, errors)


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
    evaluation = fit_and_evaluate(segmenter, splits, batch_size=batch_size, progress=progress, normal_fpr=normal_fpr)
    segmenter.metadata = {
        "category": attrs["category"],
        "k": int(attrs["k"]),
        "architecture": str(arch),
        "architecture_dict": arch.to_dict(),
        "study": study.study_name,
        "trial": trial.number,
        "coreset": coreset,
        "bank_fraction": bank_fraction,
        "train_images": len(splits.train),
        "val": evaluation.val,
    }
    return ExportResult(
        path=segmenter.save(out), trial=trial.number, architecture=str(arch), val_threshold=evaluation.val,
        test_metrics=evaluation.test,
    )
