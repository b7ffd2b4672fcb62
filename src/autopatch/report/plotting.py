"""Figures drawn without pyplot: a `Figure` on its own Agg canvas, so drawing a report never switches the
user's matplotlib backend (a notebook keeps its own) and needs no display."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from autopatch.files import atomic_path


def figure_grid(rows: int = 1, columns: int = 1, *, figsize: tuple[float, float], dpi: int) -> tuple[Figure, Any]:
    """A figure and its axes: one Axes for 1x1, else a [rows][columns] array of them."""
    figure = Figure(figsize=figsize, dpi=dpi)
    FigureCanvasAgg(figure)
    if rows == columns == 1:
        return figure, figure.subplots()
    return figure, figure.subplots(rows, columns, squeeze=False)


def save_png(figure: Figure, path: str | Path) -> Path:
    """Lay the figure out and write it as PNG, through a temporary file so a crash leaves no half image."""
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png")
    return Path(path)
