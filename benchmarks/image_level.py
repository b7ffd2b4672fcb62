"""Image-level scores of the README's chosen models: image AUROC / AP and the OK/NG decision on test.

Re-fits every k=1 architecture of docs/results/table6_architectures.csv (the README's 128 px run: bank a
seeded random 10 % of the train patches, thresholds on the k=1 validation split) and PatchCore-Lite0 on each
dataset, then scores the test split. The re-fit's test rwAP is printed beside the table's, which checks that
the models are the README's. Prints a table, writes JSON.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
from pathlib import Path

import autopatch

TABLE = Path(__file__).resolve().parents[1] / "docs" / "results" / "table6_architectures.csv"
ROOTS = {"bottle": "../shared/data/mvtec_bottle", "magnetic_tile": "../shared/data/magnetic_tile",
         "hazelnut_toy": "examples/data/hazelnut_toy"}  # fmt: skip
IMAGE_SIZE, BANK_FRACTION = 128, 0.1
KEYS = ("rwap", "image_auroc", "image_ap", "image_f1", "image_fpr")


def blocks_and_patch_sizes(architecture: str) -> tuple[str, list[int], list[int]]:
    """'efficientnet_lite0 | B2;P10;W24 | B3;P1;W40' -> ('efficientnet_lite0', [2, 3], [10, 1])."""
    encoder, *stages = (part.strip() for part in architecture.split("|"))
    fields = [dict((item[0], int(item[1:])) for item in stage.split(";")) for stage in stages]
    return encoder, [f["B"] for f in fields], [f["P"] for f in fields]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=Path("runs/bench/image_level.json"))
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    with TABLE.open(newline="", encoding="utf-8") as handle:
        chosen = [row for row in csv.DictReader(handle) if row["method"] == "k=1"]
    rows = []
    for row in chosen:
        encoder, blocks, sizes = blocks_and_patch_sizes(row["architecture"])
        root = ROOTS[row["dataset"]]
        model = autopatch.fit(root, row["dataset"], encoder, blocks, sizes, image_size=IMAGE_SIZE,
                              bank_fraction=BANK_FRACTION, seed=int(row["seed"]), device=args.device)  # fmt: skip
        metrics = autopatch.evaluate(model, root, device=args.device)
        rows.append({"dataset": row["dataset"], "method": "k=1", "seed": row["seed"],
                     "table_rwap": float(row["test_rwap_pct"]) / 100, **{k: metrics[k] for k in KEYS}})  # fmt: skip
    for dataset, root in ROOTS.items():
        result = autopatch.run_baseline(root, dataset, "efficientnet_lite0", image_size=IMAGE_SIZE, device=args.device)
        rows.append({"dataset": dataset, "method": "PatchCore-Lite0", "seed": "", "table_rwap": None,
                     **{k: result.metrics[k] for k in KEYS}})  # fmt: skip

    print(f"{'dataset':<14} {'method':<16} {'seed':>4} {'rwAP (table)':>13} {'rwAP':>6} {'imgAUROC':>8} "
          f"{'imgAP':>6} {'imgF1':>6} {'imgFPR':>6}")  # fmt: skip
    for r in rows:
        table = "-" if r["table_rwap"] is None else f"{100 * r['table_rwap']:.1f}"
        print(f"{r['dataset']:<14} {r['method']:<16} {r['seed']:>4} {table:>13} {100 * r['rwap']:>6.1f} "
              f"{100 * r['image_auroc']:>8.1f} {100 * r['image_ap']:>6.1f} {100 * r['image_f1']:>6.1f} "
              f"{100 * r['image_fpr']:>6.1f}")  # fmt: skip
    print("\nmean image AUROC % over seeds (k=1) vs PatchCore-Lite0:")
    for dataset in ROOTS:
        ours = [r["image_auroc"] for r in rows if r["dataset"] == dataset and r["method"] == "k=1"]
        base = next(r["image_auroc"] for r in rows if r["dataset"] == dataset and r["method"] != "k=1")
        print(f"  {dataset:<14} {100 * statistics.mean(ours):.1f} ± {100 * statistics.stdev(ours):.1f} "
              f"vs {100 * base:.1f}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"image_size": IMAGE_SIZE, "bank_fraction": BANK_FRACTION, "rows": rows}, indent=1))
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
