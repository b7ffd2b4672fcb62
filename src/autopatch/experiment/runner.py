"""The paper's §5 experiment as one resumable run: searches, re-fits on the test split, baseline, tables, figures.

Per dataset (a root + category): one search per (k, seed) on the validation split and one Test' (oracle)
search per seed; every trial of each search's validation Pareto front, and every default architecture the
search scored first, is re-fitted exactly on the train split (thresholds on that k's validation split, which
it also re-scores, with bootstrap standard errors) and scored on the shared test split. The chosen trial
('best', and the same within --max-gflops) is `search.pareto.select_lower_bound` of those re-scored values:
the highest validation rwAP minus its standard error, unless it does not beat the search's reference model
(`search.reference`: PatchCore fitted on the same splits, kept cached like a re-fit) by more than the standard
error of the difference, when the reference is the pick, as in `export`. So the search's fidelity only decides
the candidates, never the pick. Test', the upper bound, picks its front trial with the highest exact test rwAP.
The front's highest re-scored value ('highest', the pick before the noise was in view) and each default are
recorded beside it; the test scores of the front give Figure 2's test fronts. The baseline is fitted once per
dataset on the same splits.

The searches run at `fidelity` (`search.fidelity`); `bank_fraction`, when given, applies to the searches and
the re-fits alike (same seed), else the re-fits keep the whole bank (the deployable `export` model's
numbers). On a CPU the exact 1-NN over a whole bank of stride-4 patches dominates a re-fit (bottle at 224 px:
~600k bank rows), so a fraction such as 0.1 is what makes a CPU run of many re-fits quick.

Settings and the searches they imply are in `settings`, cache entries in `cache`, the figures of one
dataset in `figures`; this module runs the steps.

Resumable at every step: searches are Optuna studies (a finished one is reused, a partial one resumed by
the search-study API), and every re-fit or baseline result is a JSON file under `<out>/cache` whose key
records what produced it; a rerun recomputes only what is missing or was produced differently. The Test'
search validates on the test anomalies from index min(k) on (a superset of the shared test split), and
its chosen trial is scored on the shared test split like every other column: an upper bound.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial

from autopatch.backbones import Encoder, create_encoder
from autopatch.baselines import build_patchcore, describe
from autopatch.data import Splits, data_fingerprint, load_splits
from autopatch.device import resolve_device
from autopatch.errors import AutopatchError
from autopatch.experiment.cache import ResultCache
from autopatch.experiment.datasets import Dataset, experiment_datasets
from autopatch.experiment.figures import pareto_figure, qualitative_figure
from autopatch.experiment.records import (
    BASELINE,
    BEST,
    BUDGET,
    DEFAULT,
    HIGHEST,
    METRIC_KEYS,
    ExperimentResults,
    FrontPoint,
    RunRecord,
    method_name,
)
from autopatch.experiment.settings import ExperimentSettings, SearchSpec
from autopatch.experiment.tables import write_tables
from autopatch.files import atomic_path, write_text
from autopatch.metrics import SE_SUFFIX
from autopatch.report.figures import QualitativeLayout
from autopatch.report.pareto_plot import save_pareto_plot
from autopatch.search.architecture import Architecture
from autopatch.search.definition import DEFAULT_ATTR, StudySettings, folder_strings, open_study
from autopatch.search.export import trial_architecture
from autopatch.search.pareto import candidates, objectives, pareto_front, select_lower_bound, trial_gflops
from autopatch.search.reference import Reference, build_reference
from autopatch.search.spaces import get_space
from autopatch.search.storage import default_storage_url, open_storage
from autopatch.search.study import run_study
from autopatch.segmenter import Segmenter, fit_and_evaluate


@dataclass
class ExperimentOutputs:
    """The records behind every table and figure, the files written, and the qualitative figures' layouts."""

    results: ExperimentResults
    files: list[Path] = field(default_factory=list)
    qualitative: dict[str, QualitativeLayout] = field(default_factory=dict)


