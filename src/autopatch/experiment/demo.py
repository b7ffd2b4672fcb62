"""The bundled-data demo (`autopatch demo`, `make demo`) as one call: the whole product in one output folder.

The data is found relative to the package (a source checkout), or given as `data_root`. Short
`pretrained`-space search -> Pareto front (table + plot) -> export of the best trial -> its test
metrics -> heatmap PNGs of the test images. Small image size and bank fraction keep it to minutes on two
CPU cores; rerunning resumes (a finished search just reports its front).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import autopatch
from autopatch.deploy import predict_files
from autopatch.errors import AutopatchError
from autopatch.report.pareto_plot import save_pareto_plot
from autopatch.search.export import ExportResult, export_trial
from autopatch.search.pareto import select_trial
from autopatch.search.storage import default_storage_url, open_storage
from autopatch.search.study import (
    ArchitectureObjectiveFactory,
    SearchSummary,
    StudySettings,
    load_existing_study,
    run_search,
)
from autopatch.segmenter import Segmenter

DEMO_CATEGORY = "hazelnut_toy"
DEMO_STUDY = "demo"


@dataclass(frozen=True)
class DemoResult:
    """What the demo left under `out`: the search's front, the plot, the exported model and its test files."""

    out: Path
    search: SearchSummary
    pareto_plot: Path
    export: ExportResult
    evaluation: Path
    heatmaps: Path
    heatmap_count: int


def bundled_data_root() -> Path:
    """examples/data/hazelnut_toy of a source checkout (the package is installed editable by `make`)."""
    return Path(autopatch.__file__).resolve().parents[2] / "examples" / "data" / DEMO_CATEGORY


def run_demo(
    data_root: str | Path | None,
    out: str | Path,
    *,
    trials: int,
    image_size: int,
    bank_fraction: float,
    device: str = "auto",
    log: Callable[[str], None] = print,
    on_search: Callable[[SearchSummary], None] | None = None,
    on_export: Callable[[ExportResult], None] | None = None,
) -> DemoResult:
    """Search, plot, export, evaluate and draw heatmaps under `out`; `data_root` None means the bundled data.

    `log` gets one line per step; `on_search` / `on_export` get the step's result as soon as it exists, so
    a caller can show the front and the test metrics while the later steps still run.
    """
    root = Path(data_root or bundled_data_root()).resolve()
    if not (root / DEMO_CATEGORY).is_dir():
        raise AutopatchError(
            f"demo data {root / DEMO_CATEGORY} not found (the package is not a source checkout?); "
            "pass --data FOLDER that contains hazelnut_toy"
        )
    out = Path(out)
    settings = StudySettings(
        data_root=str(root), category=DEMO_CATEGORY, space="pretrained", k=1, seed=0,
        image_size=image_size, bank_fraction=bank_fraction,
    )
    log(f"[1/4] search: {trials} trials of the pretrained space on {root / DEMO_CATEGORY}")
    summary = run_search(
        settings, ArchitectureObjectiveFactory(settings, device=device),
        trials=trials, study_name=DEMO_STUDY, out_dir=out,
    )
    if on_search is not None:
        on_search(summary)
    study = load_existing_study(DEMO_STUDY, open_storage(default_storage_url(out, DEMO_STUDY), create=False))
    study_trials = study.get_trials(deepcopy=False)
    plot = save_pareto_plot(study_trials, out / "pareto.png", title=f"{DEMO_CATEGORY}: {summary.complete} trials")
    log(f"Pareto plot {plot}")

    log("[2/4] export the best trial (highest validation rwAP), refit on the train split")
    result = export_trial(study, select_trial(study_trials, "best"), out / "model.pt", device=device, progress=True)
    if on_export is not None:
        on_export(result)
    evaluation = out / "evaluation.json"
    evaluation.write_text(json.dumps({"trial": result.trial, "architecture": result.architecture,
                                      "val_threshold": result.val_threshold, "test": result.test_metrics}, indent=2))
    log(f"[3/4] test metrics written to {evaluation}")

    log("[4/4] heatmaps of the test images")
    segmenter = Segmenter.load(result.path, device=device)
    heatmaps = out / "heatmaps"
    written = 0
    for folder in sorted(p for p in (root / DEMO_CATEGORY / "test").iterdir() if p.is_dir()):
        written += len(predict_files(segmenter, folder, heatmaps / folder.name).written)
    log(f"{written} heatmap PNGs in {heatmaps}")
    return DemoResult(out, summary, plot, result, evaluation, heatmaps, written)
