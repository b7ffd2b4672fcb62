"""`autopatch search`: the (GFLOPs or latency, validation rwAP) architecture search for a category; prints the front."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from autopatch.cli.common import (
    add_data,
    add_device,
    add_fidelity,
    add_image_size,
    add_synthetic_kind,
    data_source,
    print_front,
)
from autopatch.search.names import COSTS, DEFAULT_SYNTHETIC, OBJECTIVES, RUNTIMES, SPACE_NAMES

if TYPE_CHECKING:
    from autopatch.search import SearchSummary


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "search",
        help="search the Pareto front of (GFLOPs or latency, validation rwAP) architectures for a category",
        description="Runs (or resumes: rerun the same command) a multi-objective Optuna study until --trials "
        "trials are complete, then prints the Pareto front. One worker stores the study in an SQLite file "
        "under --out; --workers N uses a journal file there; many machines share one --storage "
        "postgresql://USER:PASSWORD@HOST/DB.",
    )
    add_data(parser, "category folder name, e.g. bottle (with DATA_ROOT)")
    parser.add_argument("--objective", choices=tuple(OBJECTIVES), default=None,
                        help="validation metric maximised beside the cost (default: rwap when every validation "
                        "anomaly has a mask, else image-ap)")  # fmt: skip
    parser.add_argument("--cost", choices=tuple(COSTS), default="gflops",
                        help="what the search minimises: the encoder's GFLOPs, or each architecture's measured batch-1 "
                        "latency as deployed in --runtime on this machine (both are stored for every trial)")
    parser.add_argument("--runtime", choices=RUNTIMES, default=None,
                        help="with --cost latency: the deploy runtime it is measured in (default torch)")
    parser.add_argument("--space", choices=SPACE_NAMES, default=None,
                        help="search space (default: ofa when its weights are local, else pretrained)")
    parser.add_argument("--k", type=int, default=1,
                        help="anomalous validation images per defect type (0: no real defect, synthetic ones only)")
    parser.add_argument("--synthetic", type=int, default=None,
                        help="synthetic anomalies added to validation, made from a few train normals that leave "
                        f"the train split (see `autopatch synthetic`; default {DEFAULT_SYNTHETIC}, none with "
                        "--test-oracle; 0: the real anomalies only)")
    add_synthetic_kind(parser, "--synthetic-kind", "generator of the synthetic anomalies; mix cycles through all")
    parser.add_argument("--trials", type=int, default=100, help="complete trials the study should hold in total")
    parser.add_argument("--seed", type=int, default=0, help="sampler and bank-fraction seed")
    parser.add_argument("--max-gflops", type=float, default=None, help="GFLOPs budget as an Optuna constraint")
    parser.add_argument("--test-oracle", action="store_true", help="score trials on Test' (the paper's oracle)")
    add_fidelity(parser, "random fraction of the bank per trial (default: the fidelity's)")
    add_image_size(parser, 224)
    add_device(parser)
    parser.add_argument("--study", default=None,
                        help="study name (default: <category>-<space>-k<k>-s<seed>[-syn<N>]...; see README)")
    parser.add_argument("--storage", default=None, help="Optuna storage URL (default: a file under --out)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes on this machine")
    parser.add_argument("--out", type=Path, default=Path("runs"), help="folder of the default study files")
    parser.set_defaults(run=run)


def print_summary(summary: SearchSummary) -> None:
    print(f"study {summary.study_name} in {summary.storage_url}: {summary.complete} complete, {summary.failed} failed")
    study = summary.study
    print_front(study, study.get_trials(deepcopy=False), study.user_attrs.get("max_gflops"))


def run(args: argparse.Namespace) -> int:
    import optuna

    from autopatch.api import run_search

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    summary = run_search(
        data_source(args), args.category, objective=args.objective, trials=args.trials, space=args.space, k=args.k,
        seed=args.seed, image_size=args.image_size, resize=args.resize, fidelity=args.fidelity,
        bank_fraction=args.bank_fraction,
        max_gflops=args.max_gflops, oracle=args.test_oracle, synthetic=args.synthetic,
        synthetic_kind=args.synthetic_kind, cost=args.cost, runtime=args.runtime, study=args.study,
        storage=args.storage, out=args.out,
        workers=args.workers, device=args.device,
    )  # fmt: skip
    print_summary(summary)
    return 0
