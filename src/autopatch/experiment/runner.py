"""The paper's §5 experiment as one resumable run: searches, re-fits on the test split, baseline, tables, figures.

Per dataset (a root + category): one search per (k, seed) on the validation split and one Test' (oracle)
search per seed; every trial of each search's validation Pareto front is re-fitted on the train split
(threshold on that k's validation split) and scored on the shared test split, which gives the chosen
trial (highest validation rwAP; and the best within --max-gflops) and Figure 2's test fronts. The
baseline is fitted once per dataset on the same splits.

`bank_fraction` applies to the re-fits as to the searches (same seed), so test and validation numbers
describe the same model. On a CPU the 1-NN search over a full bank of stride-4 patches dominates
everything (bottle at 224 px: ~600k bank rows), so a fraction such as 0.1 is what makes a CPU run of
many trials feasible; 1 (the default) gives the deployable `export` model's numbers.

Resumable at every step: searches are Optuna studies (a finished one is reused, a partial one resumed by
the search-study API), and every re-fit or baseline result is a JSON file under `<out>/cache` whose key
records what produced it; a rerun recomputes only what is missing or was produced differently. The Test'
search validates on the test anomalies from index min(k) on (a superset of the shared test split), and
its chosen trial is scored on the shared test split like every other column: an upper bound.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial

from autopatch.backbones import Encoder, create_encoder, list_encoders
from autopatch.baselines import build_patchcore, describe
from autopatch.data import Splits, load_splits
from autopatch.device import resolve_device
from autopatch.errors import AutopatchError
from autopatch.experiment.cache import ResultCache
from autopatch.experiment.datasets import Dataset, pair_datasets
from autopatch.experiment.records import (
    BASELINE,
    BEST,
    BUDGET,
    METRIC_KEYS,
    ORACLE,
    ExperimentResults,
    FrontPoint,
    RunRecord,
    method_name,
)
from autopatch.experiment.tables import write_tables
from autopatch.report.figures import (
    FrontSeries,
    QualitativeLayout,
    choose_examples,
    save_pareto_fronts,
    save_qualitative,
)
from autopatch.report.pareto_plot import save_pareto_plot
from autopatch.search.architecture import Architecture
from autopatch.search.definition import StudySettings, open_study
from autopatch.search.export import trial_architecture
from autopatch.search.pareto import objectives, pareto_front, select_trial
from autopatch.search.storage import default_storage_url, open_storage
from autopatch.search.study import run_study
from autopatch.segmenter import Segmenter, fit_and_evaluate

CACHE_VERSION = 1
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
    image_size: int = 224
    bank_fraction: float = 1.0
    storage: str | None = None
    device: str = "auto"
    batch_size: int = 32
    examples_per_type: int = 2

    def __post_init__(self) -> None:
        if not self.ks or min(self.ks) < 1 or len(set(self.ks)) != len(self.ks):
            raise AutopatchError(f"--k {list(self.ks)} must be distinct positive integers, e.g. 1,2,4")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise AutopatchError(f"--seeds {list(self.seeds)} must be distinct integers, e.g. 0,1,2")
        if self.trials < 1:
            raise AutopatchError(f"--trials {self.trials} must be at least 1")
        if self.examples_per_type < 1:
            raise AutopatchError(f"--examples-per-type {self.examples_per_type} must be at least 1")
        if not 0.0 < self.bank_fraction <= 1.0:
            raise AutopatchError(f"--bank-fraction {self.bank_fraction} must be in (0, 1], e.g. 0.1")
        if not 0.0 < self.baseline_coreset <= 1.0:
            raise AutopatchError(f"--baseline-coreset {self.baseline_coreset} must be in (0, 1], e.g. 0.1")
        if self.baseline is not None and self.baseline not in list_encoders():
            names = ", ".join(list_encoders())
            raise AutopatchError(f"--baseline {self.baseline!r} is not a registry encoder; choose {names} or none")


@dataclass
class ExperimentOutputs:
    """The records behind every table and figure, the files written, and the qualitative figures' layouts."""

    results: ExperimentResults
    files: list[Path] = field(default_factory=list)
    qualitative: dict[str, QualitativeLayout] = field(default_factory=dict)


@dataclass(frozen=True)
class SearchSpec:
    """One search of a dataset: its column (method), k of the validation split, seed, oracle or not."""

    method: str
    k: int
    seed: int
    oracle: bool


