"""Is a low pick the rule's fault or the search's? The test value of every candidate `export --trial best` weighs.

For every k-search study in `--studies` (the Test' searches are skipped), the candidates of `best` (the front and
the default architectures, `search.pareto.candidates`) are re-scored exactly on the study's validation split (the
study's bank fraction, every query, no projection), as `best` re-scores them, and each is re-fitted with a seeded
10 % bank and scored on the test split. Per study it prints each candidate's exact validation objective (rwAP, or
image AP in a search without masks), its bootstrap standard error and its test value, then the test value of the
lower-bound pick (before any comparison with the PatchCore reference) beside the best candidate's by test: the most
any rule choosing among these candidates could reach. Writes JSON.

    python benchmarks/candidate_tests.py --studies runs/syn224k1
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

import optuna
from optuna.trial import TrialState

from autopatch.files import write_text
from autopatch.metrics import SE_SUFFIX
from autopatch.search import Fidelity, TrialEvaluator
from autopatch.search.export import export_trial, study_splits, trial_architecture
from autopatch.search.names import objective_metric
from autopatch.search.pareto import candidates, select_lower_bound


def candidate_tests(study: optuna.Study) -> dict[str, object]:
    """Each candidate's exact validation objective (rwAP, or image AP without masks) with its standard error and its
    test value; the lower-bound pick's number."""
    attrs = study.user_attrs
    metric = objective_metric(attrs)
    evaluator = TrialEvaluator(study_splits(study), "cpu", fidelity=Fidelity.recorded(attrs).exact_rescore(),
                               seed=int(attrs["seed"]))  # fmt: skip
    choices = candidates(study.get_trials(deepcopy=False))
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for trial in choices:
            metrics = evaluator.evaluate(trial_architecture(trial)).metrics
            exported = export_trial(study, trial, Path(folder) / "model.pt", bank_fraction=0.1)
            rows.append({"trial": trial.number, "gflops": trial.values[0], "architecture": exported.architecture,
                         "val": metrics[metric], "val_se": metrics[metric + SE_SUFFIX],
                         "test": exported.test_metrics[metric]})  # fmt: skip
            print(f"  {rows[-1]}", flush=True)
    pick = select_lower_bound(choices, {row["trial"]: row["val"] for row in rows},
                              {row["trial"]: row["val_se"] for row in rows})  # fmt: skip
    best = max(rows, key=lambda row: row["test"])
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return {"study": study.study_name, "dataset": attrs["category"], "objective": metric, "trials": len(complete),
            "pick": pick.number, "pick_test": next(row["test"] for row in rows if row["trial"] == pick.number),
            "best": best["trial"], "best_test": best["test"], "candidates": rows}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=Path, required=True, help="a folder of study databases (*.db)")
    parser.add_argument("--json", type=Path, default=Path("runs/bench/candidate_tests.json"))
    args = parser.parse_args()
    paths = sorted(args.studies.glob("*.db"))
    if not paths:
        parser.error(f"--studies {args.studies} holds no study database (*.db); give the --out of a search run")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    studies = []
    for path in paths:
        storage = f"sqlite:///{path}"
        for summary in optuna.get_all_study_summaries(storage, include_best_trial=False):
            study = optuna.load_study(study_name=summary.study_name, storage=storage)
            if not study.user_attrs.get("oracle"):
                print(study.study_name, flush=True)
                studies.append(candidate_tests(study))
    print(f"\n{'study':<36}{'trials':>7}{'candidates':>11}{'pick':>6}{'test':>7}{'best':>6}{'test':>7}")
    for row in studies:
        print(f"{row['study']:<36}{row['trials']:>7}{len(row['candidates']):>11}{row['pick']:>6}"
              f"{100 * row['pick_test']:>7.1f}{row['best']:>6}{100 * row['best_test']:>7.1f}")  # fmt: skip
    for dataset in dict.fromkeys(row["dataset"] for row in studies):
        picks = [100 * row["pick_test"] for row in studies if row["dataset"] == dataset]
        bests = [100 * row["best_test"] for row in studies if row["dataset"] == dataset]
        print(f"{dataset}: lower-bound pick {statistics.mean(picks):.1f}, best candidate by test "
              f"{statistics.mean(bests):.1f} (test %, mean over {len(picks)} studies)")  # fmt: skip
    args.json.parent.mkdir(parents=True, exist_ok=True)
    write_text(args.json, json.dumps({"studies": str(args.studies), "rows": studies}, indent=1) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
