"""The paper's experiment figures: Pareto fronts on the test split (Figure 2) and qualitative maps (Figure 3).

Inputs are plain numbers and arrays, so any caller (the experiment runner, a notebook) can draw them.
Figure 2 differs from `pareto_plot` (one study, every trial, validation rwAP): it overlays the fronts of
many searches with the *test* rwAP of their re-fitted models, one colour per k, the Test' front dashed.
Figure 3 scales each method's heatmaps by that method's min/max over the whole test set, so colours
compare across images (a per-image scale would make every image look anomalous somewhere).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib import colormaps

from autopatch.data import NORMAL_TYPE
from autopatch.errors import AutopatchError
from autopatch.report.heatmaps import OUTLINE_RGB, mask_outline, overlay
from autopatch.report.plotting import figure_grid, save_png


@dataclass(frozen=True)
class FrontSeries:
    """One search's front: `group` picks the colour and legend entry (e.g. 'k=1'); points are (GFLOPs, rwAP)."""

    group: str
    points: Sequence[tuple[float, float]]
    dashed: bool = False


def save_pareto_fronts(
    series: Sequence[FrontSeries],
    path: str | Path,
    title: str = "",
    baseline: tuple[str, float, float] | None = None,
) -> Path:
    """Write the Figure-2-style PNG: each front as a line through its points in GFLOPs order (rwAP in %),
    the baseline as a star (label, GFLOPs, rwAP). GFLOPs on a log axis: fronts and a WRN-50 differ 50x."""
    path = Path(path)
    groups = list(dict.fromkeys(s.group for s in series))
    palette = colormaps["tab10"]
    figure, axes = figure_grid(figsize=(6.4, 4.4), dpi=120)
    labelled: set[str] = set()
    for s in series:
        if not s.points:
            continue
        gflops, rwap = zip(*sorted(s.points), strict=True)
        label = None if s.group in labelled else s.group
        labelled.add(s.group)
        axes.plot(
            gflops, [100.0 * r for r in rwap], marker="o", markersize=4, linewidth=1.2,
            linestyle="--" if s.dashed else "-", color=palette(groups.index(s.group) % 10), label=label,
        )  # fmt: skip
    if baseline is not None:
        name, cost, score = baseline
        axes.scatter([cost], [100.0 * score], marker="*", s=160, color="black", label=name, zorder=3)
    axes.set_xscale("log")
    axes.set_xlabel("GFLOPs (encoder, one image, log scale)")
    axes.set_ylabel("test rwAP (%)")
    axes.set_title(title)
    axes.grid(alpha=0.3, which="both")
    if labelled or baseline is not None:
        axes.legend(loc="best", fontsize="small")
    save_png(figure, path)
    return path


@dataclass(frozen=True)
class QualitativeLayout:
    """What the Figure-3-style PNG holds: one row per image (its label), the column titles, pixel size."""

    path: Path
    rows: list[str]
    columns: list[str]
    width: int
    height: int


def choose_examples(types: Sequence[str], per_type: int, normal: str = NORMAL_TYPE) -> list[int]:
    """Indices of the first `per_type` images of every defect type, types in first-seen order."""
    if per_type < 1:
        raise AutopatchError(f"images per defect type {per_type} must be at least 1")
    chosen: dict[str, list[int]] = {}
    for index, kind in enumerate(types):
        if kind != normal and len(chosen.setdefault(kind, [])) < per_type:
            chosen[kind].append(index)
    return [index for indices in chosen.values() for index in indices]


def save_qualitative(
    path: str | Path,
    images: np.ndarray,
    masks: np.ndarray,
    heatmaps: Mapping[str, tuple[np.ndarray, tuple[float, float]]],
    row_labels: Sequence[str],
    cell_inches: float = 1.8,
) -> QualitativeLayout:
    """Write the Figure-3-style grid: per row the image, its ground truth outlined in red, then each
    method's heatmap (maps [R,S,S] with the (low, high) colour range, e.g. its test-set min/max)."""
    path = Path(path)
    images = np.asarray(images)
    if images.ndim == 4 and images.shape[1] == 3 and images.shape[-1] != 3:
        images = images.transpose(0, 2, 3, 1)
    masks = np.asarray(masks).astype(bool)
    count = len(row_labels)
    if count == 0:
        raise AutopatchError("no images to show in the qualitative figure; the test split has no anomalous image")
    if images.shape[0] != count or masks.shape[0] != count or any(m.shape[0] != count for m, _ in heatmaps.values()):
        raise AutopatchError(f"qualitative figure needs {count} images, masks and maps per method, one per row label")
    columns = ["image", "ground truth", *heatmaps]
    figure, axes = figure_grid(
        count, len(columns), figsize=(cell_inches * len(columns), cell_inches * count + 0.3), dpi=100
    )
    for row in range(count):
        image = images[row].astype(np.uint8)
        truth = image.copy()
        truth[mask_outline(masks[row])] = OUTLINE_RGB
        panels = [image, truth] + [overlay(image, maps[row], *scale) for maps, scale in heatmaps.values()]
        for column, panel in enumerate(panels):
            axis = axes[row][column]
            axis.imshow(panel)
            axis.set_xticks([])
            axis.set_yticks([])
            if row == 0:
                axis.set_title(columns[column], fontsize="small")
        axes[row][0].set_ylabel(row_labels[row], fontsize="small")
    save_png(figure, path)
    width, height = (int(round(v)) for v in figure.get_size_inches() * figure.dpi)
    return QualitativeLayout(path=path, rows=list(row_labels), columns=columns, width=width, height=height)
