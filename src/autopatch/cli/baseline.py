"""`autopatch baseline`: PatchCore on a registry encoder, fit and scored on AutoPatch's splits."""

from __future__ import annotations

import argparse
from pathlib import Path

from autopatch.cli.common import (
    add_batch_size,
    add_data,
    add_device,
    add_image_size,
    data_source,
    int_list,
    print_metrics,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "baseline",
        help="PatchCore baseline on a category: same metrics table as `evaluate`",
        description="Fits PatchCore (two layers, 3x3 neighbourhoods, 1024-d embedding, greedy coreset, 1-NN, "
        "Gaussian sigma 4) on the train split with plain resize (no crop), picks the pixel threshold on the "
        "validation split and prints the test-split metrics, encoder GFLOPs and images/s.",
    )
    add_data(parser, "category folder name, e.g. bottle (with DATA_ROOT)")
    parser.add_argument("--backbone", required=True, help="encoder registry name, e.g. wide_resnet50_2")
    parser.add_argument(
        "--layers", type=int_list, default=None,
        help="block ids to extract (default: last block of the stride-8 and stride-16 stages; WRN-50-2: 2,3)",
    )  # fmt: skip
    parser.add_argument("--coreset", type=float, default=0.1, help="greedy coreset fraction (PatchCore: 0.1 or 0.01)")
    parser.add_argument("--k", type=int, default=1, help="anomalous images per defect type in the val split")
    add_image_size(parser, 224)
    add_device(parser)
    parser.add_argument("--weights", default=None, help="local encoder checkpoint instead of the download")
    add_batch_size(parser)
    parser.add_argument("--out", type=Path, default=None, help="also save the fitted model file here")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from autopatch.api import run_baseline

    result = run_baseline(
        data_source(args), args.category, args.backbone, layers=args.layers, coreset=args.coreset, k=args.k,
        image_size=args.image_size, resize=args.resize, device=args.device, weights=args.weights,
        batch_size=args.batch_size, out=args.out, progress=True,
    )  # fmt: skip
    if args.out is not None:
        print(f"model      {args.out}")
    print(f"{result.segmenter.metadata['architecture']}")
    print(f"{result.segmenter.metadata['category']} test split, {result.metrics['images']} images, k={args.k}")
    print_metrics(result.metrics)
    return 0
