"""`autopatch evaluate`: a saved model's metrics on a category's test split, printed as a plain table."""

from __future__ import annotations

import argparse
from pathlib import Path

from autopatch.cli.common import add_batch_size, add_data, add_device, data_source, print_metrics


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="metrics of a saved model on a category's test split",
        description="Prints rwAP, AP, AUROC, AUROC@0.3, AUPRO@0.3 on the test split, F1/precision/recall at the "
        "model's stored threshold, encoder GFLOPs and end-to-end images/s (encode + 1-NN + upsample).",
    )
    parser.add_argument("model", type=Path, help="model file written by `autopatch fit`")
    add_data(parser, "category folder name (default: the one the model was fit on)")
    parser.add_argument("--k", type=int, default=None, help="shots of the split (default: the model's)")
    add_device(parser)
    add_batch_size(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from autopatch.api import evaluate

    result = evaluate(
        args.model, data_source(args), category=args.category, k=args.k, device=args.device,
        batch_size=args.batch_size, progress=True,
    )  # fmt: skip
    print(f"{result['category']} test split, {result['images']} images, k={result['k']}")
    print_metrics(result)
    return 0
