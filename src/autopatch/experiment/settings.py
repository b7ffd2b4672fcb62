"""What `autopatch experiment` takes (checked once, when the settings are made) and the searches it implies."""

from __future__ import annotations

from dataclasses import dataclass

from autopatch.backbones import list_encoders
from autopatch.data import FolderDataset
from autopatch.data.synthetic import MIX, check_kind
from autopatch.errors import AutopatchError, check_count, check_fraction, check_positive
from autopatch.experiment.records import ORACLE, SYNTHETIC, method_name
from autopatch.image_size import image_size_spec
from autopatch.search.fidelity import DEFAULT_FIDELITY, Fidelity, get_fidelity

HOLDOUT_ANOMALIES = 4  # the data module's default: k = 1, 2, 4 share one test split


@dataclass(frozen=True)
class ExperimentSettings:
    """Everything `autopatch experiment` takes; `baseline` None skips the baseline (and Figure 3)."""

    data_roots: tuple[str, ...]
    categories: tuple[str, ...]
    out: str
    ks: tuple[int, ...] = (1, 2, 4)
    seeds: tuple[int, ...] = (0, 1, 2)
    trials: int = 100
    space: str = "pretrained"
    max_gflops: float | None = None
    baseline: str | None = "wide_resnet50_2"
    baseline_layers: tuple[int, ...] | None = None
    baseline_coreset: float = 0.1
    image_size: int | str = 224  # S or "HxW", as `image_size.image_size_spec` records it
    fidelity: str = DEFAULT_FIDELITY  # of the searches (`search.fidelity`); re-fits are always exact
    bank_fraction: float | None = None  # searches and re-fits; None: the fidelity's, and the whole bank for re-fits
    storage: str | None = None
    device: str = "auto"
    batch_size: int = 32
    examples_per_type: int = 2
    folders: FolderDataset | None = None  # a folder dataset instead of data_roots / categories (both empty)
    synthetic: int = 0  # > 0: a "k=0 (synthetic)" search per seed, validated on this many synthetic anomalies
    synthetic_kind: str = MIX

    def __post_init__(self) -> None:
        if not self.ks or min(self.ks) < 1 or len(set(self.ks)) != len(self.ks):
            raise AutopatchError(f"--k {list(self.ks)} must be distinct positive integers, e.g. 1,2,4")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise AutopatchError(f"--seeds {list(self.seeds)} must be distinct integers, e.g. 0,1,2")
        check_positive("--trials", self.trials)
        check_positive("--examples-per-type", self.examples_per_type)
        check_positive("--batch-size", self.batch_size)
        check_count("--synthetic", self.synthetic, 0)
        check_kind(self.synthetic_kind)
        object.__setattr__(self, "image_size", image_size_spec(self.image_size))
        _ = self.search_fidelity  # an unknown preset or a bad fraction is one line here
        check_fraction("--baseline-coreset", self.baseline_coreset)
        if self.baseline is not None and self.baseline not in list_encoders():
            names = ", ".join(list_encoders())
            raise AutopatchError(f"--baseline {self.baseline!r} is not a registry encoder; choose {names} or none")

    @property
    def search_fidelity(self) -> Fidelity:
        """How the searches score their trials: the `fidelity` preset with `bank_fraction` when given."""
        return get_fidelity(self.fidelity).replace(bank_fraction=self.bank_fraction)

    @property
    def refit_fraction(self) -> float:
        """The bank fraction of every re-fit: `bank_fraction`, else the whole bank."""
        return 1.0 if self.bank_fraction is None else self.bank_fraction

    @property
    def holdout(self) -> int:
        """Anomalies per defect type kept out of the test split (so every k shares one test split)."""
        return max(HOLDOUT_ANOMALIES, *self.ks)

    def setup(self) -> str:
        """One line under every table: what each search and re-fit was run with."""
        seeds = ",".join(map(str, self.seeds))
        return (
            f"{self.space} space, {self.trials} complete trials per search, seeds {seeds}, {self.image_size} px, "
            f"searches at fidelity {self.fidelity} (bank fraction {self.search_fidelity.bank_fraction:g}), "
            f"re-fits with bank fraction {self.refit_fraction:g}"
            + (f", {SYNTHETIC}: {self.synthetic} synthetic anomalies ({self.synthetic_kind})" if self.synthetic else "")
        )

    def searches(self) -> list[SearchSpec]:
        """Per seed: one search per k, the k=0 (synthetic) one when `synthetic` > 0, then the Test' search
        (validated on the test anomalies from min(k))."""
        specs = []
        for seed in self.seeds:
            specs += [SearchSpec(method_name(k), k, seed, False) for k in self.ks]
            if self.synthetic:
                specs.append(SearchSpec(SYNTHETIC, 0, seed, False, self.synthetic, self.synthetic_kind))
            specs.append(SearchSpec(ORACLE, min(self.ks), seed, True))
        return specs

    @property
    def baseline_search(self) -> SearchSpec:
        """The search whose splits the baseline fits on (min(k)'s, as the cache key records)."""
        return SearchSpec(method_name(min(self.ks)), min(self.ks), self.seeds[0], False)

    def methods(self) -> list[str]:
        """The table columns of the searches, in the order they run."""
        return list(dict.fromkeys(spec.method for spec in self.searches()))


@dataclass(frozen=True)
class SearchSpec:
    """One search of a dataset: its column (method), k of the validation split, seed, oracle or not, and the
    synthetic anomalies added to its validation split."""

    method: str
    k: int
    seed: int
    oracle: bool
    synthetic: int = 0
    synthetic_kind: str = MIX
