"""The Pareto plot PNG: grey trials, red front, one-line error for a missing folder."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
from PIL import Image

from autopatch.errors import AutopatchError
from autopatch.report.pareto_plot import save_pareto_plot


def trials(points):
    made = []
    for number, values in enumerate(points):
        trial = optuna.trial.create_trial(values=list(values))
        trial.number = number
        made.append(trial)
    return made


def colour_pixels(path, rgb, tolerance=12) -> int:
    image = np.asarray(Image.open(path).convert("RGB")).astype(int)
    return int((np.abs(image - np.array(rgb)).max(axis=-1) <= tolerance).sum())


def test_plot_draws_grey_trials_and_a_red_front(tmp_path):
    path = save_pareto_plot(trials([(0.1, 0.2), (0.2, 0.6), (0.3, 0.4), (0.5, 0.9)]), tmp_path / "p.png", "t")
    assert Image.open(path).format == "PNG"
    assert colour_pixels(path, (179, 179, 179)) > 20  # matplotlib '0.7' grey: the dominated trial
    assert colour_pixels(path, (214, 39, 40)) > 50  # tab:red: front markers and staircase


def test_empty_study_still_writes_a_plot_and_missing_folder_is_an_error(tmp_path):
    assert Image.open(save_pareto_plot([], tmp_path / "empty.png")).format == "PNG"
    with pytest.raises(AutopatchError, match="does not exist"):
        save_pareto_plot([], tmp_path / "no" / "p.png")
