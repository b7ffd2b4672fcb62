"""Which pick holds on test: selection rules compared on an experiment run's own searches and cached re-fits.

For every k-search of a finished `autopatch experiment` run (its `results.json` names the settings), the
candidates (the validation front and the default architectures) are read with their exact validation rwAP, its
bootstrap standard error and their test rwAP from the run's re-fit cache (nothing is re-fitted), and each rule
picks one. Rules, none with a constant tuned here:

- highest: the highest validation rwAP (the pick before the noise was in view);
- keep default: the highest, unless a default architecture lies within one standard error of it (then the
  default with the highest value);
- lower bound: the highest validation rwAP minus its standard error (what autopatch shipped before the reference);
- over reference: the lower bound's pick, unless it does not beat the search's reference model (PatchCore on the
  space's smallest encoder, fitted on the same splits) by more than the standard error of the paired difference:
  then the reference (what autopatch ships, `search.reference`);
- unpaired: the same, but the pick must beat the reference's value with its own lower bound (no pairing);
- best default: the default architecture with the highest validation rwAP;
- oracle: the candidate with the highest test rwAP (what the candidates allow at best).

Prints per dataset the mean ± std over seeds of the picks' test rwAP, beside the run's baseline, and writes JSON.

    python benchmarks/selection_rules.py --run runs/select128
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from autopatch.experiment.runner import ExperimentRunner, reference_model
from autopatch.experiment.settings import ExperimentSettings
from autopatch.files import write_text
from autopatch.search.definition import DEFAULT_ATTR
from autopatch.search.pareto import candidates, objectives, pareto_front, select_lower_bound
from autopatch.search.reference import Reference

RULES = ("highest", "keep default", "lower bound", "over reference", "unpaired", "best default", "oracle",
         "reference")


def picks(front, choices, refits, known: Reference) -> tuple[dict[str, int | None], float]:
    """Trial number each rule picks (None: the reference model), and the lower bound's margin over the reference."""
    value = {n: r["val_metrics"]["rwap"] for n, r in refits.items()}
    error = {n: r["val_metrics"]["rwap_se"] for n, r in refits.items()}
    defaults = [t for t in choices if t.user_attrs.get(DEFAULT_ATTR)]
    test = {n: r["metrics"]["rwap"] for n, r in refits.items()}
    highest = select_lower_bound(front, value)
    close = [t for t in defaults if value[t.number] >= value[highest.number] - error[highest.number]]
    bound = select_lower_bound(choices, value, error)
    margin = known.margin("rwap", value[bound.number], refits[bound.number]["val_draws"].get("rwap"))
    clears = value[bound.number] - error[bound.number] > known.metrics["rwap"]
    return {
        "highest": highest.number,
        "keep default": select_lower_bound(close, value).number if close else highest.number,
        "lower bound": bound.number,
        "over reference": bound.number if margin > 0 else None,
        "unpaired": bound.number if clears else None,
        "best default": select_lower_bound(defaults, value).number,
        "oracle": max(choices, key=lambda t: (test[t.number], -objectives(t)[0])).number,
        "reference": None,
    }, margin


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=Path("runs/select128"))
    parser.add_argument("--json", type=Path, default=Path("runs/bench/selection_rules.json"))
    args = parser.parse_args()
    recorded = json.loads((args.run / "results.json").read_text(encoding="utf-8"))
    fields = {key: tuple(value) if isinstance(value, list) else value for key, value in recorded["settings"].items()}
    runner = ExperimentRunner(ExperimentSettings(**{**fields, "folders": None}))
    baseline = {r["dataset"]: r["metrics"]["rwap"] for r in recorded["records"] if r["method"] == "baseline"}
    rows = []
    for dataset in runner.datasets:
        for spec in runner.settings.searches():
            if spec.oracle:
                continue
            study = runner._study(dataset, spec)  # finished: reused, not searched again
            trials = study.get_trials(deepcopy=False)
            front, choices = pareto_front(trials), candidates(trials)
            refits = {t.number: runner._refit(dataset, spec, study.study_name, t) for t in choices}
            reference = runner._reference(dataset, spec)
            chosen, margin = picks(front, choices, refits, reference_model(reference))
            test = {rule: (reference if number is None else refits[number])["metrics"]["rwap"]
                    for rule, number in chosen.items()}  # fmt: skip
            picked = {rule: number for rule, number in chosen.items() if rule != "reference"}
            rows.append({"dataset": dataset.label, "seed": spec.seed, "k": spec.k, **test, "picked": picked,
                         "margin_over_reference": margin})  # fmt: skip
    print(f"test rwAP % of each rule's pick, mean ± std over seeds ({args.run})")
    print(f"{'dataset':<15}" + "".join(f"{rule:>16}" for rule in RULES) + f"{'baseline':>10}")
    for label in dict.fromkeys(row["dataset"] for row in rows):
        cells = []
        for rule in RULES:
            values = [100 * row[rule] for row in rows if row["dataset"] == label]
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            cells.append(f"{statistics.mean(values):.1f} ± {spread:.1f}")
        print(f"{label:<15}" + "".join(f"{cell:>16}" for cell in cells) + f"{100 * baseline.get(label, 0):>10.1f}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    write_text(args.json, json.dumps({"run": str(args.run), "rows": rows, "baseline": baseline}, indent=1) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