def reference_model(payload: dict[str, Any]) -> Reference:
    """The `search.reference.Reference` of a cached reference result (`ExperimentRunner._reference`)."""
    return Reference(payload["encoder"], payload["architecture"], payload["gflops"], payload["val_metrics"],
                     payload["val_draws"])  # fmt: skip


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
        self.datasets = experiment_datasets(settings.data_roots, settings.categories, settings.folders)
        self._encoders: dict[str, Encoder] = {}
        self._splits: dict[tuple[str, int, int, str, int | None], Splits] = {}  # emptied after each dataset

    # --- the whole run ---------------------------------------------------------------------------

    def run(self) -> ExperimentOutputs:
        s = self.settings
        baseline_name = f"PatchCore {s.baseline}" if s.baseline else None
        outputs = ExperimentOutputs(ExperimentResults(s.methods(), baseline_name, setup=s.setup()))
        for dataset in self.datasets:
            self._splits = {}
            figure_scores = self._run_dataset(dataset, outputs)
            outputs.files += self._figures(dataset, outputs, figure_scores)
        self._splits = {}
        outputs.files += write_tables(outputs.results, self.out, s.max_gflops)
        outputs.files.append(self._write_results(outputs.results))
        return outputs

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
            figure_scores[f"PatchCore {s.baseline}"] = np.load(self.cache.scores_path(self._baseline_entry(dataset)[0]))
        figure_search = SearchSpec(method_name(s.ks[0]), s.ks[0], s.seeds[0], False)
        for spec in s.searches():
            study = self._study(dataset, spec)
            trials = study.get_trials(deepcopy=False)
            front = pareto_front(trials)
            choices = front if spec.oracle else candidates(trials)
            # Figure 3 needs the chosen trial's test maps, and the pick needs every candidate's re-fit first:
            # the figure's search keeps the maps of all its candidates, so no re-fit runs twice
            keep_scores = spec == figure_search
            refits = {t.number: self._refit(dataset, spec, study.study_name, t, keep_scores) for t in choices}
            # Test' is the upper bound: its front trial with the best exact test rwAP, noise and defaults aside
            scored = "metrics" if spec.oracle else "val_metrics"
            exact = {number: refit[scored]["rwap"] for number, refit in refits.items()}
            errors = {number: refit[scored].get("rwap" + SE_SUFFIX) for number, refit in refits.items()}
            defaults = [] if spec.oracle else [t for t in choices if t.user_attrs.get(DEFAULT_ATTR)]
            chosen: dict[str, FrozenTrial | None] = {BEST: select_lower_bound(choices, exact, errors)}
            if not spec.oracle:
                chosen[HIGHEST] = select_lower_bound(front, exact)
            if s.max_gflops is not None:
                within = [t for t in choices if trial_gflops(t) <= s.max_gflops]
                if within:
                    chosen[BUDGET] = select_lower_bound(within, exact, errors)
                else:
                    self.log(f"[{dataset.label}] {study.study_name}: no trial within {s.max_gflops:g} GFLOPs")
            reference = None
            if not spec.oracle:  # 'best' keeps the reference model unless its pick beats it, as `export` does
                reference = self._reference(dataset, spec, keep_scores)
                known = reference_model(reference)
                for selection in (BEST, BUDGET):
                    trial = chosen.get(selection)
                    if trial is None or (selection == BUDGET and known.gflops > s.max_gflops):
                        continue
                    if known.margin("rwap", exact[trial.number], refits[trial.number]["val_draws"].get("rwap")) <= 0:
                        chosen[selection] = None
            for trial in front:
                payload = refits[trial.number]
                outputs.results.fronts.append(
                    FrontPoint(dataset.label, spec.method, spec.seed, trial.number, trial_gflops(trial),
                               objectives(trial)[1], payload["metrics"]["rwap"])
                )  # fmt: skip
            for selection, trial in [*chosen.items(), *((DEFAULT, t) for t in defaults)]:
                payload = reference if trial is None else refits[trial.number]
                outputs.results.records.append(
                    RunRecord(dataset.label, spec.method, spec.seed, selection, payload["architecture"],
                              payload["gflops"], payload["metrics"], trial and trial.number,
                              payload["val_metrics"]["rwap"] if trial is None else objectives(trial)[1],
                              payload["images_per_s"])
                )  # fmt: skip
            if spec == figure_search:
                best = chosen[BEST]
                entry = self._reference_entry(dataset, spec) if best is None else self._refit_entry(dataset, spec, best)
                scores_file = self.cache.scores_path(entry[0])
                figure_scores[f"AutoPatch {spec.method}, seed {spec.seed}"] = np.load(scores_file)
        return figure_scores

    # --- searches --------------------------------------------------------------------------------

    def study_settings(self, dataset: Dataset, spec: SearchSpec) -> StudySettings:
        s = self.settings
        return StudySettings(
            data_root=str(dataset.root.resolve()), category=dataset.category, space=s.space, k=spec.k, seed=spec.seed,
            image_size=s.image_size, oracle=spec.oracle, **s.search_fidelity.to_dict(), synthetic=spec.synthetic,
            synthetic_kind=spec.synthetic_kind,
            data_fingerprint=data_fingerprint(dataset.source, dataset.category_arg, spec.k, oracle=spec.oracle),
            folders=None if dataset.folders is None else folder_strings(dataset.folders),
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
        study, complete = None, 0
        if name in existing:
            try:
                study = open_study(settings, name, storage)  # errors when it was run with other settings
            except AutopatchError as error:
                reason = str(error).split("; pass")[0]  # its hint names `autopatch search` options
                raise AutopatchError(f"{reason}; rerun with that value, or give another --out or --storage") from None
            complete = sum(t.state == optuna.trial.TrialState.COMPLETE for t in study.get_trials(deepcopy=False))
        if study is not None and complete >= self.settings.trials:
            self.log(f"[{dataset.label}] {name}: reusing {complete} complete trials")
        else:
            self.log(f"[{dataset.label}] {name}: searching to {self.settings.trials} trials ({complete} done)")
            study = run_study(
                settings, trials=self.settings.trials, device=str(self.device), study_name=name,
                storage_url=self.settings.storage, out_dir=self.study_dir, progress=self.progress,
            ).study  # fmt: skip
        if self.settings.storage is None:
            save_pareto_plot(study.get_trials(deepcopy=False), self.study_dir / f"{name}.png", title=name)
        return study

    # --- re-fits ---------------------------------------------------------------------------------

    def _splits_for(self, dataset: Dataset, spec: SearchSpec) -> Splits:
        """The splits a re-fit of `spec`'s search fits and thresholds on: its k's validation anomalies plus its
        synthetic ones (made from train normals and seeded by the search's seed, as in its study). Every search
        shares the test split."""
        key = (dataset.label, spec.k, spec.synthetic, spec.synthetic_kind, spec.seed if spec.synthetic else None)
        if key not in self._splits:
            s = self.settings
            self._splits[key] = load_splits(
                dataset.source, dataset.category_arg, spec.k, image_size=s.image_size, holdout_anomalies=s.holdout,
                synthetic=spec.synthetic, synthetic_kind=spec.synthetic_kind, synthetic_seed=spec.seed,
            )  # fmt: skip
        return self._splits[key]

    def _encoder(self, arch: Architecture) -> Encoder:
        """Pretrained encoders loaded once per run (a Segmenter keeps its own truncated copy)."""
        key = json.dumps([arch.encoder, arch.encoder_config], sort_keys=True)
        if key not in self._encoders:
            self._encoders[key] = create_encoder(arch.encoder, pretrained=True, **arch.encoder_config).eval()
        return self._encoders[key]

    def _entry(self, kind: str, dataset: Dataset, k: int, label: str | None = None, **fields: Any) -> tuple[str, dict]:
        """Cache name and key of a result on the splits of (`dataset`, `k`), at this run's image size."""
        s = self.settings
        return self.cache.entry(kind, dataset, label, k=k, holdout=s.holdout, image_size=s.image_size, **fields)

    def _refit_entry(self, dataset: Dataset, spec: SearchSpec, trial: FrozenTrial) -> tuple[str, dict[str, Any]]:
        """A re-fit depends on what is fitted, not on which study found it, so an architecture found by several
        searches (the k and Test' searches of a seed start with the same random trials) is fitted once."""
        architecture = trial_architecture(trial).to_dict()
        synthetic = {"synthetic": spec.synthetic, "synthetic_kind": spec.synthetic_kind} if spec.synthetic else {}
        return self._entry("refit", dataset, spec.k, bank_fraction=self.settings.refit_fraction, seed=spec.seed,
                           architecture=architecture, **synthetic)  # fmt: skip

    def _refit(
        self, dataset: Dataset, spec: SearchSpec, study_name: str, trial: FrozenTrial, keep_scores: bool = False
    ) -> dict[str, Any]:
        """Validation and test results of `trial`'s architecture re-fitted exactly on the train split (cached;
        a cached result from before validation metrics and their standard errors were kept is re-fitted)."""
        arch = trial_architecture(trial)
        name, key = self._refit_entry(dataset, spec, trial)
        cached = self.cache.load(name, key)
        fresh = cached is not None and any(key.endswith(SE_SUFFIX) for key in cached.get("val_metrics", {}))
        fresh = fresh and (spec.oracle or "val_draws" in cached)  # the pick compares them with the reference's
        if fresh and (not keep_scores or self.cache.scores_path(name).is_file()):
            return cached
        self.log(f"[{dataset.label}] refit {study_name} trial {trial.number}: {arch}")
        segmenter = Segmenter(
            self._encoder(arch), arch.block_ids, arch.patch_sizes, self.settings.image_size,
            bank_fraction=self.settings.refit_fraction, device=self.device, seed=spec.seed,
        )  # fmt: skip
        payload = self._fit_and_score(segmenter, self._splits_for(dataset, spec), name if keep_scores else None)
        payload["architecture"] = str(arch)
        self.cache.save(name, key, payload)
        return payload

    def _fit_and_score(self, segmenter: Segmenter, splits: Splits, scores_name: str | None) -> dict[str, Any]:
        """Fit on train, threshold on val, metrics on test (and the test score maps saved when named)."""
        evaluation = fit_and_evaluate(segmenter, splits, batch_size=self.settings.batch_size)
        if scores_name is not None:
            with atomic_path(self.cache.scores_path(scores_name)) as tmp:
                np.save(tmp, evaluation.test_scores.astype(np.float32))
        result = evaluation.test
        return {
            "gflops": float(result["gflops"]),
            "images_per_s": float(result["images_per_s"]),
            "threshold": result["threshold"],
            "metrics": {key: float(result[key]) for key in METRIC_KEYS},
            "val_metrics": evaluation.val["metrics"],
            "val_draws": evaluation.val["draws"],
        }

    # --- the reference a pick must beat, and the baseline ------------------------------------------

    def _reference_entry(self, dataset: Dataset, spec: SearchSpec) -> tuple[str, dict[str, Any]]:
        encoder = get_space(self.settings.space).reference_encoder
        synthetic = {"synthetic": spec.synthetic, "synthetic_kind": spec.synthetic_kind} if spec.synthetic else {}
        return self._entry("reference", dataset, spec.k, encoder=encoder, seed=spec.seed, **synthetic)

    def _reference(self, dataset: Dataset, spec: SearchSpec, keep_scores: bool = False) -> dict[str, Any]:
        """The search's reference model (`search.reference`) fitted on its splits, seeded by its seed (cached)."""
        name, key = self._reference_entry(dataset, spec)
        cached = self.cache.load(name, key)
        if cached is not None and (not keep_scores or self.cache.scores_path(name).is_file()):
            return cached
        encoder = key["encoder"]
        self.log(f"[{dataset.label}] reference PatchCore {encoder}, seed {spec.seed}")
        segmenter = build_reference(encoder, self.settings.image_size, self.device, spec.seed)
        payload = self._fit_and_score(segmenter, self._splits_for(dataset, spec), name if keep_scores else None)
        payload.update(encoder=encoder, architecture=describe(segmenter, encoder))
        self.cache.save(name, key, payload)
        return payload

    def _baseline_entry(self, dataset: Dataset) -> tuple[str, dict[str, Any]]:
        s = self.settings
        layers = list(s.baseline_layers) if s.baseline_layers else None
        return self._entry("baseline", dataset, min(s.ks), s.baseline, backbone=s.baseline, layers=layers,
                           coreset=s.baseline_coreset)  # fmt: skip

    def _baseline(self, dataset: Dataset) -> dict[str, Any]:
        s = self.settings
        name, key = self._baseline_entry(dataset)
        cached = self.cache.load(name, key)
        if cached is not None and self.cache.scores_path(name).is_file():
            return cached
        self.log(f"[{dataset.label}] baseline PatchCore {s.baseline}")
        encoder = create_encoder(s.baseline, pretrained=True)
        segmenter = build_patchcore(encoder, s.image_size, s.baseline_layers, s.baseline_coreset, device=self.device)
        payload = self._fit_and_score(segmenter, self._splits_for(dataset, s.baseline_search), name)
        payload["architecture"] = describe(segmenter, s.baseline)
        self.cache.save(name, key, payload)
        return payload

    # --- figures and the record file -------------------------------------------------------------

    def _figures(self, dataset: Dataset, outputs: ExperimentOutputs, scores: dict[str, np.ndarray]) -> list[Path]:
        files = [pareto_figure(dataset, outputs.results, self.out)]
        if len(scores) == 2:  # the baseline and AutoPatch
            test = self._splits_for(dataset, self.settings.baseline_search).test
            layout = qualitative_figure(dataset, test, scores, self.out, self.settings.examples_per_type)
            outputs.qualitative[dataset.label] = layout
            files.append(layout.path)
        else:
            self.log(f"[{dataset.label}] no baseline: the qualitative figure (baseline vs AutoPatch) is skipped")
        return files

    def _write_results(self, results: ExperimentResults) -> Path:
        path, folders = self.out / "results.json", self.settings.folders
        data = {
            "settings": {**asdict(self.settings), "folders": folders and folder_strings(folders)},
            "methods": results.methods,
            "baseline_name": results.baseline_name,
            "records": [r.to_dict() for r in results.records],
            "fronts": [p.to_dict() for p in results.fronts],
        }
        return write_text(path, json.dumps(data, indent=1))


def run_experiment(
    settings: ExperimentSettings, log: Callable[[str], None] = lambda line: None, progress: bool = False
) -> ExperimentOutputs:
    """Run (or resume) the whole experiment of `settings` and write its tables and figures to `settings.out`."""
    return ExperimentRunner(settings, log, progress).run()
