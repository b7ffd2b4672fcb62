"""How well each validation signal ranks architectures: Spearman ρ against Test' rwAP over all trials of a study.

For every k-search study an `autopatch experiment` run (or `benchmarks/synthetic_search.py`) left in `--studies`
(the Test' searches are skipped), every complete trial's architecture is scored on the Test' split (the test
anomalies, as the oracle search scores them) at the study's own fidelity and seed, and each validation metric the
trial stored (rwAP, AP, AUROC, AUROC@0.3, AUPRO@0.3, image AP, image AUROC, and rwAP minus its bootstrap
standard error) is rank-correlated with that Test' rwAP. Prints, per dataset, ρ as mean ± std over the studies
(seeds), and writes JSON.

A study whose validation holds real and synthetic anomalies also gets rwap_real and rwap_synthetic: each trial
re-scored on the validation normals with only the real, or only the synthetic, anomalies (the same trials, so the
three ρ compare like with like). `--cv-folds K` adds rwap_cv, cross-validation over the normals: the study's
train and validation normals are pooled and split at random (seeded by the study) into K folds; fold f's normals
and the study's validation anomalies are scored by a bank fitted on the other folds, and rwap_cv is the mean of
the K folds' rwAP. The JSON keeps every trial's signals and Test' rwAP (`per_trial`).

`--cv-pick` asks what that signal would change in the pick: the candidates of `export --trial best` (front and
default architectures) are re-scored exactly (the study's bank fraction, every query, no projection) on the
study's validation split and on the K folds; the lower-bound rule picks once from each (the folds' values and
bootstrap draws averaged), and the highest pixel AUROC on the validation split is a third pick; each is re-fitted
with a seeded 10 % bank and scored on the test split, before any comparison with the PatchCore reference.

    python benchmarks/selection_signals.py --studies runs/select128/studies
    python benchmarks/selection_signals.py --studies runs/synthetic_k1 --cv-folds 3 --cv-pick
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

import numpy as np
import optuna
import torch
from optuna.trial import TrialState
from scipy.stats import spearmanr

from autopatch.data import NORMAL_TYPE, Split, Splits
from autopatch.data.synthetic import SYNTHETIC_TYPE_PREFIX
from autopatch.files import write_text
from autopatch.metrics import standard_errors
from autopatch.search import Fidelity, TrialEvaluator
from autopatch.search.definition import REUSES_ATTR
from autopatch.search.export import export_trial, study_splits, trial_architecture
from autopatch.search.pareto import candidates, select_lower_bound

PICK_RULES = ("lower_bound", "cv", "auroc")
SIGNALS = ("rwap", "ap", "auroc", "pauroc_0.3", "aupro_0.3", "image_ap", "image_auroc", "rwap_lcb")


def signal(trial: optuna.trial.FrozenTrial, name: str) -> float:
    """A stored validation metric, or rwap_lcb: rwAP minus its bootstrap standard error (a lower bound)."""
    if name == "rwap_lcb":
        return trial.user_attrs["rwap"] - trial.user_attrs["rwap_se"]
    return trial.user_attrs[name]


def _subset(split: Split, indices: list[int]) -> Split:
    return Split(split.images[indices], split.masks[indices], [split.types[i] for i in indices],
                 [split.paths[i] for i in indices], split.pixel_labels)  # fmt: skip


def _concat(first: Split, second: Split) -> Split:
    return Split(torch.cat([first.images, second.images]), torch.cat([first.masks, second.masks]),
                 first.types + second.types, first.paths + second.paths, first.pixel_labels)  # fmt: skip


def cv_splits(splits: Splits, folds: int, seed: int) -> list[Splits]:
    """Per fold: the pooled normals outside the fold as train, the fold's normals and the validation anomalies
    (real and synthetic) as validation."""
    val_normals = [i for i, anomalous in enumerate(splits.val.is_anomalous) if not anomalous]
    anomalies = _subset(splits.val, [i for i, anomalous in enumerate(splits.val.is_anomalous) if anomalous])
    pooled = _concat(splits.train, _subset(splits.val, val_normals))
    order = np.random.default_rng(seed).permutation(len(pooled))
    chunks = [sorted(chunk.tolist()) for chunk in np.array_split(order, folds)]
    return [
        Splits(_subset(pooled, sorted(set(range(len(pooled))) - set(chunk))),
               _concat(_subset(pooled, chunk), anomalies), splits.test)
        for chunk in chunks
    ]  # fmt: skip


def anomaly_subsets(splits: Splits) -> dict[str, Splits]:
    """The validation normals with only the real anomalies (rwap_real), or only the synthetic ones
    (rwap_synthetic); none unless the validation holds both."""
    kinds = [None if t == NORMAL_TYPE else t.startswith(SYNTHETIC_TYPE_PREFIX) for t in splits.val.types]
    if True not in kinds or False not in kinds:
        return {}
    return {
        name: Splits(splits.train, _subset(splits.val, [i for i, kind in enumerate(kinds) if kind in (None, keep)]),
                     splits.test)
        for name, keep in (("rwap_real", False), ("rwap_synthetic", True))
    }  # fmt: skip


def study_rhos(study: optuna.Study, cv_folds: int = 0) -> dict[str, float]:
    """ρ of each validation signal against Test' rwAP over the study's complete (not reused) trials."""
    attrs = study.user_attrs
    fidelity, seed = Fidelity.recorded(attrs), int(attrs["seed"])
    splits = study_splits(study, oracle=True)  # the study's own train and validation splits, its Test' anomalies
    evaluator = TrialEvaluator(splits, "cpu", fidelity=fidelity, seed=seed, oracle=True)
    trials = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
              if REUSES_ATTR not in t.user_attrs]  # fmt: skip
    archs = [trial_architecture(t) for t in trials]
    test = [evaluator.evaluate(arch).metrics["rwap"] for arch in archs]
    signals = {name: [signal(t, name) for t in trials] for name in SIGNALS}
    variants = {name: [subset] for name, subset in anomaly_subsets(splits).items()}
    if cv_folds:
        variants["rwap_cv"] = cv_splits(splits, cv_folds, seed)
    for name, variant in variants.items():  # re-scored validations: the mean rwAP over the variant's splits
        scored = []
        for variant_splits in variant:
            variant_evaluator = TrialEvaluator(variant_splits, "cpu", fidelity=fidelity, seed=seed)
            scored.append([variant_evaluator.evaluate(arch).metrics["rwap"] for arch in archs])
        signals[name] = np.mean(scored, axis=0).tolist()
    rhos = {name: float(spearmanr(values, test)[0]) for name, values in signals.items()}
    per_trial = [{"number": t.number, "gflops": t.user_attrs["gflops"], "test_rwap": value,
                  **{name: values[i] for name, values in signals.items()}}
                 for i, (t, value) in enumerate(zip(trials, test, strict=True))]  # fmt: skip
    return {**rhos, "trials": len(trials), "per_trial": per_trial}


def cv_pick(study: optuna.Study, folds: int) -> dict[str, float | int]:
    """Test rwAP of the lower-bound pick among the candidates, re-scored exactly on the validation split, of the
    same rule on the mean over `folds` folds of the normals, and of the highest validation pixel AUROC."""
    attrs = study.user_attrs
    exact, seed = Fidelity.recorded(attrs).exact_rescore(), int(attrs["seed"])
    splits = study_splits(study)
    choices = candidates(study.get_trials(deepcopy=False))
    archs = {t.number: trial_architecture(t) for t in choices}
    single = TrialEvaluator(splits, "cpu", fidelity=exact, seed=seed)
    scored = {number: single.evaluate(arch).metrics for number, arch in archs.items()}
    fold_draws: dict[int, list[list[float]]] = {number: [] for number in archs}
    for fold in cv_splits(splits, folds, seed):
        evaluator = TrialEvaluator(fold, "cpu", fidelity=exact, seed=seed)
        for number, arch in archs.items():
            result = evaluator.evaluate(arch)
            fold_draws[number].append([result.metrics["rwap"], *result.draws["rwap"]])
    means = {number: np.mean(draws, axis=0) for number, draws in fold_draws.items()}
    picks = {
        "lower_bound": select_lower_bound(choices, {n: m["rwap"] for n, m in scored.items()},
                                          {n: m["rwap_se"] for n, m in scored.items()}),
        "cv": select_lower_bound(choices, {n: float(m[0]) for n, m in means.items()},
                                 {n: standard_errors({"rwap": m[1:]})["rwap_se"] for n, m in means.items()}),
        "auroc": select_lower_bound(choices, {n: m["auroc"] for n, m in scored.items()}),
    }  # fmt: skip
    row: dict[str, float | int] = {"candidates": len(choices)}
    with tempfile.TemporaryDirectory() as folder:
        for rule, trial in picks.items():
            exported = export_trial(study, trial, Path(folder) / f"{rule}.pt", bank_fraction=0.1)
            row |= {f"{rule}_trial": trial.number, f"{rule}_test_rwap": exported.test_metrics["rwap"]}
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=Path, default=Path("runs/select128/studies"))
    parser.add_argument("--cv-folds", type=int, default=0, help="add rwap_cv over this many folds (0: none)")
    parser.add_argument("--cv-pick", action="store_true", help="also the pick by the --cv-folds validation")
    parser.add_argument("--json", type=Path, default=Path("runs/bench/selection_signals.json"))
    args = parser.parse_args()
    if args.cv_folds == 1 or args.cv_folds < 0 or (args.cv_pick and not args.cv_folds):
        parser.error(f"--cv-folds must be 0 or at least 2 (and at least 2 with --cv-pick), got {args.cv_folds}")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rows = []
    for path in sorted(args.studies.glob("*.db")):
        storage = f"sqlite:///{path}"
        for summary in optuna.get_all_study_summaries(storage, include_best_trial=False):
            study = optuna.load_study(study_name=summary.study_name, storage=storage)
            if study.user_attrs.get("oracle"):
                continue
            rhos = study_rhos(study, args.cv_folds)
            row = {"study": study.study_name, "dataset": study.user_attrs["category"], **rhos}
            if args.cv_pick:
                row["pick"] = cv_pick(study, args.cv_folds)
            rows.append(row)
            print({key: value for key, value in row.items() if key != "per_trial"}, flush=True)
    datasets = list(dict.fromkeys(row["dataset"] for row in rows))
    print("\nSpearman ρ of each validation signal against Test' rwAP over each study's trials, mean ± std over seeds")
    print(f"{'signal':<12}" + "".join(f"{dataset:>22}" for dataset in datasets))
    not_signals = {"study", "dataset", "trials", "per_trial", "pick"}
    names = dict.fromkeys(name for row in rows for name in row if name not in not_signals)
    for name in names:
        cells = []
        for dataset in datasets:
            values = [row[name] for row in rows if row["dataset"] == dataset and name in row]
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            cells.append(f"{statistics.mean(values):+.2f} ± {spread:.2f} (n={len(values)})" if values else "-")
        print(f"{name:<12}" + "".join(f"{cell:>22}" for cell in cells))
    if args.cv_pick:
        print(f"\nTest rwAP % of the pick among the exactly re-scored candidates, per seed: {' vs '.join(PICK_RULES)}")
        for dataset in datasets:
            picks = [row["pick"] for row in rows if row["dataset"] == dataset]
            cells = [" / ".join(f"{100 * pick[f'{rule}_test_rwap']:.1f}" for pick in picks) for rule in PICK_RULES]
            print(f"{dataset:<16}" + "".join(f"{cell:>24}" for cell in cells))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    write_text(args.json, json.dumps({"studies": rows}, indent=1) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
