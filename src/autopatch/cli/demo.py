"""`autopatch demo` (`make demo`): the whole product on the bundled hazelnut toy data, in one output folder.

The steps are `autopatch.demo` (autopatch.api); this module parses the arguments and prints the
Pareto front and the exported model's test metrics as the steps finish.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from autopatch.cli.common import add_device
from autopatch.cli.export import print_export
from autopatch.cli.search import print_summary


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="search, export, evaluate and draw heatmaps on the bundled hazelnut toy data",
        description="Runs a short pretrained-space search on examples/data/hazelnut_toy, prints the Pareto front, "
        "exports the best model, evaluates it on the test split and writes heatmap PNGs, all under --out.",
    )
    parser.add_argument("--out", type=Path, default=Path("runs/demo"), help="output folder")
    parser.add_argument("--trials", type=int, default=24, help="complete trials of the search")
    parser.add_argument("--image-size", type=int, default=128, help="square input size in pixels")
    parser.add_argument("--bank-fraction", type=float, default=0.5, help="random fraction of the bank per trial")
    parser.add_argument(
        "--data", type=Path, default=None,
        help="folder holding the hazelnut_toy category folder (default: examples/data/hazelnut_toy)",
    )
    add_device(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import optuna

    from autopatch.api import demo

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    result = demo(
        args.out, data_root=args.data, trials=args.trials, image_size=args.image_size, bank_fraction=args.bank_fraction,
        device=args.device, log=print, on_search=print_summary, on_export=print_export,
    )
    print(f"demo done: everything is in {result.out.resolve()}")
    return 0
