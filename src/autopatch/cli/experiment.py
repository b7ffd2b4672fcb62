"""`autopatch experiment`: the paper's §5 comparison (searches, Test', baseline) as tables and figures in --out."""

from __future__ import annotations

import argparse
from pathlib import Path

from autopatch.cli.common import (
    add_batch_size,
    add_device,
    add_fidelity,
    add_folder_dataset,
    add_image_size,
    add_synthetic_kind,
    folder_dataset,
    int_list,
)
from autopatch.search import SPACE_NAMES


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "experiment",
        help="searches per k and seed, Test' oracle, PatchCore baseline -> Tables 3-6 and Figures 2-3",
        description="Runs one search per (k, seed) on the validation split and one Test' (oracle) search per "
        "seed, re-fits every validation-Pareto-front trial and scores it on the shared test split, fits the "
        "baseline on the same splits, and writes Markdown + CSV tables and PNG figures to --out. Rerun the "
        "same command to resume: finished studies and cached re-fits are reused. Roots and categories pair "
        "one to one, or one of them is shared by all of the other; or give one folder dataset with masks.",
    )
    parser.add_argument("data_roots", type=Path, nargs="*", metavar="DATA_ROOT",
                        help="folder(s) that contain the category folder(s) (MVTec layout)")  # fmt: skip
    parser.add_argument("--category", default=[], nargs="+", help="category folder name(s), e.g. bottle")
    add_folder_dataset(parser)
    parser.add_argument("--k", type=int_list, default=[1, 2, 4], help="validation shots to search with (default 1,2,4)")
    parser.add_argument("--synthetic", type=int, default=0,
                        help="also search with no real defect: a 'k=0 (synthetic)' column validated on this many "
                        "synthetic anomalies (see `autopatch synthetic`)")  # fmt: skip
    add_synthetic_kind(parser, "--synthetic-kind", "generator of the synthetic anomalies; mix cycles through all")
    parser.add_argument("--seeds", type=int_list, default=[0, 1, 2], help="search seeds (default 0,1,2)")
    parser.add_argument("--trials", type=int, default=100, help="complete trials per search")
    parser.add_argument("--space", choices=SPACE_NAMES, default="pretrained", help="search space (default pretrained)")
    parser.add_argument("--max-gflops", type=float, default=None,
                        help="also report each search's best trial within this GFLOPs budget")  # fmt: skip
    parser.add_argument("--baseline", default="wide_resnet50_2",
                        help="PatchCore backbone (registry name) or 'none' (default: wide_resnet50_2)")  # fmt: skip
    parser.add_argument("--baseline-layers", type=int_list, default=None,
                        help="baseline block ids (default: last blocks of the stride-8 and -16 stages)")  # fmt: skip
    parser.add_argument("--baseline-coreset", type=float, default=0.1, help="baseline greedy coreset fraction")
    add_image_size(parser, 224, resize=False)
    add_fidelity(parser, "random memory-bank fraction in searches and re-fits (default: the fidelity's in "
                 "searches, the whole bank in re-fits)")  # fmt: skip
    parser.add_argument("--storage", default=None, help="Optuna storage URL for every study (default: files in --out)")
    parser.add_argument("--examples-per-type", type=int, default=2, help="Figure 3 rows per defect type")
    add_device(parser)
    add_batch_size(parser)
    parser.add_argument("--out", required=True, type=Path, help="folder for tables, figures, studies and cache")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import optuna

    from autopatch.api import ExperimentSettings, run_experiment

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    baseline = None if args.baseline.lower() == "none" else args.baseline
    settings = ExperimentSettings(
        data_roots=tuple(str(root) for root in args.data_roots), categories=tuple(args.category), out=str(args.out),
        ks=tuple(args.k), seeds=tuple(args.seeds), trials=args.trials, space=args.space, max_gflops=args.max_gflops,
        baseline=baseline, baseline_layers=tuple(args.baseline_layers) if args.baseline_layers else None,
        baseline_coreset=args.baseline_coreset, image_size=args.image_size, fidelity=args.fidelity,
        bank_fraction=args.bank_fraction,
        storage=args.storage, device=args.device, batch_size=args.batch_size,
        examples_per_type=args.examples_per_type, folders=folder_dataset(args), synthetic=args.synthetic,
        synthetic_kind=args.synthetic_kind,
    )  # fmt: skip
    outputs = run_experiment(settings, log=print, progress=True)
    for path in outputs.files:
        print(f"wrote {path}")
    for dataset, layout in outputs.qualitative.items():
        print(f"{dataset}: qualitative figure shows {len(layout.rows)} test images, {', '.join(layout.columns)}")
    table = Path(args.out) / "table3_rwap_gflops.md"
    print(table.read_text(encoding="utf-8"))
    return 0
