"""The experiment's figures of one dataset: Figure 2 (every search's front on the test split, the baseline
as a star) and Figure 3 (the baseline's and AutoPatch's heatmaps of the first test images of each type)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from autopatch.data import Split
from autopatch.experiment.datasets import Dataset
from autopatch.experiment.records import BASELINE, ORACLE, ExperimentResults
from autopatch.report.figures import (
    FrontSeries,
    QualitativeLayout,
    choose_examples,
    save_pareto_fronts,
    save_qualitative,
)


def pareto_figure(dataset: Dataset, results: ExperimentResults, out: Path) -> Path:
    """Figure 2 of `dataset`: one line per search's validation front, at its re-fitted test rwAP."""
    series: dict[tuple[str, int | None], list[tuple[float, float]]] = {}
    for point in results.fronts:
        if point.dataset == dataset.label:
            series.setdefault((point.method, point.seed), []).append((point.gflops, point.test_rwap))
    fronts = [FrontSeries(method, points, dashed=method == ORACLE) for (method, _), points in series.items()]
    baseline = next((r for r in results.records if r.dataset == dataset.label and r.method == BASELINE), None)
    star = (results.baseline_name or BASELINE, baseline.gflops, baseline.metrics["rwap"]) if baseline else None
    return save_pareto_fronts(
        fronts, out / f"figure2_pareto_{dataset.slug}.png",
        title=f"{dataset.label}: test rwAP of each search's validation Pareto front", baseline=star,
    )  # fmt: skip


def qualitative_figure(
    dataset: Dataset, test: Split, scores: Mapping[str, np.ndarray], out: Path, examples_per_type: int
) -> QualitativeLayout:
    """Figure 3: the first few test images of each defect type; every method scaled by its test min/max."""
    rows = choose_examples(test.types, examples_per_type)
    heatmaps = {key: (maps[rows], (float(maps.min()), float(maps.max()))) for key, maps in scores.items()}
    return save_qualitative(
        out / f"figure3_qualitative_{dataset.slug}.png", test.images[rows].numpy(), test.masks[rows].numpy(),
        heatmaps, [f"{test.types[i]}: {test.paths[i].name}" for i in rows],
    )  # fmt: skip
