"""`autopatch pareto`: a study's Pareto-optimal trials as a table, and optionally the Pareto plot PNG."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_study_arguments(parser: argparse.ArgumentParser) -> None:
    """--study/--storage/--runs: where to find a study written by `autopatch search` (shared with export)."""
    parser.add_argument("--study", required=True, help="study name, as `autopatch search` printed it")
    parser.add_argument("--storage", default=None, help="Optuna storage URL (default: the study's file in --runs)")
    parser.add_argument("--runs", type=Path, default=Path("runs"), help="folder `autopatch search --out` wrote to")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "pareto",
        help="print a study's Pareto front (GFLOPs or latency, val rwAP, architecture) and draw the Pareto plot",
        description="Lists the Pareto-optimal completed trials, cheapest first; --plot writes a PNG with every "
        "completed trial in grey and the front highlighted.",
    )
    add_study_arguments(parser)
    parser.add_argument("--max-gflops", type=float, default=None, help="only trials within this GFLOPs budget")
    parser.add_argument("--plot", type=Path, default=None, help="PNG file for the Pareto plot")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from autopatch.api import load_study
    from autopatch.cli.common import print_front
    from autopatch.report.pareto_plot import save_pareto_plot
    from autopatch.search.names import cost_label, objective_label

    study = load_study(args.study, storage=args.storage, runs=args.runs)
    trials = study.get_trials(deepcopy=False)
    print(f"study {study.study_name}")
    print_front(study, trials, args.max_gflops)
    label = objective_label(study.user_attrs)
    if args.plot is not None:
        path = save_pareto_plot(trials, args.plot, title=study.study_name, max_gflops=args.max_gflops, objective=label,
                                cost=cost_label(study.user_attrs))  # fmt: skip
        print(f"plot {path}")
    return 0
