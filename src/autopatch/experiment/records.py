"""What an experiment produces, as plain JSON-able records: the tables and figures are built from these alone.

A `RunRecord` is one model re-fitted on the train split and scored on the (shared) test split: a search's
chosen trial or the baseline. A `FrontPoint` is one Pareto-front trial of a search with its test rwAP
(the paper's Figure 2 plots these). Keeping them separate from the code that makes them lets the tables
be tested on hand-made records and lets a rerun rebuild every file from the cache.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

METRIC_KEYS = ("auroc", "pauroc_0.3", "ap", "rwap", "aupro_0.3", "image_auroc", "image_ap")  # Table 5's columns
METRIC_LABELS = {"auroc": "AUROC", "pauroc_0.3": "AUROC@0.3", "ap": "AP", "rwap": "rwAP", "aupro_0.3": "AUPRO@0.3",
                 "image_auroc": "image AUROC", "image_ap": "image AP"}  # fmt: skip
ORACLE = "Test'"
BASELINE = "baseline"
BEST = "best"
BUDGET = "budget"
HIGHEST = "highest"  # the front's highest validation rwAP, the pick before the noise was in view
DEFAULT = "default"  # one of the space's default architectures (every search scores them first)
SYNTHETIC = "k=0 (synthetic)"  # the searches validated on synthetic anomalies only (data.synthetic)


def method_name(k: int) -> str:
    """The table column of the searches validated with `k` anomalies per defect type."""
    return f"k={k}"


@dataclass(frozen=True)
class RunRecord:
    """dataset: table row label; method: 'k=1'.. / 'k=0 (synthetic)' / "Test'" / 'baseline'; seed: the search's
    seed (None for the baseline); selection: 'best' (the pick: `search.pareto.select_lower_bound`, or the search's
    reference model, with `trial` None, when that pick does not beat it: `search.reference`), 'budget' (the same
    within --max-gflops), 'highest' (the front's highest val rwAP), 'default' (a default architecture) or
    'baseline';
    metrics: test-split rwap, ap, auroc, pauroc_0.3, aupro_0.3 (fractions, not %)."""

    dataset: str
    method: str
    seed: int | None
    selection: str
    architecture: str
    gflops: float
    metrics: dict[str, float]
    trial: int | None = None
    val_rwap: float | None = None
    images_per_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class FrontPoint:
    """One trial of a search's validation Pareto front, re-fitted and scored on the test split."""

    dataset: str
    method: str
    seed: int
    trial: int
    gflops: float
    val_rwap: float
    test_rwap: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ExperimentResults:
    """Everything the tables and figures need; `methods` fixes the column order (k=1, k=2, ..., Test');
    `setup` (space, trials, image size, ...) is printed under every table so a number never loses its context."""

    methods: list[str]
    baseline_name: str | None
    records: list[RunRecord] = field(default_factory=list)
    fronts: list[FrontPoint] = field(default_factory=list)
    setup: str | None = None

    @property
    def datasets(self) -> list[str]:
        """Dataset labels in first-seen order."""
        return list(dict.fromkeys([r.dataset for r in self.records] + [p.dataset for p in self.fronts]))