class ExperimentRunner:
    """Runs the experiment of `settings`; `log` receives one line per step (the CLI prints them)."""

    def __init__(
        self, settings: ExperimentSettings, log: Callable[[str], None] = lambda line: None, progress: bool = False
    ) -> None:
        self.settings = settings
        self.log = log
        self.progress = progress
        self.out = Path(settings.out)
        self.study_dir = self.out / "studies"
        self.cache = ResultCache(self.out / "cache")
        self.device = resolve_device(settings.device)
        self.datasets = pair_datasets(settings.data_roots, settings.categories)
        self.holdout = max(HOLDOUT_ANOMALIES, *settings.ks)
        self._encoders: dict[str, Encoder] = {}
        self._splits: dict[int, Splits] = {}

    # --- the whole run ---------------------------------------------------------------------------

    def run(self) -> ExperimentOutputs:
        s = self.settings
        methods = [method_name(k) for k in s.ks] + [ORACLE]
        baseline_name = f"PatchCore {s.baseline}" if s.baseline else None
        outputs = ExperimentOutputs(ExperimentResults(methods, baseline_name, setup=self.setup()))
        for dataset in self.datasets:
            self._splits = {}
            figure_scores = self._run_dataset(dataset, outputs)
            outputs.files += self._figures(dataset, outputs, figure_scores)
        self._splits = {}
        outputs.files += write_tables(outputs.results, self.out, s.max_gflops)
        outputs.files.append(self._write_results(outputs.results))
        return outputs

    def setup(self) -> str:
        """One line under every table: what each search and re-fit was run with."""
        s = self.settings
        seeds = ",".join(map(str, s.seeds))
        return (
            f"{s.space} space, {s.trials} complete trials per search, seeds {seeds}, {s.image_size} px, "
            f"memory-bank fraction {s.bank_fraction:g}"
        )

    def searches(self) -> list[SearchSpec]:
        """Per seed: one search per k, then the Test' search (validated on the test anomalies from min(k))."""
        s = self.settings
        specs = []
        for seed in s.seeds:
            specs += [SearchSpec(method_name(k), k, seed, False) for k in s.ks]
            specs.append(SearchSpec(ORACLE, min(s.ks), seed, True))
        return specs

    def _run_dataset(self, dataset: Dataset, outputs: ExperimentOutputs) -> dict[str, np.ndarray]:
        """Baseline, searches and re-fits of one dataset into `outputs`; returns Figure 3's test score maps
        (baseline first, as in the paper). The baseline runs first: a wrong backbone or missing weights
        should stop the run before hours of search, not after."""
        s = self.settings
        figure_scores: dict[str, np.ndarray] = {}
        if s.baseline:
            payload = self._baseline(dataset)
            outputs.results.records.append(
                RunRecord(dataset.label, BASELINE, None, BASELINE, payload["architecture"], payload["gflops"],
                          payload["metrics"], images_per_s=payload["images_per_s"])
            )  # fmt: skip
            figure_scores[f"PatchCore {s.baseline}"] = np.load(self.cache.scores_path(self._baseline_name(dataset)))
        figure_search = SearchSpec(method_name(s.ks[0]), s.ks[0], s.seeds[0], False)
        for spec in self.searches():
            study = self._study(dataset, spec)
            trials = study.get_trials(deepcopy=False)
            front = pareto_front(trials)
            chosen = {BEST: select_trial(trials, "best")}
            if s.max_gflops is not None:
                try:
                    chosen[BUDGET] = select_trial(trials, "best", s.max_gflops)
                except AutopatchError:
                    self.log(f"[{dataset.label}] {study.study_name}: no trial within {s.max_gflops:g} GFLOPs")
            keep_scores = {chosen[BEST].number} if spec == figure_search else set()
            refits = {}
            for trial in {t.number: t for t in [*front, *chosen.values()]}.values():
                refits[trial.number] = self._refit(dataset, spec, study.study_name, trial, trial.number in keep_scores)
            for trial in front:
                payload = refits[trial.number]
                outputs.results.fronts.append(
                    FrontPoint(dataset.label, spec.method, spec.seed, trial.number, objectives(trial)[0],
                               objectives(trial)[1], payload["metrics"]["rwap"])
                )  # fmt: skip
            for selection, trial in chosen.items():
                payload = refits[trial.number]
                outputs.results.records.append(
                    RunRecord(dataset.label, spec.method, spec.seed, selection, payload["architecture"],
                              payload["gflops"], payload["metrics"], trial.number, objectives(trial)[1],
                              payload["images_per_s"])
                )  # fmt: skip
            if spec == figure_search:
                scores_file = self.cache.scores_path(self._refit_entry(dataset, spec, chosen[BEST])[0])
                figure_scores[f"AutoPatch {spec.method}, seed {spec.seed}"] = np.load(scores_file)
        return figure_scores

    # --- searches --------------------------------------------------------------------------------

    def study_settings(self, dataset: Dataset, spec: SearchSpec) -> StudySettings:
        s = self.settings
        return StudySettings(
            data_root=str(dataset.root.resolve()), category=dataset.category, space=s.space, k=spec.k, seed=spec.seed,
            image_size=s.image_size, oracle=spec.oracle, bank_fraction=s.bank_fraction,
        )  # fmt: skip

    def study_name(self, dataset: Dataset, settings: StudySettings) -> str:
        """The search CLI's default name, so `autopatch search` runs are reused; prefixed when a category
        appears under several roots."""
        name = settings.default_study_name()
        return name if dataset.label == dataset.category else f"{dataset.slug}-{name}"

    def _study(self, dataset: Dataset, spec: SearchSpec) -> optuna.Study:
        """The finished study of `spec`: reused when it holds enough complete trials, else run or resumed."""
        settings = self.study_settings(dataset, spec)
        name = self.study_name(dataset, settings)
        self.study_dir.mkdir(parents=True, exist_ok=True)
        url = self.settings.storage or default_storage_url(self.study_dir, name)
        storage = open_storage(url)
        existing = {summary.study_name for summary in optuna.get_all_study_summaries(storage, include_best_trial=False)}
        complete = 0
        if name in existing:
            try:
                study = open_study(settings, name, storage)  # errors when it was run with other settings
            except AutopatchError as error:
                reason = str(error).split("; pass")[0]  # its hint names `autopatch search` options
                raise AutopatchError(f"{reason}; rerun with that value, or give another --out or --storage") from None
            complete = sum(t.state == optuna.trial.TrialState.COMPLETE for t in study.get_trials(deepcopy=False))
        if complete >= self.settings.trials:
            self.log(f"[{dataset.label}] {name}: reusing {complete} complete trials")
        else:
            self.log(f"[{dataset.label}] {name}: searching to {self.settings.trials} trials ({complete} done)")
            run_study(
                settings, trials=self.settings.trials, device=str(self.device), study_name=name,
                storage_url=self.settings.storage, out_dir=self.study_dir, progress=self.progress,
            )  # fmt: skip
        study = optuna.load_study(study_name=name, storage=storage)
        if self.settings.storage is None:
            save_pareto_plot(study.get_trials(deepcopy=False), self.study_dir / f"{name}.png", title=name)
        return study

    # --- re-fits ---------------------------------------------------------------------------------

    def _splits_for(self, dataset: Dataset, k: int) -> Splits:
        if k not in self._splits:
            self._splits[k] = load_splits(
                dataset.root, dataset.category, k, image_size=self.settings.image_size, holdout_anomalies=self.holdout
            )
        return self._splits[k]

    def _encoder(self, arch: Architecture) -> Encoder:
        """Pretrained encoders loaded once per run (a Segmenter keeps its own truncated copy)."""
        key = json.dumps([arch.encoder, arch.encoder_config], sort_keys=True)
        if key not in self._encoders:
            self._encoders[key] = create_encoder(arch.encoder, pretrained=True, **arch.encoder_config).eval()
        return self._encoders[key]

    def _refit_entry(self, dataset: Dataset, spec: SearchSpec, trial: FrozenTrial) -> tuple[str, dict[str, Any]]:
        """Cache name and key of a re-fit. They depend on what is fitted, not on which study found it, so an
        architecture found by several searches (the k and Test' searches of a seed start with the same random
        trials) is fitted once."""
        key = {
            "version": CACHE_VERSION, "root": str(dataset.root.resolve()), "category": dataset.category,
            "k": spec.k, "holdout": self.holdout, "image_size": self.settings.image_size,
            "bank_fraction": self.settings.bank_fraction, "seed": spec.seed,
            "architecture": trial_architecture(trial).to_dict(),
        }  # fmt: skip
        digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode("utf-8")).hexdigest()[:16]
        return f"refit-{dataset.slug}-{digest}", key

    def _refit(
        self, dataset: Dataset, spec: SearchSpec, study_name: str, trial: FrozenTrial, keep_scores: bool
    ) -> dict[str, Any]:
        """Test-split result of `trial`'s architecture re-fitted on the train split (cached)."""
        arch = trial_architecture(trial)
        name, key = self._refit_entry(dataset, spec, trial)
        cached = self.cache.load(name, key)
        if cached is not None and (not keep_scores or self.cache.scores_path(name).is_file()):
            return cached
        self.log(f"[{dataset.label}] refit {study_name} trial {trial.number}: {arch}")
        segmenter = Segmenter(
            self._encoder(arch), arch.block_ids, arch.patch_sizes, self.settings.image_size,
            bank_fraction=self.settings.bank_fraction, device=self.device, seed=spec.seed,
        )  # fmt: skip
        payload = self._fit_and_score(segmenter, self._splits_for(dataset, spec.k), name if keep_scores else None)
        payload["architecture"] = str(arch)
        self.cache.save(name, key, payload)
        return payload

    def _fit_and_score(self, segmenter: Segmenter, splits: Splits, scores_name: str | None) -> dict[str, Any]:
        """Fit on train, threshold on val, metrics on test (and the test score maps saved when named)."""
        evaluation = fit_and_evaluate(segmenter, splits, batch_size=self.settings.batch_size)
        if scores_name is not None:
            np.save(self.cache.scores_path(scores_name), evaluation.test_scores.astype(np.float32))
        result = evaluation.test
        return {
            "gflops": float(result["gflops"]),
            "images_per_s": float(result["images_per_s"]),
            "threshold": result["threshold"],
            "metrics": {key: float(result[key]) for key in METRIC_KEYS},
        }

    # --- baseline --------------------------------------------------------------------------------

    def _baseline_name(self, dataset: Dataset) -> str:
        return f"baseline-{dataset.slug}-{self.settings.baseline}"

    def _baseline(self, dataset: Dataset) -> dict[str, Any]:
        s = self.settings
        name = self._baseline_name(dataset)
        k = min(s.ks)
        key = {
            "version": CACHE_VERSION, "root": str(dataset.root.resolve()), "category": dataset.category, "k": k,
            "holdout": self.holdout, "image_size": s.image_size, "backbone": s.baseline,
            "layers": list(s.baseline_layers) if s.baseline_layers else None, "coreset": s.baseline_coreset,
        }  # fmt: skip
        cached = self.cache.load(name, key)
        if cached is not None and self.cache.scores_path(name).is_file():
            return cached
        self.log(f"[{dataset.label}] baseline PatchCore {s.baseline}")
        encoder = create_encoder(s.baseline, pretrained=True)
        segmenter = build_patchcore(encoder, s.image_size, s.baseline_layers, s.baseline_coreset, device=self.device)
        payload = self._fit_and_score(segmenter, self._splits_for(dataset, k), name)
        payload["architecture"] = describe(segmenter, s.baseline)
        self.cache.save(name, key, payload)
        return payload

    # --- figures and the record file -------------------------------------------------------------

    def _figures(self, dataset: Dataset, outputs: ExperimentOutputs, scores: dict[str, np.ndarray]) -> list[Path]:
        results = outputs.results
        series = {}
        for point in results.fronts:
            if point.dataset == dataset.label:
                series.setdefault((point.method, point.seed), []).append((point.gflops, point.test_rwap))
        fronts = [FrontSeries(method, points, dashed=method == ORACLE) for (method, _), points in series.items()]
        baseline = next((r for r in results.records if r.dataset == dataset.label and r.method == BASELINE), None)
        star = (results.baseline_name or BASELINE, baseline.gflops, baseline.metrics["rwap"]) if baseline else None
        files = [
            save_pareto_fronts(
                fronts, self.out / f"figure2_pareto_{dataset.slug}.png",
                title=f"{dataset.label}: test rwAP of each search's validation Pareto front", baseline=star,
            )
        ]  # fmt: skip
        if len(scores) == 2:  # the baseline and AutoPatch
            layout = self._qualitative(dataset, scores)
            outputs.qualitative[dataset.label] = layout
            files.append(layout.path)
        else:
            self.log(f"[{dataset.label}] no baseline: the qualitative figure (baseline vs AutoPatch) is skipped")
        return files

    def _qualitative(self, dataset: Dataset, scores: dict[str, np.ndarray]) -> QualitativeLayout:
        """Figure 3: the first few test images of each defect type; every method scaled by its test min/max."""
        test = self._splits_for(dataset, min(self.settings.ks)).test
        rows = choose_examples(test.types, self.settings.examples_per_type)
        heatmaps = {key: (maps[rows], (float(maps.min()), float(maps.max()))) for key, maps in scores.items()}
        return save_qualitative(
            self.out / f"figure3_qualitative_{dataset.slug}.png", test.images[rows].numpy(), test.masks[rows].numpy(),
            heatmaps, [f"{test.types[i]}: {test.paths[i].name}" for i in rows],
        )  # fmt: skip

    def _write_results(self, results: ExperimentResults) -> Path:
        path = self.out / "results.json"
        data = {
            "settings": asdict(self.settings),
            "methods": results.methods,
            "baseline_name": results.baseline_name,
            "records": [r.to_dict() for r in results.records],
            "fronts": [p.to_dict() for p in results.fronts],
        }
        path.write_text(json.dumps(data, indent=1), encoding="utf-8")
        return path


def run_experiment(
    settings: ExperimentSettings, log: Callable[[str], None] = lambda line: None, progress: bool = False
) -> ExperimentOutputs:
    """Run (or resume) the whole experiment of `settings` and write its tables and figures to `settings.out`."""
    return ExperimentRunner(settings, log, progress).run()
