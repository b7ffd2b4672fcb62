"""Exact 1-NN squared L2 distance, the hot loop of every fit/predict.

Two backends return the same numbers (what faiss ``IndexFlatL2`` returns: float32 squared L2 to the
nearest bank row):

* ``FaissFlatSearch`` — faiss ``IndexFlatL2`` on CPU. faiss already blocks the distance matrix
  internally (4096 queries x 1024 bank rows per BLAS call), so we only chunk the queries to bound the
  returned arrays; the bank lives once, contiguous, inside the index.
* ``TiledTorchSearch`` — ``||q||^2 - 2 q.b + ||b||^2`` as tiled matmuls with a running minimum over
  bank tiles, clamped at 0. Used on CUDA and as the CPU fallback when faiss is missing. With
  ``precision="tf32"|"bf16"`` each tile's matmul runs in low precision only to shortlist ``top_k``
  candidates per query; the winner is then re-checked exactly in fp32 so the result stays exact
  unless the true neighbour is not among the shortlist.

``ProjectedSearch`` is the one approximate search, a search fidelity: bank and queries projected onto the
bank's leading principal axes, then one of the two exact backends in that space.

Neither backend ever materialises the full Q x M distance matrix: peak extra memory is
``query_chunk x bank_chunk`` floats (torch) or faiss's fixed internal block.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Protocol

import numpy as np
import torch

try:  # faiss is a hard dependency in pyproject, but the torch path must work without it.
    import faiss
except ImportError:  # pragma: no cover - exercised only on installs without faiss
    faiss = None

PRECISIONS = ("fp32", "tf32", "bf16")


class NearestSearch(Protocol):
    """A fitted bank that answers exact 1-NN squared L2 queries."""

    bank: torch.Tensor

    def search(self, queries: torch.Tensor) -> torch.Tensor: ...


def faiss_available() -> bool:
    return faiss is not None


class FaissFlatSearch:
    """faiss IndexFlatL2 holding a copy of the bank; ``bank`` is torch-owned, so it stays valid after the
    index is gone (a view of the index's memory would dangle once the index is freed)."""

    def __init__(self, bank: torch.Tensor, query_chunk: int = 65536) -> None:
        if faiss is None:
            raise RuntimeError("faiss is not installed")
        self.bank = bank.detach().to("cpu", torch.float32).contiguous()
        self.index = faiss.IndexFlatL2(self.bank.shape[1])
        self.index.add(self.bank.numpy())
        self.query_chunk = query_chunk

    def search(self, queries: torch.Tensor) -> torch.Tensor:
        q = np.ascontiguousarray(queries.detach().cpu().numpy(), dtype=np.float32)
        out = np.empty(len(q), dtype=np.float32)
        for start in range(0, len(q), self.query_chunk):
            dist, _ = self.index.search(q[start : start + self.query_chunk], 1)
            out[start : start + len(dist)] = dist[:, 0]
        return torch.from_numpy(out)


@contextlib.contextmanager
def _tf32_matmul(enabled: bool) -> Iterator[None]:
    """Allow TF32 for the shortlist matmuls only; restore the user's global setting afterwards."""
    previous = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = previous


def tiled_min_distances(
    queries: torch.Tensor, bank: torch.Tensor, bank_sqnorm: torch.Tensor, bank_chunk: int
) -> torch.Tensor:
    """Exact squared L2 from each query row to its nearest bank row: ||b||^2 - 2 q.b per bank tile of
    `bank_chunk` rows, a running minimum over tiles, then + ||q||^2, clamped at 0. Functional (no in-place
    writes), so the same arithmetic also traces into an exported graph with the bank as a constant."""
    best: torch.Tensor | None = None
    for start in range(0, bank.shape[0], bank_chunk):
        tile = torch.addmm(bank_sqnorm[start : start + bank_chunk].unsqueeze(0), queries,
                           bank[start : start + bank_chunk].T, alpha=-2.0).amin(dim=1)  # fmt: skip
        best = tile if best is None else torch.minimum(best, tile)
    if best is None:
        raise ValueError("the bank has no rows")
    return (best + (queries * queries).sum(1)).clamp(min=0.0)


class TiledTorchSearch:
    """Tiled matmul 1-NN on any torch device (CUDA hot path, CPU fallback)."""

    def __init__(
        self,
        bank: torch.Tensor,
        query_chunk: int = 4096,
        bank_chunk: int = 16384,
        precision: str = "fp32",
        top_k: int = 4,
    ) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        self.bank = bank.contiguous()
        self.bank_sqnorm = (self.bank * self.bank).sum(1)
        self.query_chunk = query_chunk
        self.bank_chunk = bank_chunk
        self.precision = precision
        self.top_k = top_k
        # Low-precision copy made once so every query chunk reuses it.
        self._bank_low = self.bank.to(torch.bfloat16) if precision == "bf16" else self.bank

    def search(self, queries: torch.Tensor) -> torch.Tensor:
        queries = queries.to(self.bank.device, torch.float32)
        out = torch.empty(len(queries), dtype=torch.float32, device=self.bank.device)
        for start in range(0, len(queries), self.query_chunk):
            q = queries[start : start + self.query_chunk]
            if self.precision == "fp32":
                out[start : start + len(q)] = self._exact_min(q)
            else:
                out[start : start + len(q)] = self._shortlist_then_recheck(q)
        return out

    def _exact_min(self, q: torch.Tensor) -> torch.Tensor:
        with _tf32_matmul(False):
            return tiled_min_distances(q, self.bank, self.bank_sqnorm, self.bank_chunk)

    def _shortlist_then_recheck(self, q: torch.Tensor) -> torch.Tensor:
        k = min(self.top_k, len(self.bank))
        cand_val = torch.full((len(q), k), float("inf"), device=q.device)
        cand_idx = torch.zeros((len(q), k), dtype=torch.long, device=q.device)
        q_low = q.to(torch.bfloat16) if self.precision == "bf16" else q
        for start in range(0, len(self.bank), self.bank_chunk):
            b = self._bank_low[start : start + self.bank_chunk]
            bn = self.bank_sqnorm[start : start + self.bank_chunk]
            with _tf32_matmul(self.precision == "tf32"):
                dots = q_low @ b.T
            tile = bn.unsqueeze(0) - 2.0 * dots.float()
            val, idx = tile.topk(min(k, len(b)), dim=1, largest=False)
            merged_val = torch.cat([cand_val, val], dim=1)
            merged_idx = torch.cat([cand_idx, idx + start], dim=1)
            cand_val, pos = merged_val.topk(k, dim=1, largest=False)
            cand_idx = merged_idx.gather(1, pos)
        # Exact fp32 re-check of the shortlist: direct differences, no cancellation.
        diff = self.bank[cand_idx] - q.unsqueeze(1)  # [qc, k, C] — small: k is a handful
        return (diff * diff).sum(2).amin(dim=1)


class ProjectedSearch:
    """Approximate 1-NN for search trials: bank rows and queries are centred on the bank's mean and projected
    onto its `dims` leading principal axes (PCA of the bank rows), and `inner` answers exactly in that space.
    The returned distances are the projected ones (never above the exact ones: the projection is orthogonal).
    ``bank`` keeps the full rows, so a saved bank is the exact one."""

    def __init__(self, bank: torch.Tensor, dims: int, inner: Callable[[torch.Tensor], NearestSearch]) -> None:
        self.bank = bank.contiguous()
        self.mean = self.bank.mean(0)
        centred = self.bank - self.mean
        covariance = (centred.T @ centred).double()
        _, axes = torch.linalg.eigh(covariance)  # ascending eigenvalues: the leading axes are the last columns
        self.axes = axes[:, -dims:].to(self.bank.dtype).contiguous()
        self.inner = inner(centred @ self.axes)

    def search(self, queries: torch.Tensor) -> torch.Tensor:
        queries = queries.to(self.bank.device, self.bank.dtype)
        return self.inner.search((queries - self.mean) @ self.axes)
