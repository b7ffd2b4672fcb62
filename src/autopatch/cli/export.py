"""`autopatch export`: refit a study's chosen trial into the model file `predict`/`evaluate` use."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from autopatch.cli.common import (
    add_batch_size,
    add_device,
    add_folder_dataset,
    add_normal_fpr,
    folder_dataset,
    print_image_threshold,
    print_metrics,
    print_pixel_threshold,
)
from autopatch.cli.convert import CONVERT_FORMATS, CONVERT_PRECISIONS
from autopatch.cli.pareto import add_study_arguments
from autopatch.errors import AutopatchError

if TYPE_CHECKING:
    from autopatch.data import FolderDataset
    from autopatch.search import ExportResult


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export",
        help="refit a study's trial on the train split and save it as a model file",
        description="Refits the chosen trial's architecture on the train split (full bank, or --coreset, or "
        "--bank-fraction), "
        "picks the pixel and image (OK/NG) thresholds on the validation split, saves the model to --out and prints its "
        "test-split metrics.",
    )
    add_study_arguments(parser)
    parser.add_argument("--trial", default="best",
                        help="trial number, or 'best' (highest val objective minus its standard error, if it beats the "
                        "study's reference model; default)")
    parser.add_argument("--max-gflops", type=float, default=None, help="with 'best': best within this budget")
    parser.add_argument("--no-reference", dest="reference", action="store_false",
                        help="with 'best': pick among the trials only, never the study's reference PatchCore model "
                        "(by default it is exported unless the pick beats it on validation by more than the "
                        "standard error of the difference)")
    parser.add_argument("--max-ms", type=float, default=None,
                        help="with 'best' after a --cost latency search: best within this measured latency")
    parser.add_argument("--coreset", type=float, default=None, help="greedy coreset fraction of the bank, e.g. 0.1")
    parser.add_argument("--bank-fraction", type=float, default=1.0,
                        help="random fraction of the bank to keep (seeded by the study's seed), as in search")
    add_normal_fpr(parser)
    parser.add_argument("--data", type=Path, default=None, help="data root, if not where the study recorded it")
    add_folder_dataset(parser)  # or the folders, if a folder dataset's are elsewhere now
    add_device(parser)
    add_batch_size(parser)
    parser.add_argument("--format", default="torch", choices=("torch", *CONVERT_FORMATS),
                        help="torch: the .pt model file; onnx or openvino: also that runtime's file, converted from "
                        "the .pt written beside it (as `autopatch convert`)")
    parser.add_argument("--precision", default="fp32", choices=CONVERT_PRECISIONS,
                        help="with --format onnx|openvino: how weights and memory bank are stored")
    parser.add_argument("--out", required=True, type=Path,
                        help="file to write: model.pt, or model.onnx / model.xml with --format")
    parser.set_defaults(run=run)


def print_export(result: ExportResult) -> None:
    print(f"model        {result.path}")
    if result.converted is not None:
        print(f"converted    {result.converted} (checked against the model's maps on probe images)")
    pick = result.pick
    if result.trial is None:
        print(f"trial        none: the study's reference model, {result.architecture}")
    else:
        print(f"trial        {result.trial}: {result.architecture}")
    if pick is not None and pick.reference is not None:
        verdict = "beats it" if pick.trial is not None else "does not beat it"
        print(f"reference    {pick.reference.architecture}: the best trial ({pick.candidate.number}) {verdict} on "
              f"validation (its lead less the standard error of the difference: {pick.margin:+.4f})")
    print_pixel_threshold(result.val_threshold)
    print_image_threshold(result.val_threshold)
    print(f"test split, {result.test_metrics['images']} images:")
    print_metrics(result.test_metrics, indent="  ")


def moved_data(args: argparse.Namespace) -> Path | FolderDataset | None:
    """--data or the folder options: where the study's data is now (None: where the study recorded it)."""
    folders = folder_dataset(args)
    if args.data is not None and folders is not None:
        raise AutopatchError("give --data (MVTec layout) or --normal-dir/--abnormal-dir, not both")
    return args.data if folders is None else folders


def run(args: argparse.Namespace) -> int:
    from autopatch.api import export, load_study

    study = load_study(args.study, storage=args.storage, runs=args.runs)
    result = export(
        study, args.out, trial=args.trial, max_gflops=args.max_gflops, max_ms=args.max_ms, coreset=args.coreset,
        bank_fraction=args.bank_fraction, normal_fpr=args.normal_fpr, data_root=moved_data(args), device=args.device,
        batch_size=args.batch_size, progress=True, format=args.format, precision=args.precision,
        reference=args.reference,
    )
    print_export(result)
    return 0
