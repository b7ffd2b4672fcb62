"""A search with no real defect: k=0 + synthetic validation anomalies, on the README's 128 px protocol.

Per dataset and seed: `run_search(k=K, synthetic=N)` (K=0 unless `--k`; 25 trials, the `--fidelity` preset,
`fast` unless given, with a 10 % bank), `export` of its best (re-fitted with the 10 % random bank, thresholds on
that validation), scored on the same test split as the README's k=1 table (test normals and each type's
anomalies from index 4 on). Prints a table (mean ± std of test rwAP over seeds) and writes JSON. The studies are
kept under `--out`, so `benchmarks/selection_signals.py --studies <out>` gives the rank agreement of synthetic
validation with Test'.

    python benchmarks/synthetic_search.py
    python benchmarks/synthetic_search.py --k 1 --datasets magnetic_tile   # real and synthetic anomalies
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import autopatch
from autopatch.files import write_text

DATASETS = (("../shared/data/mvtec_bottle", "bottle"), ("../shared/data/magnetic_tile", "magnetic_tile"),
            ("examples/data/hazelnut_toy", "hazelnut_toy"))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=0, help="real anomalies per defect type beside the synthetic ones")
    parser.add_argument("--datasets", nargs="+", default=[category for _, category in DATASETS])
    parser.add_argument("--synthetic", type=int, default=16)
    parser.add_argument("--kind", default="mix")
    parser.add_argument("--trials", type=int, default=25)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--fidelity", default="fast", help="the trials' fidelity preset: fast (the default) or full")
    parser.add_argument("--out", type=Path, default=Path("runs/synthetic"))
    parser.add_argument("--json", type=Path, default=Path("runs/bench/synthetic_search.json"))
    args = parser.parse_args()
    rows = []
    for root, category in (dataset for dataset in DATASETS if dataset[1] in args.datasets):
        for seed in args.seeds:
            start = time.perf_counter()
            found = autopatch.run_search(root, category, k=args.k, synthetic=args.synthetic, synthetic_kind=args.kind,
                                         trials=args.trials, seed=seed, image_size=args.image_size,
                                         fidelity=args.fidelity, bank_fraction=0.1, out=args.out,
                                         progress=False)  # fmt: skip
            exported = autopatch.export(found, args.out / f"{found.study_name}.pt", bank_fraction=0.1)
            rows.append({"dataset": category, "seed": seed, "trial": exported.trial,
                         "architecture": exported.architecture, "test_rwap": exported.test_metrics["rwap"],
                         "test_image_auroc": exported.test_metrics["image_auroc"],
                         "seconds": time.perf_counter() - start})  # fmt: skip
            print(rows[-1], flush=True)
    print(f"\nk={args.k} + {args.synthetic} synthetic ({args.kind}), {args.trials} trials, {args.image_size} px, "
          f"{args.fidelity} fidelity, seeds {args.seeds}")
    for category in dict.fromkeys(row["dataset"] for row in rows):
        values = [100 * row["test_rwap"] for row in rows if row["dataset"] == category]
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        print(f"{category:<16} test rwAP {statistics.mean(values):.1f} ± {spread:.1f} %")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    write_text(args.json, json.dumps({"settings": vars(args) | {"out": str(args.out), "json": str(args.json)},
                                      "rows": rows}, indent=1) + "\n")  # fmt: skip
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
