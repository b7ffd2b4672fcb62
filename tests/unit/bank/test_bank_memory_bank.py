"""MemoryBank: fraction subsets, devices/backends, state_dict round trip, bad input."""

import io

import numpy as np
import pytest
import torch

from autopatch.bank import MemoryBank
from autopatch.bank.memory_bank import kept_indices, kept_rows
from autopatch.errors import AutopatchError


def data(m: int = 200, q: int = 60, c: int = 12, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(m, c, generator=g), torch.randn(q, c, generator=g)


def oracle(queries, bank):
    b = bank.double().numpy()
    return np.array([((b - q) ** 2).sum(1).min() for q in queries.double().numpy()])


@pytest.mark.parametrize("backend", ["auto", "faiss", "torch"])
def test_nearest_is_exact_squared_l2(backend):
    bank, queries = data()
    bank_obj = MemoryBank(backend=backend, query_chunk=16, bank_chunk=50).fit(bank)
    got = bank_obj.nearest(queries)
    assert got.dtype == torch.float32 and got.device.type == "cpu"
    np.testing.assert_allclose(got.numpy(), oracle(queries, bank), rtol=1e-4, atol=1e-4)
    assert torch.equal(bank_obj.patches, bank)


def test_auto_backend_is_faiss_on_cpu_and_torch_for_low_precision():
    assert MemoryBank().backend == "faiss"
    assert MemoryBank(precision="bf16").backend == "torch"


@pytest.mark.parametrize(
    ("m", "fraction", "expected"), [(200, 0.1, 20), (10, 0.25, 3), (10, 0.24, 2), (7, 0.01, 1), (9, 1.0, 9)]
)
def test_kept_rows_rounds_half_up_and_keeps_at_least_one(m, fraction, expected):
    assert kept_rows(m, fraction) == expected


def test_fraction_keeps_a_seeded_reproducible_subset_in_original_order():
    bank, queries = data()
    a = MemoryBank(fraction=0.3, seed=4).fit(bank)
    b = MemoryBank(fraction=0.3, seed=4).fit(bank)
    c = MemoryBank(fraction=0.3, seed=5).fit(bank)
    assert len(a.patches) == 60
    assert torch.equal(a.patches, b.patches) and not torch.equal(a.patches, c.patches)
    # every kept row is a bank row, no repeats, original order preserved
    rows = [int(np.flatnonzero((bank == r).all(1).numpy())[0]) for r in a.patches]
    assert rows == sorted(set(rows))
    # the search is exact against the kept subset (fraction trades fidelity, not exactness)
    np.testing.assert_allclose(a.nearest(queries).numpy(), oracle(queries, a.patches), rtol=1e-4, atol=1e-4)


def test_fraction_subset_is_the_same_for_torch_and_faiss_backends():
    bank, queries = data()
    fa = MemoryBank(fraction=0.5, seed=1, backend="faiss").fit(bank)
    to = MemoryBank(fraction=0.5, seed=1, backend="torch").fit(bank)
    assert torch.equal(fa.patches, to.patches)
    np.testing.assert_allclose(to.nearest(queries).numpy(), fa.nearest(queries).numpy(), rtol=1e-4)


@pytest.mark.parametrize("backend", ["faiss", "torch"])
def test_state_dict_round_trip_through_weights_only_load(backend):
    bank, queries = data()
    fitted = MemoryBank(fraction=0.5, seed=2, backend=backend).fit(bank)
    buffer = io.BytesIO()
    torch.save(fitted.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    loaded = MemoryBank.from_state_dict(state, backend=backend)
    assert torch.equal(loaded.patches, fitted.patches)
    assert (loaded.fraction, loaded.seed) == (0.5, 2)
    assert torch.equal(loaded.nearest(queries), fitted.nearest(queries))


def test_state_dict_does_not_alias_the_live_bank():
    bank, _ = data()
    fitted = MemoryBank().fit(bank)
    state = fitted.state_dict()
    state["patches"].zero_()
    assert torch.equal(fitted.patches, bank)


@pytest.mark.parametrize(
    ("state_change", "message"),
    [({"version": 99}, "newer"), ({"patches": None}, "missing")],
)
def test_bad_state_dict_is_rejected(state_change, message):
    bank, _ = data()
    state = MemoryBank().fit(bank).state_dict()
    state.update(state_change)
    if state_change.get("patches", 0) is None:
        del state["patches"]
    with pytest.raises(AutopatchError, match=message):
        MemoryBank.from_state_dict(state)


@pytest.mark.parametrize("fraction", [0.0, -0.1, 1.5, float("nan")])
def test_fraction_outside_unit_interval_is_rejected(fraction):
    with pytest.raises(AutopatchError, match="fraction"):
        MemoryBank(fraction=fraction)


@pytest.mark.parametrize("backend", ["faiss", "torch"])
def test_bad_bank_and_query_inputs_are_rejected(backend):
    bank, queries = data()
    with pytest.raises(AutopatchError, match="empty"):
        MemoryBank(backend=backend).fit(torch.empty(0, 12))
    with pytest.raises(AutopatchError, match="empty"):
        MemoryBank(backend=backend).nearest(queries)
    nan_bank = bank.clone()
    nan_bank[3, 4] = float("nan")
    with pytest.raises(AutopatchError, match="NaN"):
        MemoryBank(backend=backend).fit(nan_bank)
    with pytest.raises(AutopatchError, match="2-D"):
        MemoryBank(backend=backend).fit(bank[0])
    with pytest.raises(AutopatchError, match="float"):
        MemoryBank(backend=backend).fit(bank.long())
    fitted = MemoryBank(backend=backend).fit(bank)
    with pytest.raises(AutopatchError, match="channels"):
        fitted.nearest(queries[:, :5])
    with pytest.raises(AutopatchError, match="NaN"):
        fitted.nearest(torch.full((2, 12), float("inf")))


def test_unknown_backend_or_precision_is_rejected():
    with pytest.raises(AutopatchError, match="backend"):
        MemoryBank(backend="annoy")
    with pytest.raises(AutopatchError, match="precision"):
        MemoryBank(precision="fp8")
    with pytest.raises(AutopatchError, match="faiss"):
        MemoryBank(backend="faiss", precision="bf16")


def test_empty_query_set_gives_empty_result():
    bank, _ = data()
    assert MemoryBank().fit(bank).nearest(torch.empty(0, 12)).shape == (0,)


@pytest.mark.parametrize(("m", "fraction", "seed"), [(200, 0.3, 4), (17, 0.1, 0), (9, 1.0, 2), (1, 0.5, 1)])
def test_fit_keeps_exactly_the_kept_indices(m, fraction, seed):
    bank = torch.arange(m, dtype=torch.float32).unsqueeze(1).repeat(1, 3)  # row i holds the value i
    keep = kept_indices(m, fraction, seed)
    assert keep.dtype == torch.long and len(keep) == kept_rows(m, fraction)
    assert torch.equal(keep, keep.sort().values) and len(set(keep.tolist())) == len(keep)
    patches = MemoryBank(fraction=fraction, seed=seed).fit(bank).patches
    assert torch.equal(patches[:, 0].long(), keep)


@pytest.mark.parametrize("backend", ["faiss", "torch"])
def test_patches_outlive_the_bank_object(backend):
    bank, _ = data(m=5000, c=64)
    patches = MemoryBank(backend=backend).fit(bank).patches  # the bank and its index are freed here
    churn = [torch.randn(5000, 64) for _ in range(4)]  # reuse freed memory
    assert torch.equal(patches, bank) and len(churn) == 4


def test_a_projected_bank_keeps_and_saves_its_full_rows_and_loads_exact():
    bank, queries = data()
    projected = MemoryBank(projection=2).fit(bank)
    exact = MemoryBank().fit(bank)
    assert torch.equal(projected.patches, bank)
    assert not torch.allclose(projected.nearest(queries), exact.nearest(queries))  # 2 of its channels only
    loaded = MemoryBank.from_state_dict(projected.state_dict())  # a search fidelity: never saved with a model
    assert torch.equal(loaded.nearest(queries), exact.nearest(queries))


def test_a_projection_to_as_many_channels_as_the_bank_has_is_exact():
    bank, queries = data()
    wide = MemoryBank(projection=bank.shape[1]).fit(bank)
    assert torch.equal(wide.nearest(queries), MemoryBank().fit(bank).nearest(queries))


@pytest.mark.parametrize("projection", [0, -3, 2.5])
def test_a_bad_projection_is_one_line(projection):
    with pytest.raises(AutopatchError, match=f"bank projection {projection!r} must be a whole number"):
        MemoryBank(projection=projection)
