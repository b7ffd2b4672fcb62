"""A whole search at a fidelity, end to end: search, exact pick, re-fit, test rwAP, per seed, with wall times.

Per seed: `run_search` at `--fidelity` (resumed if its study exists), `best_trial` (the front re-scored exactly
when the fidelity is not; the study's reference PatchCore unless the pick beats it), then `export_trial` (or
`export_reference`) re-fits the pick with `--refit-fraction` of the bank (seeded by the study's seed, as the
experiment's re-fits) and scores it on the test split. Prints a table and the mean
± std of the test rwAP, and writes JSON.

    python benchmarks/search_end_to_end.py --trials 50 --seeds 0,1,2     # bottle, k=1, 224 px, fast
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import autopatch
from autopatch.files import write_text
from autopatch.search import DEFAULT_FIDELITY, FIDELITIES, best_trial, export_reference, export_trial

REPO = Path(__file__).resolve().parents[1]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO / ".." / "shared" / "data" / "mvtec_bottle")
    parser.add_argument("--category", default="bottle")
    parser.add_argument("--k", type=int, default=1)
    parser.add_argument("--synthetic", type=int, default=0,
                        help="synthetic validation anomalies (the search's default is 16; 0, this script's default: "
                        "the real anomalies only, as the README's figures)")
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--fidelity", choices=sorted(FIDELITIES), default=DEFAULT_FIDELITY)
    parser.add_argument("--refit-fraction", type=float, default=0.1, help="bank fraction of the re-fitted pick")
    parser.add_argument("--no-reference", dest="reference", action="store_false",
                        help="pick among the trials only, as `export --no-reference`")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "bench" / "end_to_end")
    parser.add_argument("--json", type=Path, default=REPO / "runs" / "bench" / "search_end_to_end.json")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    rows = []
    for seed in (int(s) for s in args.seeds.split(",")):
        start = time.perf_counter()
        found = autopatch.run_search(args.data, args.category, trials=args.trials, k=args.k, seed=seed,
                                     synthetic=args.synthetic, image_size=args.image_size, fidelity=args.fidelity,
                                     space="pretrained", out=args.out / args.fidelity, device=args.device,
                                     progress=False)  # fmt: skip
        searched = time.perf_counter()
        pick = best_trial(found.study, device=args.device, reference=args.reference)
        picked = time.perf_counter()
        model = args.out / args.fidelity / f"{found.study_name}.pt"
        if pick.trial is None:
            result = export_reference(found.study, pick.reference, model, device=args.device)
        else:
            result = export_trial(found.study, pick.trial, model, bank_fraction=args.refit_fraction, device=args.device)
        done = time.perf_counter()
        trial_seconds = [t.user_attrs["timings"]["total"] for t in found.study.trials if "timings" in t.user_attrs]
        rows.append({
            "seed": seed, "trial": result.trial, "architecture": result.architecture,
            "gflops": pick.reference.gflops if pick.trial is None else pick.trial.user_attrs["gflops"],
            "candidate": pick.candidate.number, "margin_over_reference": pick.margin,
            "test_rwap": result.test_metrics["rwap"], "search_s": searched - start, "pick_s": picked - searched,
            "refit_s": done - picked, "median_trial_s": statistics.median(trial_seconds) if trial_seconds else None,
        })  # fmt: skip
        row = rows[-1]
        shown = "none (reference)" if row["trial"] is None else row["trial"]
        print(f"seed {seed}: trial {shown} {row['architecture']} ({row['gflops']:.2f} GFLOPs) test rwAP "
              f"{row['test_rwap']:.4f}; search {row['search_s'] / 60:.1f} min (median trial "
              f"{row['median_trial_s']:.2f} s), pick {row['pick_s'] / 60:.1f} min, "
              f"re-fit {row['refit_s'] / 60:.1f} min", flush=True)  # fmt: skip
    test = [r["test_rwap"] for r in rows]
    spread = statistics.stdev(test) if len(test) > 1 else 0.0
    total = sum(r["search_s"] + r["pick_s"] + r["refit_s"] for r in rows)
    print(f"\n{args.category} k={args.k}, {args.image_size} px, {args.trials} trials per search at fidelity "
          f"{args.fidelity}, seeds {args.seeds}: test rwAP {100 * statistics.mean(test):.1f} ± {100 * spread:.1f} %, "
          f"{total / 60:.1f} min wall in all")  # fmt: skip
    args.json.parent.mkdir(parents=True, exist_ok=True)
    report = {"category": args.category, "k": args.k, "image_size": args.image_size, "trials": args.trials,
              "fidelity": FIDELITIES[args.fidelity].to_dict(), "refit_fraction": args.refit_fraction,
              "total_s": total, "seeds": rows}  # fmt: skip
    write_text(args.json, json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
