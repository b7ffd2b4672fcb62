"""Experiment figures: which test images Figure 3 shows, its one-row-per-image layout, its colour scaling,
and that Figure 2 writes a PNG for fronts with and without a baseline."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from matplotlib import colormaps
from PIL import Image

from autopatch.errors import AutopatchError
from autopatch.report.figures import FrontSeries, choose_examples, overlay, save_pareto_fronts, save_qualitative


def test_choose_examples_takes_the_first_of_each_defect_type() -> None:
    types = ["good", "crack", "good", "crack", "scratch", "crack", "scratch", "hole"]
    assert choose_examples(types, 2) == [1, 3, 4, 6, 7]
    assert choose_examples(types, 1) == [1, 4, 7]
    with pytest.raises(AutopatchError):
        choose_examples(types, 0)


def test_overlay_uses_the_given_range_not_the_image_range() -> None:
    image = np.zeros((2, 2, 3), dtype=np.uint8)
    scores = np.array([[1.0, 1.0], [1.0, 1.0]])  # constant: a per-image scale would be undefined
    blended = overlay(image, scores, 0.0, 2.0)
    expected = np.round(0.5 * np.array(colormaps["jet"](0.5)[:3]) * 255.0)
    assert (blended == expected.astype(np.uint8)).all()


def test_qualitative_has_one_row_per_image(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    rows = 3
    images = rng.integers(0, 256, (rows, 3, 16, 16), dtype=np.uint8)
    masks = rng.random((rows, 16, 16)) > 0.8
    maps = rng.random((rows, 16, 16))
    layout = save_qualitative(
        tmp_path / "q.png", images, masks, {"PatchCore": (maps, (0.0, 1.0)), "AutoPatch": (maps, (0.0, 2.0))},
        ["a", "b", "c"], cell_inches=1.0,
    )  # fmt: skip
    assert layout.rows == ["a", "b", "c"]
    assert layout.columns == ["image", "ground truth", "PatchCore", "AutoPatch"]
    with Image.open(layout.path) as png:
        # 100 dpi: 4 columns x 1 in wide, 3 rows x 1 in + 0.3 in for the titles
        assert (png.width, png.height) == (layout.width, layout.height) == (400, 330)
    with pytest.raises(AutopatchError):
        save_qualitative(tmp_path / "bad.png", images, masks, {"m": (maps[:2], (0.0, 1.0))}, ["a", "b", "c"])


def test_pareto_fronts_png(tmp_path: Path) -> None:
    series = [
        FrontSeries("k=1", [(0.5, 0.8), (0.2, 0.7)]),
        FrontSeries("k=1", [(0.3, 0.75)]),
        FrontSeries("Test'", [(0.4, 0.9)], dashed=True),
        FrontSeries("k=2", []),
    ]
    drawn = {}
    for baseline in (None, ("PatchCore wrn", 18.4, 0.81)):
        path = save_pareto_fronts(series, tmp_path / f"f{baseline is None}.png", "t", baseline)
        with Image.open(path) as png:
            drawn[baseline is None] = np.asarray(png.convert("RGB"))
    for pixels in drawn.values():
        assert pixels.shape == (528, 768, 3)  # 6.4 x 4.4 inches at 120 dpi
        for colour in ((0x1F, 0x77, 0xB4), (0xFF, 0x7F, 0x0E)):  # tab10 blue (k=1), orange (Test')
            assert (pixels == colour).all(-1).sum() > 50
        assert not (pixels == (0x2C, 0xA0, 0x2C)).all(-1).any()  # k=2 has no points: no green line
    # the baseline star is the only solid black area beyond text and axes
    black = {key: int((pixels < 30).all(-1).sum()) for key, pixels in drawn.items()}
    assert black[False] > black[True] + 100


def test_importing_and_drawing_keeps_the_users_matplotlib_backend(tmp_path: Path) -> None:
    script = (
        "import matplotlib; matplotlib.use('svg')\n"
        "from autopatch.report.figures import FrontSeries, save_pareto_fronts\n"
        "from autopatch.report.pareto_plot import save_pareto_plot\n"
        f"save_pareto_fronts([FrontSeries('k=1', [(0.1, 0.5)])], {str(tmp_path / 'f.png')!r})\n"
        f"save_pareto_plot([], {str(tmp_path / 'p.png')!r})\n"
        "print(matplotlib.get_backend())\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "svg"
    assert Image.open(tmp_path / "f.png").format == Image.open(tmp_path / "p.png").format == "PNG"
