"""Argument types and printing shared by several sub-commands."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autopatch.device import DEVICE_CHOICES
from autopatch.errors import AutopatchError
from autopatch.search.fidelity import DEFAULT_FIDELITY, FIDELITIES, Fidelity

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial

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


def add_data(parser: argparse.ArgumentParser, category_help: str) -> None:
    """The data of `fit` / `evaluate`: DATA_ROOT with --category (MVTec layout), or a folder dataset."""
    parser.add_argument("data_root", type=Path, nargs="?", default=None,
                        help="folder that contains the category folder (MVTec layout); or use --normal-dir")
    parser.add_argument("--category", default=None, help=category_help)
    add_folder_dataset(parser)


def add_folder_dataset(parser: argparse.ArgumentParser) -> None:
    """--normal-dir, --abnormal-dir, --mask-dir, --normal-test-dir: a folder dataset instead of DATA_ROOT."""
    folders = parser.add_argument_group("a folder dataset instead of DATA_ROOT (anomalib's Folder layout)")
    folders.add_argument("--normal-dir", type=Path, default=None, help="images of good parts")
    folders.add_argument("--abnormal-dir", type=Path, default=None,
                         help="images of rejected parts; its sub-folders are defect types")
    folders.add_argument("--mask-dir", type=Path, default=None,
                         help="defect masks named <image stem>.png or <stem>_mask.png (flat or per type)")
    folders.add_argument("--normal-test-dir", type=Path, default=None,
                         help="good parts for the test split (default: the last fifth of --normal-dir)")  # fmt: skip


def data_source(args: argparse.Namespace) -> Any:
    """DATA_ROOT, or the FolderDataset the folder options describe; one error line when both or neither."""
    folders = folder_dataset(args)
    if args.data_root is not None and folders is not None:
        raise AutopatchError("give DATA_ROOT (MVTec layout) or --normal-dir/--abnormal-dir, not both")
    if args.data_root is None and folders is None:
        raise AutopatchError("no data: give DATA_ROOT --category C, or --normal-dir DIR --abnormal-dir DIR")
    return args.data_root if folders is None else folders


def folder_dataset(args: argparse.Namespace) -> Any:
    """The FolderDataset the folder options describe, or None when none is given; one error line for half of one."""
    from autopatch.data import FolderDataset

    if not any((args.normal_dir, args.abnormal_dir, args.mask_dir, args.normal_test_dir)):
        return None
    if args.normal_dir is None or args.abnormal_dir is None:
        raise AutopatchError("a folder dataset needs both --normal-dir DIR and --abnormal-dir DIR")
    return FolderDataset(args.normal_dir, args.abnormal_dir, args.mask_dir, args.normal_test_dir)


def add_image_size(parser: argparse.ArgumentParser, default: int, resize: bool = True) -> None:
    """--image-size (S or HEIGHTxWIDTH; checked by `autopatch.image_size`) and, where the data is read, --resize."""
    parser.add_argument("--image-size", default=default,
                        help=f"input size: S for S x S, or HEIGHTxWIDTH such as 224x560 (default {default})")
    if resize:
        from autopatch.image_size import RESIZE_MODES

        parser.add_argument("--resize", choices=RESIZE_MODES, default="stretch",
                            help="stretch to the size (default), or keep-aspect: --image-size is the shorter side, "
                            "the longer one follows the first train image rounded to a multiple of 16")  # fmt: skip


def add_fidelity(parser: argparse.ArgumentParser, bank_fraction_help: str) -> None:
    """--fidelity (how search trials score validation) and --bank-fraction (replaces the fidelity's)."""
    presets = "; ".join(f"{name}: {fidelity.describe()}" for name, fidelity in FIDELITIES.items())
    parser.add_argument("--fidelity", choices=tuple(FIDELITIES), default=DEFAULT_FIDELITY,
                        help=f"how search trials score validation ({presets})")  # fmt: skip
    parser.add_argument("--bank-fraction", type=float, default=None, help=bank_fraction_help)


SYNTHETIC_KINDS = ("draem", "cutpaste", "nsa", "mix")  # data.synthetic.KIND_CHOICES, spelled here so --help is light


def add_synthetic_kind(parser: argparse.ArgumentParser, option: str, help_text: str) -> None:
    parser.add_argument(option, default="mix", choices=SYNTHETIC_KINDS, help=help_text)


def print_front(study: optuna.Study, trials: Sequence[FrozenTrial], max_gflops: float | None = None) -> None:
    """What `search` and `pareto` print of a study: its front and default architectures, how its trials were
    scored (and that `export` re-scores when they were not exact), how noisy its validation is, and the reference
    model `export --trial best` compares its pick with."""
    from autopatch.search import candidates, front_table, noise_summary, pareto_front, reference_summary
    from autopatch.search.names import objective_label, objective_metric

    attrs = study.user_attrs
    label, metric = objective_label(attrs), objective_metric(attrs)
    front = pareto_front(trials, max_gflops)
    print(f"Pareto front ({len(front)} of {len(trials)} trials; * a default architecture, listed when off the front):")
    print(front_table(candidates(trials, max_gflops), label, metric))
    fidelity = Fidelity.recorded(dict(attrs))
    note = "" if fidelity.exact else "; export --trial best re-scores the front exactly"
    print(f"trials scored at {fidelity.describe()}{note}")
    for line in (noise_summary(front, metric, label), reference_summary(dict(attrs), metric, label)):
        if line is not None:
            print(line)


def add_normal_fpr(parser: argparse.ArgumentParser) -> None:
    """--normal-fpr, for the sub-commands that choose an image threshold."""
    parser.add_argument("--normal-fpr", type=float, default=0.01,
                        help="image threshold when validation has no anomaly: at most this fraction of the "
                        "holdout normals is NG")  # fmt: skip


def print_pixel_threshold(val: Mapping[str, Any]) -> None:
    """The pixel threshold line of `fit` and `export` (none for data without masks)."""
    if val["threshold"] is None:
        print("threshold    -  (no masks: image-level decisions only)")
    else:
        print(f"threshold    {val['threshold']:.6g}  (val F1 {val['f1']:.4f}, precision {val['precision']:.4f}, "
              f"recall {val['recall']:.4f})")


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
