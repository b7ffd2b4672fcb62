"""Time all five segmentation metrics (one shared sort) against scikit-learn on bottle-like data.

Data: N images of S x S (default 150 of 224, like a bottle val/test split): a third normal, the rest spread
over three defect types with 1-3 round blobs each; scores are a 28 x 28 noise map upsampled bilinearly (as a
patch-level anomaly map is) plus a blurred defect signal, float32. scikit-learn computes rwAP (given our
rwAP pixel weights as sample_weight, not timed), AP, AUROC and pAUROC; it has no AUPRO.

    python benchmarks/metrics.py [--images 150] [--size 224] [--repeats 3] [--json runs/bench/metrics.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import sklearn
from scipy import ndimage
from sklearn.metrics import average_precision_score, roc_auc_score

from autopatch.metrics import rwap_pixel_weights, segmentation_metrics

DEFECT_TYPES = ("broken_large", "broken_small", "contamination")


def bottle_like(images: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    masks = np.zeros((images, size, size), dtype=bool)
    types = []
    for image in range(images):
        kind = "good" if image < images // 3 else DEFECT_TYPES[image % 3]
        types.append(kind)
        if kind != "good":
            for _ in range(rng.integers(1, 4)):
                cy, cx = rng.integers(size // 8, size - size // 8, 2)
                radius = rng.integers(max(2, size // 64), max(3, size // 8))
                masks[image] |= (yy - cy) ** 2 + (xx - cx) ** 2 < radius**2
    coarse = rng.normal(size=(images, 28, 28))
    noise = ndimage.zoom(coarse, (1, size / 28, size / 28), order=1)
    signal = ndimage.gaussian_filter(masks.astype(np.float64), (0, size / 64, size / 64))
    return (noise + 2.0 * signal).astype(np.float32), masks, types


def best_time(run: Callable[[], object], repeats: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=150)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=3, help="best of this many runs is reported")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=Path("runs/bench/metrics.json"))
    args = parser.parse_args()

    scores, masks, types = bottle_like(args.images, args.size, args.seed)
    y_true, y_score = masks.ravel(), scores.ravel()
    weights = rwap_pixel_weights(masks, types).ravel()

    ours_seconds, ours = best_time(lambda: segmentation_metrics(scores, masks, types), args.repeats)
    sklearn_calls = {
        "rwap": lambda: average_precision_score(y_true, y_score, sample_weight=weights),
        "ap": lambda: average_precision_score(y_true, y_score),
        "auroc": lambda: roc_auc_score(y_true, y_score),
        "pauroc_0.3": lambda: roc_auc_score(y_true, y_score, max_fpr=0.3),
    }
    sklearn_seconds, sklearn_values = {}, {}
    for name, call in sklearn_calls.items():
        sklearn_seconds[name], value = best_time(call, args.repeats)
        sklearn_values[name] = float(value)
    sklearn_total = sum(sklearn_seconds.values())

    print(f"{args.images} images {args.size}x{args.size} ({masks.size:,} pixels, {masks.mean():.2%} anomalous), "
          f"best of {args.repeats}, {os.cpu_count()} CPUs")
    print(f"{'metric':<12}{'autopatch':>12}{'sklearn':>12}{'|diff|':>10}{'sklearn s':>11}")
    for name, value in ours.items():
        if name in sklearn_values:
            print(f"{name:<12}{value:>12.6f}{sklearn_values[name]:>12.6f}"
                  f"{abs(value - sklearn_values[name]):>10.1e}{sklearn_seconds[name]:>11.3f}")
        else:
            print(f"{name:<12}{value:>12.6f}{'n/a':>12}{'':>10}{'n/a':>11}  (scikit-learn has no AUPRO)")
    ratio = sklearn_total / ours_seconds
    print(f"time: autopatch all five {ours_seconds:.3f} s | sklearn four {sklearn_total:.3f} s | "
          f"sklearn / autopatch = {ratio:.1f}x")

    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "benchmark": "metrics",
        "images": args.images,
        "size": args.size,
        "repeats": args.repeats,
        "seed": args.seed,
        "anomalous_fraction": float(masks.mean()),
        "cpus": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
        "numpy": np.__version__,
        "sklearn": sklearn.__version__,
        "autopatch_seconds_all_five": ours_seconds,
        "sklearn_seconds": sklearn_seconds,
        "sklearn_seconds_total_four": sklearn_total,
        "ratio_sklearn_over_autopatch": ratio,
        "autopatch_values": ours,
        "sklearn_values": sklearn_values,
    }, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
