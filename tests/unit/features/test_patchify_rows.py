"""patchify_rows against patchify (itself checked against a brute-force loop in test_patchify_oracle.py):
the rows it computes are the flattened patchify rows, for strides 1x/2x/4x/8x, non-square and odd
ratios, even and odd P, a first map shrunk by an even P, and maps already at the target size."""

from __future__ import annotations

import pytest
import torch

from autopatch.errors import AutopatchError
from autopatch.features import patchify, patchify_rows


def flat_rows(out: torch.Tensor) -> torch.Tensor:
    return out.permute(0, 2, 3, 1).reshape(-1, out.shape[1])


CASES = [
    ([(16, 28, 28), (24, 14, 14), (40, 7, 7)], [7, 5, 11]),  # strides 4/8/16-like
    ([(3, 6, 6), (4, 3, 3)], [3, 3]),
    ([(2, 8, 8), (3, 4, 4)], [1, 5]),
    ([(2, 5, 7), (2, 3, 4)], [2, 3]),  # even P on the first map: shrinks, then resized back
    ([(2, 6, 6), (3, 3, 3), (1, 2, 2)], [4, 2, 1]),
    ([(4, 16, 16), (5, 16, 16), (6, 2, 2)], [1, 3, 2]),  # a second map already at the target size
    ([(3, 12, 10), (2, 5, 9), (2, 1, 1)], [1, 2, 1]),  # odd ratios per axis, a 1x1 map
    ([(3, 4, 4), (2, 9, 9)], [3, 1]),  # a later map larger than the first (downsampled)
]


@pytest.mark.parametrize(("shapes", "sizes"), CASES)
def test_rows_equal_the_flattened_patchify(shapes: list[tuple[int, int, int]], sizes: list[int]) -> None:
    g = torch.Generator().manual_seed(len(shapes) + sum(sizes))
    maps = [torch.randn(3, *shape, generator=g) for shape in shapes]
    want = flat_rows(patchify(maps, sizes))
    every = torch.arange(len(want))
    subset = torch.randperm(len(want), generator=g)[: len(want) // 3 + 1].sort().values
    shuffled_with_repeats = torch.randint(0, len(want), (50,), generator=g)
    for rows in (every, subset, shuffled_with_repeats):
        got = patchify_rows(maps, sizes, rows)
        assert got.shape == (len(rows), want.shape[1]) and got.dtype == torch.float32
        torch.testing.assert_close(got, want[rows], rtol=1e-6, atol=2e-6)


def test_maps_at_the_target_size_are_gathered_exactly() -> None:
    g = torch.Generator().manual_seed(0)
    maps = [torch.randn(2, 3, 5, 5, generator=g), torch.randn(2, 4, 5, 5, generator=g)]
    rows = torch.tensor([0, 7, 49, 13])
    assert torch.equal(patchify_rows(maps, [3, 1], rows), flat_rows(patchify(maps, [3, 1]))[rows])


def test_no_rows_gives_an_empty_matrix() -> None:
    maps = [torch.zeros(1, 2, 4, 4), torch.zeros(1, 3, 2, 2)]
    assert patchify_rows(maps, [1, 1], torch.zeros(0, dtype=torch.long)).shape == (0, 5)


def test_rejects_bad_rows_and_patch_sizes() -> None:
    maps = [torch.zeros(2, 1, 3, 3)]
    with pytest.raises(AutopatchError, match="outside"):
        patchify_rows(maps, [1], torch.tensor([18]))
    with pytest.raises(AutopatchError, match="outside"):
        patchify_rows(maps, [1], torch.tensor([-1]))
    with pytest.raises(AutopatchError, match="1-D integer"):
        patchify_rows(maps, [1], torch.tensor([0.0]))
    with pytest.raises(AutopatchError, match="1-D integer"):
        patchify_rows(maps, [1], torch.tensor([True, False]))
    with pytest.raises(AutopatchError, match="one patch size per block"):
        patchify_rows(maps, [1, 3], torch.tensor([0]))
    with pytest.raises(AutopatchError, match="patch size 0"):
        patchify_rows(maps, [0], torch.tensor([0]))
    with pytest.raises(AutopatchError, match="at least one feature map"):
        patchify_rows([], [], torch.tensor([0]))
