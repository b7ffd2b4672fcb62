"""Search trial cost at a fidelity, and how well that fidelity ranks architectures against full fidelity.

The same 30 random `pretrained`-space architectures (optuna RandomSampler, seeded) are scored on the
validation split through the TrialEvaluator code path a study uses:

* `--build-reference` scores each at full fidelity (exact 1-NN, the whole bank, every query) and keeps the
  values (GFLOPs and validation metrics) in `benchmarks/reference/` (written after every architecture, so a
  stopped run resumes where it stopped; ~2 hours on a 2-core CPU at 224 px). That file is the reference for
  later changes.
* otherwise each is scored at `--fidelity` (default: the search's default) and timed: median seconds per
  trial and its phases, then Spearman's rho of validation rwAP against the reference over the architectures
  the reference holds, and whether the reference's top 5 are among this fidelity's top 8.

    python benchmarks/search.py --build-reference            # once, in the background
    python benchmarks/search.py --fidelity fast              # the table in the README
"""

from __future__ import annotations

import argparse
import json
import statistics
from dataclasses import replace
from pathlib import Path

import optuna
from scipy.stats import spearmanr

from autopatch.data import load_splits
from autopatch.features.cache import FeatureCache
from autopatch.files import write_text
from autopatch.search import DEFAULT_FIDELITY, FIDELITIES, Fidelity
from autopatch.search.evaluator import PHASES, TrialEvaluator
from autopatch.search.spaces import PretrainedSpace

REPO = Path(__file__).resolve().parents[1]
TOP, WITHIN = 5, 8  # the reference's top 5 must be among the fidelity's top 8


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO / ".." / "shared" / "data" / "mvtec_bottle")
    parser.add_argument("--category", default="bottle")
    parser.add_argument("--k", type=int, default=1)
    parser.add_argument("--trials", type=int, default=30, help="feasible architectures to score")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fidelity", choices=sorted(FIDELITIES), default=DEFAULT_FIDELITY)
    parser.add_argument("--bank-fraction", type=float, default=None, help="overrides the fidelity's bank fraction")
    parser.add_argument("--query-stride", type=int, default=None, help="overrides the fidelity's query stride")
    parser.add_argument("--projection", type=int, default=None, help="overrides the fidelity's projection (0: none)")
    parser.add_argument("--build-reference", action="store_true", help="score at full fidelity into --reference")
    parser.add_argument("--reference", type=Path, default=None,
                        help="default: benchmarks/reference/search_<category>_k<k>_<size>px.json")  # fmt: skip
    parser.add_argument("--json", type=Path, default=REPO / "runs" / "bench" / "search.json")
    args = parser.parse_args()
    if args.reference is None:
        name = f"search_{args.category}_k{args.k}_{args.image_size}px.json"
        args.reference = REPO / "benchmarks" / "reference" / name
    return args


def chosen_fidelity(args: argparse.Namespace) -> Fidelity:
    if args.build_reference:
        return FIDELITIES["full"]
    fidelity = FIDELITIES[args.fidelity].replace(bank_fraction=args.bank_fraction, query_stride=args.query_stride)
    if args.projection is not None:
        fidelity = replace(fidelity, projection=args.projection or None)
    return fidelity


def load_reference(args: argparse.Namespace) -> dict:
    if args.reference.is_file():
        reference = json.loads(args.reference.read_text())
        setup = {key: reference[key] for key in ("category", "k", "image_size", "seed")}
        if setup != {"category": args.category, "k": args.k, "image_size": args.image_size, "seed": args.seed}:
            raise SystemExit(f"{args.reference} was made with {setup}; pass another --reference")
        return reference
    return {"category": args.category, "k": args.k, "image_size": args.image_size, "seed": args.seed,
            "fidelity": FIDELITIES["full"].to_dict(), "architectures": {}}  # fmt: skip


def compare(reference: dict, runs: list[dict]) -> dict:
    """Spearman rho of val rwAP and the top-5-within-top-8 check over the architectures both hold."""
    held = [r for r in runs if r["architecture"] in reference["architectures"]]
    if len(held) < 3:
        return {"compared": len(held), "spearman_rho_rwap": float("nan"), "top5_within_top8": None}
    full = [reference["architectures"][r["architecture"]]["metrics"]["rwap"] for r in held]
    fast = [r["metrics"]["rwap"] for r in held]
    rank_full = sorted(range(len(held)), key=lambda i: -full[i])
    rank_fast = sorted(range(len(held)), key=lambda i: -fast[i])
    missing = [held[i]["architecture"] for i in rank_full[:TOP] if i not in rank_fast[:WITHIN]]
    return {"compared": len(held), "spearman_rho_rwap": float(spearmanr(full, fast).statistic),
            "top5_within_top8": not missing, "top5_missing": missing}  # fmt: skip


def main() -> None:
    args = parse_args()
    fidelity = chosen_fidelity(args)
    splits = load_splits(args.data, args.category, args.k, image_size=args.image_size)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    architectures = PretrainedSpace().sample(args.trials, args.seed)
    reference = load_reference(args)
    cache = FeatureCache()
    evaluator = TrialEvaluator(splits, device=args.device, fidelity=fidelity, seed=args.seed, cache=cache)
    fill_seconds = evaluator.warm_cache(sorted({a.encoder for a in architectures}))
    print(f"cache fill = one uncached encode of train ({len(splits.train)}) + val ({len(splits.val)}) images: "
          + ", ".join(f"{n} {s:.1f}s" for n, s in fill_seconds.items()))
    runs: list[dict] = []
    for index, arch in enumerate(architectures):
        if args.build_reference and str(arch) in reference["architectures"]:
            continue
        result = evaluator.evaluate(arch)
        run = {"architecture": str(arch), "gflops": result.gflops, "metrics": result.metrics,
               "timings": result.timings}  # fmt: skip
        runs.append(run)
        print(f"[{index + 1}/{len(architectures)}] {str(arch):<75} rwAP {result.metrics['rwap']:.4f} "
              f"in {result.timings['total']:.2f}s", flush=True)
        if args.build_reference:
            reference["architectures"][str(arch)] = {key: run[key] for key in ("gflops", "metrics")}
            args.reference.parent.mkdir(parents=True, exist_ok=True)
            write_text(args.reference, json.dumps(reference, indent=1) + "\n")
    if args.build_reference:
        print(f"{args.reference}: {len(reference['architectures'])} architectures at full fidelity")
        return
    medians = {phase: statistics.median(r["timings"][phase] for r in runs) for phase in (*PHASES, "total")}
    agreement = compare(reference, runs)
    print(f"\n{args.category} k={args.k}, {len(runs)} random pretrained-space architectures, {args.image_size} px, "
          f"device {args.device}, fidelity {args.fidelity} {fidelity.to_dict()}")
    print(" | ".join(f"{p:>8}" for p in (*PHASES, "total")) + "   (median s/trial)")
    print(" | ".join(f"{medians[p]:8.2f}" for p in (*PHASES, "total")))
    print(f"against full fidelity ({agreement['compared']} architectures in {args.reference.name}): Spearman rho "
          f"{agreement['spearman_rho_rwap']:.3f}; reference top {TOP} within top {WITHIN}: "
          f"{agreement['top5_within_top8']}")
    report = {"category": args.category, "k": args.k, "device": args.device, "image_size": args.image_size,
              "fidelity": fidelity.to_dict(), "median_seconds": medians, "cache_fill_seconds": fill_seconds,
              **agreement, "trials": runs}  # fmt: skip
    args.json.parent.mkdir(parents=True, exist_ok=True)
    write_text(args.json, json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
