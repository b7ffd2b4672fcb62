"""Exact 1-NN backends against a brute-force numpy oracle, and their memory bound."""

import numpy as np
import pytest
import torch
from torch.overrides import TorchFunctionMode

from autopatch.bank.knn import FaissFlatSearch, ProjectedSearch, TiledTorchSearch


def brute_force_nearest(queries: torch.Tensor, bank: torch.Tensor) -> np.ndarray:
    """Oracle: a plain loop over queries, float64 direct differences."""
    b = bank.double().numpy()
    return np.array([((b - q) ** 2).sum(1).min() for q in queries.double().numpy()])


def random_problem(q: int, m: int, c: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(q, c, generator=g), torch.randn(m, c, generator=g)


def assert_close_to_oracle(got: torch.Tensor, want: np.ndarray) -> None:
    assert got.dtype == torch.float32 and got.shape == want.shape
    # fp32 expansion-form error scales with the squared norms (~C), not with the distance itself.
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-4, atol=1e-4)


BACKENDS = {
    "faiss": lambda bank, qc, bc: FaissFlatSearch(bank, query_chunk=qc),
    "torch": lambda bank, qc, bc: TiledTorchSearch(bank, query_chunk=qc, bank_chunk=bc),
    "torch-bf16": lambda bank, qc, bc: TiledTorchSearch(bank, query_chunk=qc, bank_chunk=bc, precision="bf16"),
    "torch-tf32": lambda bank, qc, bc: TiledTorchSearch(bank, query_chunk=qc, bank_chunk=bc, precision="tf32"),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    ("q", "m", "qc", "bc"),
    [
        (300, 500, 64, 128),  # several chunks, ragged last chunk on both axes
        (256, 512, 64, 128),  # exact chunk boundaries
        (7, 5, 64, 128),  # Q and M smaller than one chunk
        (1, 1, 1, 1),  # single row, chunk of one
    ],
)
def test_nearest_matches_brute_force(backend, q, m, qc, bc):
    queries, bank = random_problem(q, m, 16, seed=q + m)
    got = BACKENDS[backend](bank, qc, bc).search(queries)
    assert_close_to_oracle(got, brute_force_nearest(queries, bank))


@pytest.mark.parametrize("backend", BACKENDS)
def test_duplicates_and_queries_in_the_bank_give_zero(backend):
    queries, bank = random_problem(50, 40, 8, seed=1)
    bank = torch.cat([bank, bank[:10]])  # duplicate bank rows
    queries = torch.cat([queries, bank[5:25]])  # queries that are exactly bank rows
    got = BACKENDS[backend](bank, 16, 32).search(queries)
    want = brute_force_nearest(queries, bank)
    assert_close_to_oracle(got, want)
    assert (got >= 0).all()
    assert torch.all(got[-20:] <= 1e-4)


def test_low_precision_shortlist_is_rechecked_exactly():
    # Near-ties that bf16 cannot separate: the fp32 re-check must still return the exact minimum.
    queries, bank = random_problem(64, 2000, 32, seed=3)
    bank[1000:1064] = queries + 1e-3 * torch.randn(64, 32, generator=torch.Generator().manual_seed(4))
    got = TiledTorchSearch(bank, query_chunk=32, bank_chunk=300, precision="bf16").search(queries)
    np.testing.assert_allclose(got.numpy(), brute_force_nearest(queries, bank), rtol=1e-4, atol=1e-7)


def test_torch_tiles_equal_faiss_within_1e4_relative():
    queries, bank = random_problem(700, 1500, 64, seed=5)
    faiss_d = FaissFlatSearch(bank, query_chunk=256).search(queries)
    torch_d = TiledTorchSearch(bank, query_chunk=128, bank_chunk=512).search(queries)
    np.testing.assert_allclose(torch_d.numpy(), faiss_d.numpy(), rtol=1e-4)


class LargestResult(TorchFunctionMode):
    """Records the largest tensor any torch call returns — every intermediate of the search."""

    def __init__(self) -> None:
        super().__init__()
        self.largest = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, tuple) else (out,):
            if isinstance(t, torch.Tensor):
                self.largest = max(self.largest, t.numel() * t.element_size())
        return out


def test_torch_tiles_never_allocate_the_full_distance_matrix():
    q, m, c, qc, bc = 400, 1200, 4, 100, 256
    queries, bank = random_problem(q, m, c, seed=6)
    for precision in ("fp32", "bf16"):
        search = TiledTorchSearch(bank, query_chunk=qc, bank_chunk=bc, precision=precision)
        with LargestResult() as spy:
            search.search(queries)
        # the largest result is one [qc, bc] tile (inputs, output and re-check gather are smaller here)
        assert spy.largest == qc * bc * 4 < q * m * 4


def test_faiss_is_searched_in_bounded_query_chunks():
    queries, bank = random_problem(1000, 50, 8, seed=7)
    search = FaissFlatSearch(bank, query_chunk=128)
    seen = []
    original = search.index.search

    def spy(x, k):
        seen.append((len(x), k))
        return original(x, k)

    search.index.search = spy
    search.search(queries)
    assert max(rows for rows, _ in seen) == 128 and sum(rows for rows, _ in seen) == 1000
    assert all(k == 1 for _, k in seen)


def test_faiss_bank_view_is_the_bank():
    _, bank = random_problem(1, 30, 4, seed=8)
    assert torch.equal(FaissFlatSearch(bank).bank, bank)


@pytest.mark.parametrize("inner", ["faiss", "torch"])
@pytest.mark.parametrize(("c", "dims"), [(12, 3), (40, 16), (8, 7)])
def test_projected_search_equals_brute_force_on_numpys_principal_axes(inner, c, dims):
    queries, bank = random_problem(120, 300, c, seed=c + dims)
    bank[:, : c // 2] *= 4  # a few dominant directions, as CNN features have
    search = ProjectedSearch(bank, dims, lambda rows: BACKENDS[inner](rows, 64, 128))
    mean = bank.double().mean(0)
    axes = torch.from_numpy(np.linalg.svd((bank.double() - mean).numpy(), full_matrices=False)[2][:dims].T)
    want = brute_force_nearest((queries.double() - mean) @ axes, (bank.double() - mean) @ axes)
    got = search.search(queries)
    assert_close_to_oracle(got, want)
    exact = brute_force_nearest(queries, bank)
    assert (got.numpy() <= exact * (1 + 1e-5) + 1e-4).all()  # an orthogonal projection never lengthens
    assert (got.numpy() < exact * 0.99).any()  # and here it shortens: it is an approximation
    assert search.bank is not None and search.bank.shape == bank.shape  # the full rows, for saving
