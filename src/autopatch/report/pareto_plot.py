"""Pareto plot of a study: every completed trial grey, the front highlighted and joined as a staircase."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from optuna.trial import FrozenTrial

from autopatch.errors import AutopatchError
from autopatch.report.plotting import figure_grid, save_png
from autopatch.search.pareto import objectives, pareto_front, within_budget


def save_pareto_plot(
    trials: Sequence[FrozenTrial],
    path: str | Path,
    title: str = "",
    max_gflops: float | None = None,
    objective: str = "rwAP",
    cost: str = "GFLOPs",
) -> Path:
    """Write the PNG to `path` (its folder must exist) and return it; `cost` labels the x axis (a study's
    `search.names.cost_label`)."""
    path = Path(path)
    if not path.parent.is_dir():
        raise AutopatchError(f"folder {path.parent} for the plot does not exist; create it or choose another --plot")
    points = [objectives(t) for t in within_budget(trials, max_gflops)]
    front = [objectives(t) for t in pareto_front(trials, max_gflops)]
    figure, axes = figure_grid(figsize=(6.4, 4.4), dpi=120)
    if points:
        axes.scatter(*zip(*points, strict=True), s=14, color="0.7", label=f"trials ({len(points)})", zorder=1)
    if front:
        front_x, front_y = zip(*front, strict=True)
        axes.step(front_x, front_y, where="post", color="tab:red", linewidth=1.2, zorder=2)
        axes.scatter(front_x, front_y, s=30, color="tab:red", label=f"Pareto front ({len(front)})", zorder=3)
    if max_gflops is not None and cost == "GFLOPs":  # on a latency axis the budget is no vertical line
        axes.axvline(max_gflops, color="0.4", linestyle="--", linewidth=1, label=f"max {max_gflops} GFLOPs")
    axes.set_xlabel("GFLOPs (encoder, one image)" if cost == "GFLOPs" else f"{cost}, batch 1")
    axes.set_ylabel(f"validation {objective}")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    if points:
        axes.legend(loc="lower right")
    save_png(figure, path)
    return path
