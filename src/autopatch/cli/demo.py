"""`autopatch demo` (`make demo`): the whole product on the bundled hazelnut toy data, in one output folder.

The data is found relative to the package (a source checkout), or given with --data. Short
`pretrained`-space search -> Pareto front (table + plot) -> export of the best trial -> its test
metrics -> heatmap PNGs of the test images. Small image size and bank fraction keep it to minutes on two
CPU cores; rerunning resumes (a finished search just prints its front).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import optuna

import autopatch
from autopatch.cli.export import print_export
from autopatch.cli.pareto import load_study_at
from autopatch.cli.search import print_summary
from autopatch.device import DEVICE_CHOICES
from autopatch.errors import AutopatchError
from autopatch.report.pareto_plot import save_pareto_plot
from autopatch.search.export import export_trial
from autopatch.search.pareto import select_trial
from autopatch.search.storage import default_storage_url
from autopatch.search.study import ArchitectureObjectiveFactory, StudySettings, run_search
from autopatch.segmenter import Segmenter, predict_files

DEMO_CATEGORY = "hazelnut_toy"
DEMO_STUDY = "demo"


def bundled_data_root() -> Path:
    """examples/data/hazelnut_toy of a source checkout (the package is installed editable by `make`)."""
    return Path(autopatch.__file__).resolve().parents[2] / "examples" / "data" / DEMO_CATEGORY


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
    parser.add_argument("--data", type=Path, default=None, help="folder holding the hazelnut_toy category folder (default: examples/data/hazelnut_toy)")
    parser.add_argument("--device", choices=DEVICE_CHOICES, default="auto")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    root = (args.data or bundled_data_root()).resolve()
    if not (root / DEMO_CATEGORY).is_dir():
        raise AutopatchError(
            f"demo data {root / DEMO_CATEGORY} not found (the package is not a source checkout?); "
            "pass --data FOLDER that contains hazelnut_toy"
        )
    out: Path = args.out
    settings = StudySettings(
        data_root=str(root), category=DEMO_CATEGORY, space="pretrained", k=1, seed=0,
        image_size=args.image_size, bank_fraction=args.bank_fraction,
    )
    print(f"[1/4] search: {args.trials} trials of the pretrained space on {root / DEMO_CATEGORY}")
    summary = run_search(
        settings, ArchitectureObjectiveFactory(settings, device=args.device),
        trials=args.trials, study_name=DEMO_STUDY, out_dir=out,
    )
    print_summary(summary)
    study = load_study_at(DEMO_STUDY, default_storage_url(out, DEMO_STUDY))
    trials = study.get_trials(deepcopy=False)
    plot = save_pareto_plot(trials, out / "pareto.png", title=f"{DEMO_CATEGORY}: {summary.complete} trials")
    print(f"Pareto plot {plot}")

    print("[2/4] export the best trial (highest validation rwAP), refit on the train split")
    result = export_trial(study, select_trial(trials, "best"), out / "model.pt", device=args.device, progress=True)
    print_export(result)
    evaluation = out / "evaluation.json"
    evaluation.write_text(json.dumps({"trial": result.trial, "architecture": result.architecture,
                                      "val_threshold": result.val_threshold, "test": result.test_metrics}, indent=2))
    print(f"[3/4] test metrics written to {evaluation}")

    print("[4/4] heatmaps of the test images")
    segmenter = Segmenter.load(result.path, device=args.device)
    written = 0
    for folder in sorted(p for p in (root / DEMO_CATEGORY / "test").iterdir() if p.is_dir()):
        written += len(predict_files(segmenter, folder, out / "heatmaps" / folder.name).written)
    print(f"{written} heatmap PNGs in {out / 'heatmaps'}")
    print(f"demo done: everything is in {out.resolve()}")
    return 0
