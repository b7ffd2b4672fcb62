"""The memory bank: normal training patches, queried by exact 1-NN squared L2 distance.

``fraction`` keeps a seeded random subset of the rows — the cheap fidelity knob the search uses on
CPU. The kept count is ``max(1, floor(fraction * M + 0.5))`` (round half up), taken as
``torch.randperm(M, generator=torch.Generator().manual_seed(seed))[:n]`` sorted, so the same
(M, fraction, seed) always keeps the same rows in their original order. ``MemoryBank.fit_from`` asks a
caller for those rows only, so the patches a bank would drop are never computed.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from autopatch.bank.knn import (
    PRECISIONS,
    FaissFlatSearch,
    NearestSearch,
    ProjectedSearch,
    TiledTorchSearch,
    faiss_available,
)
from autopatch.errors import AutopatchError, check_fraction, check_positive

BACKENDS = ("auto", "faiss", "torch")
STATE_VERSION = 1


def kept_rows(total: int, fraction: float) -> int:
    """How many bank rows a fraction keeps (round half up, at least one)."""
    return max(1, math.floor(fraction * total + 0.5))


def kept_indices(total: int, fraction: float, seed: int) -> torch.Tensor:
    """The (sorted, CPU int64) row indices a bank of `total` rows keeps at `fraction` with `seed`;
    all rows when fraction is 1. MemoryBank.fit keeps exactly these rows."""
    if fraction >= 1.0:
        return torch.arange(total)
    generator = torch.Generator().manual_seed(int(seed))
    return torch.randperm(total, generator=generator)[: kept_rows(total, fraction)].sort().values


def _check_matrix(x: torch.Tensor, what: str) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() != 2:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise AutopatchError(f"{what} must be a 2-D float tensor [rows, channels], got {shape}")
    if not x.is_floating_point():
        raise AutopatchError(f"{what} must be a float tensor, got dtype {x.dtype}; cast with .float()")
    if x.shape[1] == 0:
        raise AutopatchError(f"{what} has 0 channels; patches need at least one feature channel")
    if not bool(torch.isfinite(x).all()):
        raise AutopatchError(f"{what} contains NaN or Inf values; check the encoder output / input images")


class MemoryBank:
    """Bank of patch vectors answering ``nearest(queries)`` = squared L2 to the closest bank row.

    backend: "auto" uses faiss IndexFlatL2 on CPU (torch tiles if faiss is missing) and tiled torch
    matmuls on CUDA. precision "tf32"/"bf16" shortlists candidates in low precision and re-checks
    them in fp32 (torch backend only). `projection` D answers approximately, on the bank's D leading
    principal axes (`knn.ProjectedSearch`, a search fidelity); a bank with at most D channels answers exactly.
    """

    def __init__(
        self,
        device: str | torch.device = "cpu",
        fraction: float = 1.0,
        seed: int = 0,
        *,
        backend: str = "auto",
        precision: str = "fp32",
        query_chunk: int | None = None,
        bank_chunk: int = 16384,
        projection: int | None = None,
    ) -> None:
        check_fraction("bank fraction", fraction)
        if projection is not None:
            check_positive("bank projection", projection)
        if backend not in BACKENDS:
            raise AutopatchError(f"bank backend must be one of {BACKENDS}, got {backend!r}")
        if precision not in PRECISIONS:
            raise AutopatchError(f"bank precision must be one of {PRECISIONS}, got {precision!r}")
        self.device = torch.device(device)
        self.fraction = float(fraction)
        self.seed = int(seed)
        self.backend = self._resolve_backend(backend, precision)
        self.precision = precision
        self.query_chunk = query_chunk
        self.bank_chunk = bank_chunk
        self.projection = projection
        self._search: NearestSearch | None = None
        self._patches: torch.Tensor | None = None

    def _resolve_backend(self, backend: str, precision: str) -> str:
        if backend == "faiss":
            if not faiss_available():
                raise AutopatchError("bank backend 'faiss' requested but faiss is not installed; pip install faiss-cpu")
            if self.device.type != "cpu" or precision != "fp32":
                raise AutopatchError(
                    "bank backend 'faiss' runs on device 'cpu' with precision 'fp32' only; use backend='torch'"
                )
            return "faiss"
        if backend == "torch":
            return "torch"
        use_faiss = self.device.type == "cpu" and precision == "fp32" and faiss_available()
        return "faiss" if use_faiss else "torch"

    @property
    def patches(self) -> torch.Tensor:
        """The kept bank rows [M_kept, C] float32 (read-only: the search was built from them)."""
        if self._patches is None:
            raise AutopatchError("memory bank is empty; call MemoryBank.fit(patches) first")
        return self._patches

    def fit(self, patches: torch.Tensor) -> MemoryBank:
        """Keep `fraction` of the rows of `patches` [M, C] (all at fraction 1); returns self."""
        _check_matrix(patches, "memory bank patches")
        def kept(keep: torch.Tensor) -> torch.Tensor:
            return patches if len(keep) == len(patches) else patches[keep.to(patches.device)]

        return self.fit_from(len(patches), kept)

    def fit_from(self, total: int, rows: Callable[[torch.Tensor], torch.Tensor]) -> MemoryBank:
        """Fit from `total` candidate rows given lazily: `rows(indices)` returns the rows at `indices`
        (sorted, CPU int64), and only the kept ones are asked for, so a caller computes a fraction of them."""
        if total == 0:
            raise AutopatchError("memory bank patches are empty (0 rows); fit needs at least one normal patch")
        patches = rows(kept_indices(total, self.fraction, self.seed))
        _check_matrix(patches, "memory bank patches")
        self._build(patches)
        return self

    def _build(self, patches: torch.Tensor) -> None:
        patches = patches.detach().to(self.device, torch.float32)
        chunk = {} if self.query_chunk is None else {"query_chunk": self.query_chunk}
        def exact(rows: torch.Tensor) -> NearestSearch:
            if self.backend == "faiss":
                return FaissFlatSearch(rows, **chunk)
            return TiledTorchSearch(rows, bank_chunk=self.bank_chunk, precision=self.precision, **chunk)

        search: NearestSearch
        if self.projection is not None and self.projection < patches.shape[1]:
            search = ProjectedSearch(patches, self.projection, exact)
        else:
            search = exact(patches)
        self._patches = search.bank
        self._search = search

    def nearest(self, queries: torch.Tensor) -> torch.Tensor:
        """Squared L2 distance of every query row to its nearest bank row: float32 [Q] on the bank's device."""
        bank = self.patches
        _check_matrix(queries, "query patches")
        if queries.shape[1] != bank.shape[1]:
            raise AutopatchError(
                f"query patches have {queries.shape[1]} channels but the memory bank has {bank.shape[1]}; "
                "use the same encoder blocks and patch sizes for fit and predict"
            )
        assert self._search is not None
        return self._search.search(queries).to(self.device)

    def state_dict(self) -> dict:
        """Plain tensors/ints/floats/strs only, so it saves with torch.save and loads with weights_only=True."""
        return {
            "version": STATE_VERSION,
            "patches": self.patches.detach().cpu().clone(),
            "fraction": self.fraction,
            "seed": self.seed,
            "precision": self.precision,
        }

    @classmethod
    def from_state_dict(
        cls, state: dict, device: str | torch.device = "cpu", backend: str = "auto", precision: str | None = None
    ) -> MemoryBank:
        """Rebuild a fitted bank; the stored rows are already the kept subset, so nothing is re-sampled.

        device/backend/precision are run-time choices (a bank fitted on CUDA loads on CPU); precision
        None keeps the stored one.
        """
        missing = {"version", "patches", "fraction", "seed", "precision"} - set(state)
        if missing:
            raise AutopatchError(
                f"memory bank state is missing {sorted(missing)}; the model file is damaged or not an autopatch model"
            )
        if state["version"] > STATE_VERSION:
            raise AutopatchError(
                f"memory bank state version {state['version']} is newer than this autopatch "
                f"({STATE_VERSION}); upgrade autopatch"
            )
        precision = precision or state["precision"]
        bank = cls(device, state["fraction"], state["seed"], backend=backend, precision=precision)
        _check_matrix(state["patches"], "memory bank state patches")
        bank._build(state["patches"])
        return bank
