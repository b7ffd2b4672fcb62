"""Argument types and printing shared by several sub-commands."""

from __future__ import annotations

import argparse
from collections.abc import Mapping

from autopatch.device import DEVICE_CHOICES

METRIC_ROWS = (
    ("rwAP", "rwap"),
    ("AP", "ap"),
    ("AUROC", "auroc"),
    ("AUROC@0.3", "pauroc_0.3"),
    ("AUPRO@0.3", "aupro_0.3"),
    ("threshold", "threshold"),
    ("F1", "f1"),
    ("precision", "precision"),
    ("recall", "recall"),
    ("image-AUROC", "image_auroc"),
    ("image-AP", "image_ap"),
    ("image-F1max", "image_f1_max"),
    ("image-thr", "image_threshold"),
    ("image-F1", "image_f1"),
    ("image-FPR", "image_fpr"),
    ("GFLOPs", "gflops"),
    ("images/s", "images_per_s"),
)


def add_device(parser: argparse.ArgumentParser) -> None:
    """--device, the same for every sub-command that runs a model."""
    parser.add_argument("--device", choices=DEVICE_CHOICES, default="auto",
                        help="where models run: auto picks cuda when a GPU is there, else cpu")  # fmt: skip


def add_batch_size(parser: argparse.ArgumentParser) -> None:
    """--batch-size, the same for every sub-command that encodes images."""
    parser.add_argument("--batch-size", type=int, default=32, help="images encoded at once; lower it if out of memory")


def add_normal_fpr(parser: argparse.ArgumentParser) -> None:
    """--normal-fpr, for the sub-commands that choose an image threshold."""
    parser.add_argument("--normal-fpr", type=float, default=0.01,
                        help="image threshold when validation has no anomaly: at most this fraction of the "
                        "holdout normals is NG")  # fmt: skip


def print_image_threshold(val: Mapping[str, object]) -> None:
    """The image (OK/NG) threshold line of `fit` and `export`."""
    print(f"image thr    {format_value(val['image_threshold'])}  ({val['image_threshold_rule']})")


def int_list(text: str) -> list[int]:
    """'5,9' -> [5, 9], for --blocks, --patch-sizes, --k, --seeds and --layers."""
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of integers, e.g. 5,9") from None
    if not values:
        raise argparse.ArgumentTypeError("give at least one integer, e.g. 5,9")
    return values


def format_value(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 10 else f"{value:.6g}"
    return str(value)


def print_metrics(metrics: Mapping[str, object], indent: str = "") -> None:
    """The test-split table of `evaluate`, `baseline` and `export`: one metric per line."""
    for label, key in METRIC_ROWS:
        print(f"{indent}{label:<11} {format_value(metrics[key])}")
