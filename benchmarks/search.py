"""Search trial cost and fidelity: random `pretrained`-space architectures scored at two bank fractions.

For each architecture (optuna RandomSampler, seeded) the same TrialEvaluator code path a study uses
scores the validation split at bank fraction 1.0 (the paper; the baseline) and at a lower fraction
(default 0.1). Reported: median seconds per trial and its phase breakdown at each fraction, the speed
ratio, Spearman's rho between the two fractions' val rwAP, and the feature-cache fill (one-off encode
per encoder and split, and its memory). Trials run in pairs so a `--max-minutes` cut still leaves
matched pairs for rho.

    python benchmarks/search.py --trials 30 --data ../shared/data/mvtec_bottle --category bottle --k 1
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import optuna
from scipy.stats import spearmanr

from autopatch.data import load_splits
from autopatch.features.cache import FeatureCache
from autopatch.search.evaluator import PHASES, TrialEvaluator
from autopatch.search.spaces import PretrainedSpace

REPO = Path(__file__).resolve().parents[1]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO / ".." / "shared" / "data" / "mvtec_bottle")
    parser.add_argument("--category", default="bottle")
    parser.add_argument("--k", type=int, default=1)
    parser.add_argument("--trials", type=int, default=30, help="feasible architectures to score")
    parser.add_argument("--fraction", type=float, default=0.1, help="the low-fidelity bank fraction")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-minutes", type=float, default=None, help="start no new pair after this")
    parser.add_argument("--low-only", action="store_true", help="time only the low fidelity (no baseline, no rho)")
    parser.add_argument("--json", type=Path, default=REPO / "runs" / "bench" / "search.json")
    return parser.parse_args()


def sample_architectures(n: int, seed: int) -> list:
    """n feasible architectures from the pretrained space; trials selecting no block are skipped."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    space = PretrainedSpace()
    found = []
    while len(found) < n:
        arch = space.suggest(study.ask())
        if arch is not None:
            found.append(arch)
    return found


def summarize(results: list[dict]) -> dict[str, float]:
    return {phase: statistics.median(r["timings"][phase] for r in results) for phase in (*PHASES, "total")}


def spearman_rho(full: list[dict], low: list[dict]) -> float:
    if len(full) < 3:
        return float("nan")
    return float(spearmanr([r["metrics"]["rwap"] for r in full], [r["metrics"]["rwap"] for r in low]).statistic)


def print_table(args: argparse.Namespace, medians: dict[float, dict[str, float]], rho: float, pairs: int) -> None:
    print(f"\n{args.category} k={args.k}, {pairs} random pretrained-space architectures, "
          f"device {args.device}, image {args.image_size} px")
    print(f"{'bank fraction':>14} | " + " | ".join(f"{p:>9}" for p in (*PHASES, "total")) + "   (median s/trial)")
    for fraction, median in medians.items():
        print(f"{fraction:>14} | " + " | ".join(f"{median[p]:9.2f}" for p in (*PHASES, "total")))
    if len(medians) == 2:
        low = medians[args.fraction]["total"]
        print(f"F={args.fraction} vs the F=1.0 baseline: {medians[1.0]['total'] / low:.1f}x faster; "
              f"Spearman rho of val rwAP: {rho:.3f}")
        print(f"targets: F={args.fraction} <= 10 s/trial median: {'met' if low <= 10 else 'NOT met'}; "
              f"rho >= 0.9: {'met' if rho >= 0.9 else 'NOT met'}")


def main() -> None:
    args = parse_args()
    splits = load_splits(args.data, args.category, args.k, image_size=args.image_size)
    architectures = sample_architectures(args.trials, args.seed)
    cache = FeatureCache()
    fractions = (args.fraction,) if args.low_only else (1.0, args.fraction)
    evaluators = {
        f: TrialEvaluator(splits, device=args.device, bank_fraction=f, seed=args.seed, cache=cache) for f in fractions
    }
    fill_seconds = evaluators[args.fraction].warm_cache(sorted({a.encoder for a in architectures}))
    print(f"cache fill = one uncached encode of train ({len(splits.train)}) + val ({len(splits.val)}) images: "
          + ", ".join(f"{n} {s:.1f}s" for n, s in fill_seconds.items())
          + f"; {cache.nbytes / 2**20:.0f} MiB as float16 ({2 * cache.nbytes / 2**20:.0f} MiB as float32)")

    runs: dict[float, list[dict]] = {f: [] for f in fractions}
    start = time.perf_counter()
    for index, arch in enumerate(architectures):
        if args.max_minutes is not None and time.perf_counter() - start > 60 * args.max_minutes:
            print(f"stopping after {index} pairs: --max-minutes {args.max_minutes} reached")
            break
        for fraction in sorted(fractions):  # cheap one first
            result = evaluators[fraction].evaluate(arch)
            runs[fraction].append({"architecture": str(arch), "arch": arch.to_dict(), "gflops": result.gflops,
                                   "metrics": result.metrics, "timings": result.timings})
        line = " | ".join(
            f"F={f}: rwAP {runs[f][-1]['metrics']['rwap']:.4f} in {runs[f][-1]['timings']['total']:.1f}s"
            for f in fractions
        )
        print(f"[{index + 1}/{len(architectures)}] {str(arch):<60} {line}", flush=True)

    pairs = len(runs[args.fraction])
    rho = float("nan") if args.low_only else spearman_rho(runs[1.0], runs[args.fraction])
    medians = {f: summarize(runs[f]) for f in fractions if runs[f]}
    print_table(args, medians, rho, pairs)
    report = {
        "category": args.category, "k": args.k, "device": args.device, "image_size": args.image_size,
        "pairs": pairs, "fractions": list(fractions), "spearman_rho_rwap": rho,
        "median_seconds": {str(f): m for f, m in medians.items()},
        "cache_fill_seconds": fill_seconds, "cache_bytes_float16": cache.nbytes,
        "trials": {str(f): r for f, r in runs.items()},
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
