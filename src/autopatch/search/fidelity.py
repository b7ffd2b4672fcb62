"""How exactly a search trial scores the validation split: the search's speed/fidelity knobs, as data.

A fidelity changes only how a trial's validation metrics are estimated, never what `export` ships (a model
is always fitted and scored exactly). It is recorded with the study, and a resume with another is refused.
Torch-free, so the CLI's --help lists the presets without importing torch.

* `bank_fraction`: a seeded random part of the train patches forms the bank (`bank.MemoryBank`).
* `query_stride`: only every s-th validation patch in each direction is queried; the patches between are
  filled bilinearly (`segmenter.scoring.PatchScorer.score`).
* `projection`: the 1-NN runs on the bank's D leading principal axes (`bank.knn.ProjectedSearch`).

How each preset was chosen, and what it costs in rank agreement against `full`, is in the README
(`python benchmarks/search.py`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from autopatch.errors import AutopatchError, check_fraction, check_positive


@dataclass(frozen=True)
class Fidelity:
    """One fidelity: see the module docstring. The defaults are full fidelity (exact, whole bank, every query)."""

    bank_fraction: float = 1.0
    query_stride: int = 1
    projection: int | None = None

    def __post_init__(self) -> None:
        check_fraction("--bank-fraction", self.bank_fraction)
        check_positive("--query-stride", self.query_stride)
        if self.projection is not None:
            check_positive("--projection", self.projection)

    def replace(self, **changes: Any) -> Fidelity:
        """This fidelity with the given knobs changed; a None value leaves that knob as it is."""
        return replace(self, **{key: value for key, value in changes.items() if value is not None})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def exact(self) -> bool:
        """Every query answered exactly (the bank may still be a fraction)."""
        return self.query_stride == 1 and self.projection is None

    def exact_rescore(self) -> Fidelity:
        """How `export --trial best` re-scores a study's candidates: its bank fraction, every query answered
        exactly, no projection."""
        return Fidelity(self.bank_fraction)

    def describe(self) -> str:
        projection = "none" if self.projection is None else f"{self.projection} dims"
        return f"bank fraction {self.bank_fraction:g}, query stride {self.query_stride}, projection {projection}"

    @classmethod
    def recorded(cls, study_attrs: dict[str, Any]) -> Fidelity:
        """The fidelity a study's trials were scored at, from its recorded attributes (older ones included)."""
        knobs = {**LEGACY_FIDELITY, "bank_fraction": 1.0, **study_attrs}
        return cls(float(knobs["bank_fraction"]), int(knobs["query_stride"]), knobs["projection"])


FULL = Fidelity()
FIDELITIES = {
    "full": FULL,
    "fast": Fidelity(bank_fraction=0.1, query_stride=2, projection=32),
}
DEFAULT_FIDELITY = "fast"
LEGACY_FIDELITY = {"query_stride": 1, "projection": None}  # what a study made before these knobs existed used


def get_fidelity(name: str) -> Fidelity:
    """The preset called `name` (one of FIDELITIES)."""
    if name not in FIDELITIES:
        raise AutopatchError(f"--fidelity {name!r} is unknown; use one of {', '.join(FIDELITIES)}")
    return FIDELITIES[name]
