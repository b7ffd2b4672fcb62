"""Memory bank benchmark: exact 1-NN GFLOP/s (ours vs plain faiss IndexFlatL2) and coreset time.

Bottle-sized problems: bank 189 x R^2 patches (189 training images at feature map R x R), queries
71 x R^2, R in {28, 56}, dims {64, 256}. Effective GFLOP/s = 2 * Q * M * C / seconds. The full
problems are tens of TFLOP, so by default only the first ``--max-queries`` query rows are searched
(throughput per query is uniform; both contenders get the same rows). ``--big`` instead runs the
0.6 M x 500 bank with 0.25 M queries and reports the peak RSS against the 8 GiB budget.

Coreset: 189 x 56^2 x 128 random bank at each ``--coreset-fractions``; baseline is the reference's
schedule (every anchor updated every step), timed for ``--dense-steps`` steps and extrapolated.

    python benchmarks/memory_bank.py [--device cpu|cuda] [--max-queries 2048] [--repeats 1] [--big] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import faiss
import numpy as np
import torch

from autopatch.bank import MemoryBank
from autopatch.bank.coreset import greedy_kcenter, starting_points

TRAIN_IMAGES, TEST_IMAGES = 189, 71


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_knn(m: int, q: int, c: int, args: argparse.Namespace) -> dict:
    """One problem: our MemoryBank.nearest vs faiss IndexFlatL2.search on identical data."""
    generator = torch.Generator().manual_seed(0)
    bank = torch.randn(m, c, generator=generator)
    queries = torch.randn(q, c, generator=generator)
    flop = 2.0 * q * m * c

    index = faiss.IndexFlatL2(c)
    index.add(bank.numpy())
    device = torch.device(args.device)
    ours = MemoryBank(device=device, precision=args.precision).fit(bank)
    queries_dev = queries.to(device)
    faiss_s = ours_s = float("inf")
    for _ in range(args.repeats):  # interleaved, best of N: the machine may be shared
        start = time.perf_counter()
        faiss_dist, _ = index.search(queries.numpy(), 1)
        faiss_s = min(faiss_s, time.perf_counter() - start)
        _sync(device)
        start = time.perf_counter()
        ours_dist = ours.nearest(queries_dev)
        _sync(device)
        ours_s = min(ours_s, time.perf_counter() - start)
    max_rel = float(np.max(np.abs(ours_dist.cpu().numpy() - faiss_dist[:, 0]) / np.maximum(faiss_dist[:, 0], 1e-6)))
    return {
        "bank": m,
        "queries": q,
        "dim": c,
        "backend": ours.backend,
        "ours_s": ours_s,
        "faiss_s": faiss_s,
        "ours_gflops": flop / ours_s / 1e9,
        "faiss_gflops": flop / faiss_s / 1e9,
        "ratio": faiss_s / ours_s,
        "max_rel_diff": max_rel,
    }


def time_coreset(fraction: float, args: argparse.Namespace) -> dict:
    device = torch.device(args.device)
    points = torch.randn(TRAIN_IMAGES * 56 * 56, 128, generator=torch.Generator().manual_seed(1)).to(device)
    n_select = int(len(points) * fraction)
    starts = starting_points(len(points), 10, seed=0)
    _sync(device)
    start = time.perf_counter()
    greedy_kcenter(points, n_select, starts, progress=True)
    _sync(device)
    ours_s = time.perf_counter() - start
    steps = min(args.dense_steps, n_select)
    start = time.perf_counter()
    greedy_kcenter(points, steps, starts, lazy=False)
    _sync(device)
    dense_s = (time.perf_counter() - start) * n_select / steps
    return {"bank": len(points), "dim": 128, "fraction": fraction, "selected": n_select,
            "ours_s": ours_s, "dense_s_extrapolated": dense_s, "ratio": dense_s / ours_s}


def run_big(args: argparse.Namespace) -> dict:
    """0.6 M x 500 bank, 0.25 M queries: peak resident memory must stay under 8 GiB."""
    generator = torch.Generator().manual_seed(0)
    bank = torch.randn(600_000, 500, generator=generator)
    queries = torch.randn(250_000, 500, generator=generator)
    searched = queries if args.max_queries == 0 else queries[: args.max_queries]
    ours = MemoryBank(device=args.device, precision=args.precision).fit(bank)
    start = time.perf_counter()
    ours.nearest(searched)
    seconds = time.perf_counter() - start
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # ru_maxrss is KiB on Linux
    return {"bank": 600_000, "dim": 500, "queries_held": 250_000, "queries_searched": len(searched),
            "seconds": seconds, "gflops": 2.0 * len(searched) * 600_000 * 500 / seconds / 1e9,
            "peak_rss_gib": peak_gib, "under_8_gib": peak_gib < 8.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "tf32", "bf16"])
    parser.add_argument("--max-queries", type=int, default=2048, help="query rows searched per problem; 0 = all")
    parser.add_argument("--repeats", type=int, default=1, help="best of N interleaved 1-NN timings")
    parser.add_argument("--coreset-fractions", type=float, nargs="*", default=[0.1, 0.01])
    parser.add_argument("--dense-steps", type=int, default=100, help="steps timed for the dense coreset baseline")
    parser.add_argument("--big", action="store_true", help="only the 0.6M x 500 bank / 0.25M query memory run")
    parser.add_argument("--json", type=Path, default=Path("runs/bench/memory_bank.json"))
    args = parser.parse_args()
    result: dict = {"device": args.device, "precision": args.precision, "repeats": args.repeats,
                    "torch_threads": torch.get_num_threads(), "faiss_threads": faiss.omp_get_max_threads()}

    if args.big:
        big = run_big(args)
        result["big"] = big
        print(f"big: bank 600000x500, {big['queries_searched']} of 250000 queries searched in {big['seconds']:.1f} s "
              f"({big['gflops']:.1f} GFLOP/s), peak RSS {big['peak_rss_gib']:.2f} GiB (< 8 GiB: {big['under_8_gib']})")
    else:
        rows = []
        print(f"{'bank':>8} {'queries':>8} {'dim':>4} {'backend':>7} {'ours GFLOP/s':>13} {'faiss GFLOP/s':>14} "
              f"{'ours/faiss':>10} {'max rel diff':>12}")
        for res in (28, 56):
            for dim in (64, 256):
                total_q = TEST_IMAGES * res * res
                q = total_q if args.max_queries == 0 else min(total_q, args.max_queries)
                row = time_knn(TRAIN_IMAGES * res * res, q, dim, args)
                row["queries_total"] = total_q
                rows.append(row)
                print(f"{row['bank']:>8} {q:>8} {dim:>4} {row['backend']:>7} {row['ours_gflops']:>13.1f} "
                      f"{row['faiss_gflops']:>14.1f} {row['ratio']:>10.2f} {row['max_rel_diff']:>12.1e}", flush=True)
        result["knn"] = rows
        coreset_rows = []
        print(f"\n{'coreset bank':>12} {'fraction':>8} {'selected':>8} {'ours s':>8} "
              f"{'dense s (extrap.)':>17} {'speed-up':>8}")
        for fraction in args.coreset_fractions:
            row = time_coreset(fraction, args)
            coreset_rows.append(row)
            print(f"{row['bank']:>12} {fraction:>8} {row['selected']:>8} {row['ours_s']:>8.1f} "
                  f"{row['dense_s_extrapolated']:>17.1f} {row['ratio']:>8.2f}", flush=True)
        result["coreset"] = coreset_rows

    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
