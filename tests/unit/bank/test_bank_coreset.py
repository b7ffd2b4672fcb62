"""Greedy coreset against a plainly written greedy k-center (python loops over numpy)."""

import math

import numpy as np
import pytest
import torch

from autopatch.bank.coreset import greedy_coreset, greedy_kcenter, random_projection, starting_points
from autopatch.errors import AutopatchError


def brute_force_greedy(points: np.ndarray, n_select: int, starts: list[int]) -> list[int]:
    """PatchCore's approximate greedy k-center, one point and one distance at a time."""
    def dist(a, b):
        return math.sqrt(sum((float(x) - float(y)) ** 2 for x, y in zip(a, b, strict=True)))

    anchor = [sum(dist(p, points[s]) for s in starts) / len(starts) for p in points]
    chosen: list[int] = []
    for _ in range(n_select):
        best = max((i for i in range(len(points)) if i not in chosen), key=lambda i: anchor[i])
        chosen.append(best)
        anchor = [min(anchor[i], dist(points[i], points[best])) for i in range(len(points))]
    return chosen


def points(m: int, c: int, seed: int) -> torch.Tensor:
    return torch.randn(m, c, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize(("lazy", "pool_size"), [(False, 1), (True, 7), (True, 1), (True, 1000)])
@pytest.mark.parametrize(("m", "c", "n_select", "n_starts"), [(120, 5, 30, 10), (80, 3, 80, 1), (60, 16, 12, 4)])
def test_kcenter_selects_what_the_brute_force_selects(lazy, pool_size, m, c, n_select, n_starts):
    x = points(m, c, seed=m + c)
    starts = starting_points(m, n_starts, seed=0)
    got = greedy_kcenter(x, n_select, starts, lazy=lazy, pool_size=pool_size).tolist()
    assert got == brute_force_greedy(x.numpy(), n_select, starts.tolist())


def test_coreset_projects_wide_features_and_matches_brute_force_on_the_projection():
    x = points(150, 40, seed=1)
    seed, dim = 3, 8
    got = greedy_coreset(x, 0.1, projection_dim=dim, n_starts=10, seed=seed)
    projected = (x @ random_projection(40, dim, seed)).numpy()
    want = brute_force_greedy(projected, 15, starting_points(150, 10, seed).tolist())
    assert got.dtype == torch.long and got.tolist() == want


def test_coreset_does_not_project_narrow_features():
    x = points(100, 6, seed=2)
    got = greedy_coreset(x, 0.2, projection_dim=128, seed=0)
    assert got.tolist() == brute_force_greedy(x.numpy(), 20, starting_points(100, 10, 0).tolist())


def test_coreset_is_seeded_and_size_is_floor_of_fraction():
    x = points(333, 20, seed=4)
    a = greedy_coreset(x, 0.1, projection_dim=8, seed=7)
    assert torch.equal(a, greedy_coreset(x, 0.1, projection_dim=8, seed=7))
    assert len(a) == 33 and len(set(a.tolist())) == 33
    assert len(greedy_coreset(x, 0.001)) == 1
    assert torch.equal(greedy_coreset(x, 1.0), torch.arange(333))


@pytest.mark.parametrize("lazy", [False, True])
def test_duplicate_rows_are_never_selected_twice(lazy):
    x = points(5, 3, seed=5).repeat(4, 1)  # 20 rows, only 5 distinct
    got = greedy_kcenter(x, 10, starting_points(20, 2, 0), lazy=lazy, pool_size=3).tolist()
    assert len(got) == 10 and len(set(got)) == 10
    assert len({tuple(r) for r in x[got[:5]].tolist()}) == 5  # the 5 distinct points come first


def test_progress_bar_is_shown_and_leaves_the_selection_unchanged(capsys):
    x = points(50, 4, seed=6)
    shown = greedy_coreset(x, 0.2, progress=True)
    assert "coreset" in capsys.readouterr().err
    assert torch.equal(shown, greedy_coreset(x, 0.2, progress=False))
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    ("features", "fraction", "message"),
    [
        (torch.empty(0, 4), 0.1, "empty"),
        (torch.ones(5), 0.1, "2-D"),
        (torch.ones(5, 2, dtype=torch.long), 0.1, "2-D"),
        (torch.full((5, 2), float("nan")), 0.1, "NaN"),
        (torch.ones(5, 2), 0.0, "fraction"),
        (torch.ones(5, 2), 1.5, "fraction"),
    ],
)
def test_bad_coreset_input_is_rejected(features, fraction, message):
    with pytest.raises(AutopatchError, match=message):
        greedy_coreset(features, fraction)
