"""How well each validation signal ranks architectures: Spearman ρ against Test' rwAP over all trials of a study.

For every k-search study an `autopatch experiment` run (or `benchmarks/synthetic_search.py`) left in `--studies`
(the Test' searches are skipped), every complete trial's architecture is scored on the Test' split (the test
anomalies, as the oracle search scores them) at the study's own fidelity and seed, and each validation metric the
trial stored (rwAP, AP, AUROC, AUROC@0.3, AUPRO@0.3, image AP, image AUROC, and rwAP minus its bootstrap
standard error) is rank-correlated with that Test' rwAP. Prints, per dataset, ρ as mean ± std over the studies
(seeds), and writes JSON.

    python benchmarks/selection_signals.py --studies runs/select128/studies
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import optuna
from optuna.trial import TrialState
from scipy.stats import spearmanr

from autopatch.files import write_text
from autopatch.search import Fidelity, TrialEvaluator
from autopatch.search.definition import REUSES_ATTR
from autopatch.search.export import study_splits, trial_architecture

SIGNALS = ("rwap", "ap", "auroc", "pauroc_0.3", "aupro_0.3", "image_ap", "image_auroc", "rwap_lcb")


def signal(trial: optuna.trial.FrozenTrial, name: str) -> float:
    """A stored validation metric, or rwap_lcb: rwAP minus its bootstrap standard error (a lower bound)."""
    if name == "rwap_lcb":
        return trial.user_attrs["rwap"] - trial.user_attrs["rwap_se"]
    return trial.user_attrs[name]


def study_rhos(study: optuna.Study) -> dict[str, float]:
    """ρ of each validation signal against Test' rwAP over the study's complete (not reused) trials."""
    attrs = study.user_attrs
    splits = study_splits(study, oracle=True)  # the study's own train split, its Test' anomalies
    evaluator = TrialEvaluator(splits, "cpu", fidelity=Fidelity.recorded(attrs), seed=int(attrs["seed"]), oracle=True)
    trials = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
              if REUSES_ATTR not in t.user_attrs]  # fmt: skip
    test = [evaluator.evaluate(trial_architecture(t)).metrics["rwap"] for t in trials]
    rhos = {name: float(spearmanr([signal(t, name) for t in trials], test)[0]) for name in SIGNALS}
    return {**rhos, "trials": len(trials)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=Path, default=Path("runs/select128/studies"))
    parser.add_argument("--json", type=Path, default=Path("runs/bench/selection_signals.json"))
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rows = []
    for path in sorted(args.studies.glob("*.db")):
        storage = f"sqlite:///{path}"
        for summary in optuna.get_all_study_summaries(storage, include_best_trial=False):
            study = optuna.load_study(study_name=summary.study_name, storage=storage)
            if study.user_attrs.get("oracle"):
                continue
            row = {"study": study.study_name, "dataset": study.user_attrs["category"], **study_rhos(study)}
            rows.append(row)
            print(row, flush=True)
    datasets = list(dict.fromkeys(row["dataset"] for row in rows))
    print("\nSpearman ρ of each validation signal against Test' rwAP over each study's trials, mean ± std over seeds")
    print(f"{'signal':<12}" + "".join(f"{dataset:>22}" for dataset in datasets))
    for name in SIGNALS:
        cells = []
        for dataset in datasets:
            values = [row[name] for row in rows if row["dataset"] == dataset]
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            cells.append(f"{statistics.mean(values):+.2f} ± {spread:.2f} (n={len(values)})")
        print(f"{name:<12}" + "".join(f"{cell:>22}" for cell in cells))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    write_text(args.json, json.dumps({"studies": rows}, indent=1) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
