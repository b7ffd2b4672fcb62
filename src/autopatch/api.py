"""autopatch's Python API: what every `autopatch` sub-command does, callable from Python.

`import autopatch` gives these names (loaded on first use). Each example runs as a doctest in CI on the
bundled toy data (`demo_data_root()`), at small image sizes so they take seconds. `run_baseline`
(PatchCore) and `run_experiment` (the paper's §5, configured by `ExperimentSettings`) are the
`baselines` and `experiment` packages' own functions.

>>> import autopatch
>>> splits = autopatch.load_splits(autopatch.demo_data_root(), "hazelnut_toy", k=1, image_size=64)
>>> len(splits.train), len(splits.val), len(splits.test)
(22, 7, 19)
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import optuna
import torch

import autopatch
from autopatch.backbones import create_encoder
from autopatch.baselines import BaselineResult, run_baseline
from autopatch.data import FolderDataset, data_fingerprint, has_masks, load_images, load_splits
from autopatch.data.splits import synthetic_source_paths
from autopatch.data.synthetic import MIX, make_synthetic
from autopatch.deploy.convert import Conversion, check_conversion, convert_model
from autopatch.deploy.inference import Inferencer, TorchInferencer
from autopatch.deploy.latency import LatencyMeter
from autopatch.deploy.prediction import PredictionReport, predict_files
from autopatch.deploy.runtimes import load_inferencer
from autopatch.errors import AutopatchError
from autopatch.experiment import ExperimentOutputs, ExperimentSettings, run_experiment
from autopatch.files import check_output_file, check_output_folder, write_text
from autopatch.metrics import DEFAULT_NORMAL_FPR
from autopatch.report.pareto_plot import save_pareto_plot
from autopatch.report.synthetic import save_synthetic_grid
from autopatch.search import (
    DEFAULT_FIDELITY,
    ArchitectureObjectiveFactory,
    ExportResult,
    Fidelity,
    SearchSummary,
    StudySettings,
    best_trial,
    default_space,
    default_synthetic,
    existing_default_storage_url,
    export_reference,
    export_trial,
    get_fidelity,
    load_existing_study,
    open_storage,
    run_study,
    select_trial,
)
from autopatch.search.definition import folder_strings
from autopatch.segmenter import Segmenter, evaluate_on_split, fit_on_splits

__all__ = [
    "BaselineResult",
    "Conversion",
    "DemoResult",
    "ExperimentOutputs",
    "ExperimentSettings",
    "ExportResult",
    "FolderDataset",
    "Inferencer",
    "PredictionReport",
    "SearchSummary",
    "Segmenter",
    "convert",
    "create_encoder",
    "demo",
    "demo_data_root",
    "evaluate",
    "export",
    "fit",
    "load_inferencer",
    "load_splits",
    "load_study",
    "predict",
    "run_baseline",
    "run_experiment",
    "run_search",
    "synthetic_preview",
]

DEMO_CATEGORY = "hazelnut_toy"
DEMO_STUDY = "demo"


def demo_data_root() -> Path:
    """The bundled toy data, examples/data/hazelnut_toy of a source checkout (`make` installs it editable).

    >>> (autopatch.demo_data_root() / "hazelnut_toy" / "train" / "good").is_dir()
    True
    """
    return Path(autopatch.__file__).resolve().parents[2] / "examples" / "data" / DEMO_CATEGORY


def fit(
    data_root: str | Path | FolderDataset,
    category: str | None,
    backbone: str,
    blocks: list[int],
    patch_sizes: list[int],
    *,
    k: int = 1,
    image_size: int | str | tuple[int, int] = 224,
    resize: str = "stretch",
    coreset: float | None = None,
    bank_fraction: float = 1.0,
    smoothing_sigma: float | None = None,
    device: str | torch.device = "auto",
    weights: str | None = None,
    batch_size: int = 32,
    seed: int = 0,
    normal_fpr: float = DEFAULT_NORMAL_FPR,
    out: str | Path | None = None,
    progress: bool = False,
) -> Segmenter:
    """A Segmenter of `backbone`'s `blocks` (one patch size each): memory bank from the train split, pixel
    and image (OK/NG) thresholds with the best F1 on the validation split (k anomalies per defect type; see
    `Segmenter.fit_thresholds` for `normal_fpr`). `data_root` is an MVTec-layout folder with `category`, or a
    `FolderDataset` (category None; without masks the model gets an image threshold only). `image_size` is S
    (S x S), "HxW" or (H, W); with `resize="keep-aspect"` S is the shorter side (see `autopatch.image_size`).
    With `out` it is saved there (the location is checked before any work); else save it with `.save`.

    >>> model = autopatch.fit(autopatch.demo_data_root(), "hazelnut_toy", "efficientnet_lite0", [4, 8], [3, 3],
    ...                       image_size=64)
    >>> model.block_ids, model.bank.patches.shape
    ([4, 8], torch.Size([1408, 152]))
    >>> model.metadata["val"]["threshold"] == model.threshold
    True

    Your own folders, here without masks: the model decides OK/NG per image and draws no defect outline.

    >>> toy = autopatch.demo_data_root() / "hazelnut_toy"
    >>> folders = autopatch.FolderDataset(toy / "train" / "good", toy / "test" / "colour")
    >>> model = autopatch.fit(folders, None, "efficientnet_lite0", [4], [3], image_size=64)
    >>> model.threshold is None, model.metadata["val"]["image_threshold_rule"]
    (True, 'image F1-max on validation')
    """
    if out is not None:
        check_output_file(out, "model file")
    splits = load_splits(data_root, category, k, image_size=image_size, resize=resize)
    encoder = create_encoder(backbone, pretrained=True, weights=weights)
    segmenter = Segmenter(
        encoder, blocks, patch_sizes, splits.image_size, bank_fraction=bank_fraction, coreset=coreset,
        smoothing_sigma=smoothing_sigma, device=device, seed=seed,
    )  # fmt: skip
    val = fit_on_splits(segmenter, splits, batch_size=batch_size, progress=progress, normal_fpr=normal_fpr)
    segmenter.metadata = {
        "category": category or _dataset_name(data_root),
        "k": k,
        "architecture": f"{backbone} blocks={','.join(map(str, segmenter.block_ids))} "
        f"patch_sizes={','.join(map(str, segmenter.patch_sizes))}",
        "coreset": coreset,
        "train_images": len(splits.train),
        "val": val,
    }
    if out is not None:
        segmenter.save(out)
    return segmenter


def _dataset_name(data_root: str | Path | FolderDataset) -> str:
    return data_root.name if isinstance(data_root, FolderDataset) else Path(data_root).name


def _model(model: Segmenter | str | Path, device: str | torch.device) -> Segmenter:
    return model if isinstance(model, Segmenter) else Segmenter.load(model, device=device)


def evaluate(
    model: Segmenter | str | Path,
    data_root: str | Path | FolderDataset,
    *,
    category: str | None = None,
    k: int | None = None,
    device: str | torch.device = "auto",
    batch_size: int = 32,
    progress: bool = False,
) -> dict[str, Any]:
    """Test-split metrics of a model (or model file): rwap, ap, auroc, pauroc_0.3, aupro_0.3 (None on data
    without masks); image_auroc, image_ap, image_f1_max; f1, precision, recall at its pixel threshold and
    image_f1, image_fpr, ... at its image threshold; gflops; images_per_s. `data_root` as in `fit`; category
    and k default to the ones it was fitted with.

    >>> model = autopatch.fit(autopatch.demo_data_root(), "hazelnut_toy", "efficientnet_lite0", [4], [3],
    ...                       image_size=64)
    >>> metrics = autopatch.evaluate(model, autopatch.demo_data_root())
    >>> metrics["images"], metrics["auroc"] > 0.9
    (19, True)
    """
    segmenter = _model(model, device)
    folders = isinstance(data_root, FolderDataset)
    category = data_root.name if folders else (category or segmenter.metadata.get("category"))
    if not category:
        raise AutopatchError(f"model {model} names no category; pass --category")
    k = k if k is not None else int(segmenter.metadata.get("k", 1))
    splits = load_splits(data_root, None if folders else category, k, image_size=segmenter.image_size)
    return {"category": category, "k": k,
            **evaluate_on_split(segmenter, splits.test, batch_size=batch_size, progress=progress)}


def run_search(
    data_root: str | Path | FolderDataset,
    category: str | None,
    *,
    trials: int = 100,
    objective: str | None = None,
    space: str | None = None,
    k: int = 1,
    seed: int = 0,
    image_size: int | str | tuple[int, int] = 224,
    resize: str = "stretch",
    fidelity: str | Fidelity = DEFAULT_FIDELITY,
    bank_fraction: float | None = None,
    max_gflops: float | None = None,
    oracle: bool = False,
    synthetic: int | None = None,
    synthetic_kind: str = MIX,
    cost: str = "gflops",
    runtime: str | None = None,
    study: str | None = None,
    storage: str | None = None,
    out: str | Path = "runs",
    workers: int = 1,
    device: str = "auto",
    progress: bool = True,
) -> SearchSummary:
    """Run (or resume: the same call again) the (GFLOPs, validation objective) search until `trials` trials are
    complete; returns the study and its Pareto front. Without `storage` the study is a file under `out`.
    `data_root`, `image_size` and `resize` as in `fit`; `objective` 'rwap', 'image-ap' or 'image-auroc'
    (default: rwap when every validation anomaly has a mask, else image-ap). `fidelity`: how the trials score
    the validation split, a preset name ('fast', the default, or 'full') or a `Fidelity`; `bank_fraction`
    replaces its bank fraction. The pick you export is re-fitted exactly whatever the fidelity. `synthetic` adds
    that many synthetic anomalies of `synthetic_kind` to validation (`data.splits.load_splits`; default
    `search.DEFAULT_SYNTHETIC`, none for a Test' `oracle`, 0: real anomalies only); with them `k` may be 0: a
    search with no real defect at all. `cost` 'latency' minimises each architecture's measured batch-1
    latency as deployed in `runtime` ('torch', the default, 'onnx' or 'openvino'; `deploy.LatencyMeter`) instead of
    its GFLOPs.

    >>> import tempfile
    >>> result = autopatch.run_search(autopatch.demo_data_root(), "hazelnut_toy", trials=3, image_size=64,
    ...                           out=tempfile.mkdtemp(), progress=False)
    >>> result.study_name, result.complete, len(result.front) >= 1
    ('hazelnut_toy-pretrained-k1-s0-syn16', 3, True)
    """
    folders = isinstance(data_root, FolderDataset)
    synthetic = default_synthetic(oracle) if synthetic is None else synthetic
    if objective is None:  # synthetic anomalies have masks: without real ones rwAP can be searched
        objective = "rwap" if (k == 0 and synthetic) or has_masks(data_root, category) else "image-ap"
    if isinstance(fidelity, str):
        fidelity = get_fidelity(fidelity)
    settings = StudySettings.with_fidelity(
        fidelity.replace(bank_fraction=bank_fraction),
        data_root=str(Path(data_root.normal_dir if folders else data_root).resolve()),
        category=data_root.name if folders else category, space=space or default_space(), k=k, seed=seed,
        image_size=image_size, oracle=oracle, max_gflops=max_gflops,
        data_fingerprint=data_fingerprint(data_root, category, k, oracle=oracle), objective=objective,
        folders=folder_strings(data_root) if folders else None, resize=resize, synthetic=synthetic,
        synthetic_kind=synthetic_kind, cost=cost, runtime=runtime,
    )  # fmt: skip
    meter = LatencyMeter if settings.cost == "latency" else None
    return run_study(
        settings, trials=trials, factory=ArchitectureObjectiveFactory(settings, device, latency_meter=meter),
        study_name=study, storage_url=storage, out_dir=out, workers=workers, progress=progress,
    )  # fmt: skip


def load_study(name: str, *, storage: str | None = None, runs: str | Path = "runs") -> optuna.Study:
    """A study `search` wrote: from `storage` (a URL), else its file under `runs`; nothing is created.

    >>> autopatch.load_study("nothing-here", runs="/nonexistent")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    autopatch.errors.AutopatchError: no study file /nonexistent/nothing-here.db or .journal; run ...
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = storage or existing_default_storage_url(runs, name)
    return load_existing_study(name, open_storage(url, create=False))


def export(
    study: optuna.Study | SearchSummary,
    out: str | Path,
    *,
    trial: str | int = "best",
    max_gflops: float | None = None,
    max_ms: float | None = None,
    coreset: float | None = None,
    bank_fraction: float = 1.0,
    normal_fpr: float = DEFAULT_NORMAL_FPR,
    data_root: str | Path | FolderDataset | None = None,
    device: str = "auto",
    batch_size: int = 32,
    progress: bool = False,
    format: str = "torch",
    precision: str = "fp32",
    reference: bool = True,
) -> ExportResult:
    """Re-fit a trial on the train split with the full bank (or `coreset`, or a random `bank_fraction` of it
    seeded by the study's seed, as the search keeps), both thresholds on val (`normal_fpr` as in `fit`), save the
    model file `out` and score it on the test split.
    `format` 'onnx' or 'openvino' writes `out` (.onnx, .xml) for that runtime as `convert` does, in `precision`,
    from the model file it saves beside it (`out` with the suffix .pt); both locations are checked first.
    `trial` 'best' is `search.export.best_trial`: the highest validation objective minus its bootstrap standard
    error within `max_gflops` (and, for a `cost='latency'` study, `max_ms` of measured latency), re-scored exactly
    when the search queried a stride or a projection; with `reference`, it replaces the study's reference model
    (PatchCore on the space's smallest encoder, `search.reference`, then exported instead) only when it beats it
    on validation by more than the standard error of the difference. `result.pick` says how it chose.

    >>> import tempfile
    >>> from pathlib import Path
    >>> folder = Path(tempfile.mkdtemp())
    >>> found = autopatch.run_search(autopatch.demo_data_root(), "hazelnut_toy", trials=2, image_size=64,
    ...                              out=folder, progress=False)
    >>> exported = autopatch.export(found, folder / "model.pt")
    >>> exported.path.is_file(), exported.test_metrics["images"]
    (True, 19)
    """
    study = study.study if isinstance(study, SearchSummary) else study
    converted = None
    if format != "torch":
        converted = check_conversion(out, format, precision)
        out = check_output_file(converted.with_suffix(".pt"), "model file")
    pick = None
    if str(trial) == "best":
        pick = best_trial(study, max_gflops, data_root, device, max_ms, reference)
        chosen = pick.trial
    else:
        chosen = select_trial(study.get_trials(deepcopy=False), trial, max_gflops, max_ms)
    common = {"normal_fpr": normal_fpr, "data_root": data_root, "device": device, "batch_size": batch_size,
              "progress": progress}  # fmt: skip
    if chosen is None:
        result = export_reference(study, pick.reference, out, **common)
    else:
        result = export_trial(study, chosen, out, coreset=coreset, bank_fraction=bank_fraction, **common)
    result = replace(result, pick=pick)
    if converted is None:
        return result
    return replace(result, converted=convert_model(result.path, converted, format, precision=precision).path)


def predict(
    model: Segmenter | Inferencer | str | Path,
    image_or_dir: str | Path,
    out: str | Path,
    *,
    device: str | torch.device = "auto",
    batch_size: int = 32,
    progress: bool = False,
) -> PredictionReport:
    """Score an image or a folder of images: `<stem>.png` (image | overlay | mask outline) and `<stem>.npy`
    (float32 score map) per image under `out`, and `predictions.csv` with each image's score, OK/NG label
    and defect area; unreadable files are reported, not fatal. `model`: a Segmenter, an inferencer, or a
    .pt / .onnx file (the same outputs from either runtime).

    >>> import tempfile
    >>> model = autopatch.fit(autopatch.demo_data_root(), "hazelnut_toy", "efficientnet_lite0", [4], [3],
    ...                       image_size=64)
    >>> report = autopatch.predict(model, autopatch.demo_data_root() / "hazelnut_toy" / "test" / "good",
    ...                            tempfile.mkdtemp())
    >>> len(report.written), report.failures, report.csv.name
    (6, [], 'predictions.csv')
    >>> report.ng  # of the 6 good test parts, judged by the image threshold chosen on validation
    0
    """
    if isinstance(model, Segmenter):
        model = TorchInferencer(model)
    elif isinstance(model, str | Path):
        model = load_inferencer(model, device=device)
    return predict_files(model, image_or_dir, out, batch_size=batch_size, progress=progress)


def convert(model_file: str | Path, out: str | Path, *, format: str = "onnx", precision: str = "fp32") -> Conversion:
    """A model file (.pt) as a file for another runtime, with the memory bank and both thresholds inside,
    checked against the torch model before it is kept: `format` 'onnx' (one .onnx file) or 'openvino' (.xml +
    .bin); `precision` 'fp16' stores weights and bank in half the bytes (computing in float32). Run it with
    `load_inferencer(out)` (its runtime only: no torch or faiss on the line PC).

    >>> import tempfile
    >>> from pathlib import Path
    >>> folder = Path(tempfile.mkdtemp())
    >>> model = autopatch.fit(autopatch.demo_data_root(), "hazelnut_toy", "efficientnet_lite0", [4], [3],
    ...                       image_size=64, out=folder / "model.pt")
    >>> converted = autopatch.convert(folder / "model.pt", folder / "model.onnx")
    >>> converted.max_relative_difference < 1e-4
    True
    >>> onnx_model = autopatch.load_inferencer(folder / "model.onnx")
    >>> images = __import__("numpy").zeros((2, 64, 64, 3), dtype="uint8")
    >>> onnx_model.predict(images).anomaly_maps.shape
    (2, 64, 64)
    """
    return convert_model(model_file, out, format, precision=precision)


@dataclass(frozen=True)
class DemoResult:
    """What the demo left under `out`: the search's front, the plot, the exported model and its test files."""

    out: Path
    search: SearchSummary
    pareto_plot: Path
    export: ExportResult
    evaluation: Path
    heatmaps: Path
    heatmap_count: int


def demo(
    out: str | Path,
    *,
    data_root: str | Path | None = None,
    trials: int = 24,
    image_size: int = 128,
    bank_fraction: float = 0.5,
    device: str = "auto",
    log: Callable[[str], None] = print,
    on_search: Callable[[SearchSummary], None] | None = None,
    on_export: Callable[[ExportResult], None] | None = None,
) -> DemoResult:
    """`make demo`: search, Pareto plot, export of the best trial, its test metrics and heatmaps under `out`
    (`data_root` None: the bundled data). Rerunning resumes: a finished search just reports its front. Its
    trials score exactly (fidelity `full`, a `bank_fraction` of the bank): on the small demo data that costs
    seconds.

    `log` gets one line per step; `on_search` / `on_export` get the step's result as soon as it exists, so
    a caller can show the front and the test metrics while the later steps still run.
    """
    root = Path(data_root or demo_data_root()).resolve()
    if not (root / DEMO_CATEGORY).is_dir():
        raise AutopatchError(
            f"demo data {root / DEMO_CATEGORY} not found (the package is not a source checkout?); "
            "pass --data FOLDER that contains hazelnut_toy"
        )
    out = check_output_folder(out, "demo folder")
    log(f"[1/4] search: {trials} trials of the pretrained space on {root / DEMO_CATEGORY}")
    summary = run_search(
        root, DEMO_CATEGORY, trials=trials, space="pretrained", image_size=image_size, fidelity="full",
        bank_fraction=bank_fraction,
        study=DEMO_STUDY, out=out, device=device,
    )  # fmt: skip
    if on_search is not None:
        on_search(summary)
    trials_done = summary.study.get_trials(deepcopy=False)
    plot = save_pareto_plot(trials_done, out / "pareto.png", title=f"{DEMO_CATEGORY}: {summary.complete} trials")
    log(f"Pareto plot {plot}")

    log("[2/4] export the best trial (highest validation rwAP minus its standard error, if it beats the reference "
        "PatchCore model), refit on the train split")
    result = export(summary, out / "model.pt", device=device, progress=True)
    if on_export is not None:
        on_export(result)
    evaluation = out / "evaluation.json"
    record = {"trial": result.trial, "architecture": result.architecture, "val_threshold": result.val_threshold,
              "test": result.test_metrics}
    write_text(evaluation, json.dumps(record, indent=2))
    log(f"[3/4] test metrics written to {evaluation}")

    log("[4/4] heatmaps and OK/NG verdicts of the test images")
    model = Segmenter.load(result.path, device=device)
    heatmaps = out / "heatmaps"
    written = 0
    for folder in sorted(p for p in (root / DEMO_CATEGORY / "test").iterdir() if p.is_dir()):
        report = predict(model, folder, heatmaps / folder.name)
        written += len(report.written)
        log(f"  test/{folder.name}: {len(report.predictions)} images, {report.ng} NG ({report.csv})")
    log(f"{written} heatmap PNGs in {heatmaps}")
    return DemoResult(out, summary, plot, result, evaluation, heatmaps, written)


def synthetic_preview(
    data_root: str | Path | FolderDataset,
    category: str | None = None,
    *,
    count: int = 16,
    kind: str = MIX,
    seed: int = 0,
    image_size: int | str = 224,
    out: str | Path = "synthetic.png",
) -> Path:
    """Write a PNG of `count` synthetic anomalies of `kind` (`data.synthetic`: draem, cutpaste, nsa or mix), made
    from the train normals a search with `--synthetic` makes them from (`data.splits.synthetic_source_paths`)
    and seeded like it, each as image, mask and outline: how the generator treats the user's parts, to judge
    before a search relies on it.

    >>> import tempfile
    >>> from pathlib import Path
    >>> grid = autopatch.synthetic_preview(autopatch.demo_data_root(), "hazelnut_toy", count=3, image_size=64,
    ...                                    out=Path(tempfile.mkdtemp()) / "grid.png")
    >>> grid.suffix, grid.stat().st_size > 1000
    ('.png', True)
    """
    check_output_file(out, "synthetic anomaly picture")
    images = load_images(synthetic_source_paths(data_root, category), image_size).permute(0, 2, 3, 1).numpy()
    made = make_synthetic(images, count, kind, seed)
    return save_synthetic_grid(made.images, made.masks, made.kinds, out)
