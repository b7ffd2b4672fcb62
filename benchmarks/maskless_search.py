"""What a user without masks loses: magnetic_tile searched as a folder dataset with its masks withheld
(`--objective image-ap`) against the same search on rwAP with masks, k=1, the README's 128 px protocol.

The folder dataset holds exactly the MVTec splits' files (train/good as the normals, test/good as the test
normals, the defect-type folders as the rejects, linked from `--out`/rejects), so both searches see the same
images and differ only in the masks. Each search's best trial is exported (train split, the search's 10 %
random bank as in the README's re-fits, thresholds on validation) and scored on the MVTec test split with
masks: test image AUROC and pixel rwAP. Prints a table, writes JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import autopatch
from autopatch.data import NORMAL_TYPE
from autopatch.files import write_text

ROOT, CATEGORY = Path("../shared/data/magnetic_tile"), "magnetic_tile"
IMAGE_SIZE, BANK_FRACTION = 128, 0.1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=25)
    parser.add_argument("--synthetic", type=int, default=0,
                        help="synthetic validation anomalies (the search's default is 16; 0, this script's default: "
                        "the real anomalies only, as the README's figures)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--json", type=Path, default=Path("runs/bench/maskless_search.json"))
    parser.add_argument("--out", type=Path, default=Path("runs/maskless"))
    args = parser.parse_args()
    category = ROOT / CATEGORY
    rows = []
    # a fixed folder, not a temporary one: the folder study records where its rejects lie relative to its
    # normals, so the image-ap studies resume only from the same place
    rejects = args.out / "rejects"
    rejects.mkdir(parents=True, exist_ok=True)
    for folder in sorted((category / "test").iterdir()):
        if folder.is_dir() and folder.name != NORMAL_TYPE and not (rejects / folder.name).exists():
            (rejects / folder.name).symlink_to(folder.resolve(), target_is_directory=True)
    folders = autopatch.FolderDataset(category / "train" / "good", rejects,
                                      normal_test_dir=category / "test" / "good")  # fmt: skip
    for seed in args.seeds:
        for objective, data, name in (("rwap", ROOT, CATEGORY), ("image-ap", folders, None)):
            start = time.perf_counter()
            study = f"{CATEGORY}-{objective}-s{seed}"
            found = autopatch.run_search(data, name or CATEGORY, objective=objective, trials=args.trials,
                                         seed=seed, image_size=IMAGE_SIZE, bank_fraction=BANK_FRACTION,
                                         synthetic=args.synthetic, study=study, out=args.out,
                                         progress=False)  # fmt: skip
            exported = autopatch.export(found, args.out / f"{study}.pt", bank_fraction=BANK_FRACTION)
            test = autopatch.evaluate(exported.path, ROOT, category=CATEGORY)  # with masks
            rows.append({"objective": objective, "seed": seed, "trial": exported.trial,
                         "architecture": exported.architecture, "test_image_auroc": test["image_auroc"],
                         "test_rwap": test["rwap"], "seconds": time.perf_counter() - start})  # fmt: skip
            print(rows[-1], flush=True)
    print(f"\nmagnetic_tile, k=1, {args.trials} trials, {IMAGE_SIZE} px, bank fraction {BANK_FRACTION}, "
          f"seeds {args.seeds}")
    print(f"{'searched on':<26} {'test image AUROC %':>19} {'test rwAP %':>12}")
    for objective, label in (("rwap", "rwAP (with masks)"), ("image-ap", "image AP (masks withheld)")):
        mine = [r for r in rows if r["objective"] == objective]

        def spread(key: str, mine: list = mine) -> str:
            values = [100 * r[key] for r in mine]
            std = statistics.stdev(values) if len(values) > 1 else 0.0
            return f"{statistics.mean(values):.1f} ± {std:.1f}"

        print(f"{label:<26} {spread('test_image_auroc'):>19} {spread('test_rwap'):>12}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    write_text(args.json, json.dumps({"trials": args.trials, "image_size": IMAGE_SIZE, "rows": rows}, indent=1) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
