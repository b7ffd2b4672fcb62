"""The paper's §5 tables from experiment records, each written as Markdown (to read) and CSV (to compute with).

- Table 3/4-style (`rwap_gflops_table`): test rwAP % and GFLOPs per dataset and column (k=1, 2, 4, Test',
  baseline), mean ± std over seeds; a `mean` row when there are several datasets.
- Table 5-style (`metric_table`): AUROC, AUROC@0.3, AP, rwAP, AUPRO@0.3 (pixel), image AUROC, image AP per
  method with its rank among the methods of that dataset (1 = best; ties share the best rank), showing where
  metrics disagree.
- Table 6-style (`architecture_table`): every chosen architecture in the paper's notation.
- `selection_table`: how each k's pick holds on test beside the front's highest validation rwAP (the pick
  before the noise was in view), the best default architecture of the same search, Test' and the baseline.

Spread is the sample standard deviation (n - 1) over seeds; one value prints without "±". The `mean`
row averages the datasets per seed first and then takes mean ± std over the seeds every dataset has, so
its ± is seed-to-seed spread of the average, as for a single dataset. The CSV files are long-form numbers
(percent for metrics), the Markdown the formatted grid.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from autopatch.experiment.records import (
    BASELINE,
    BEST,
    BUDGET,
    DEFAULT,
    HIGHEST,
    METRIC_KEYS,
    METRIC_LABELS,
    ORACLE,
    ExperimentResults,
    RunRecord,
)
from autopatch.files import atomic_path, write_text

MEAN_ROW = "mean"
MISSING = "–"


@dataclass(frozen=True)
class Table:
    """A Markdown grid (title, header, rows of strings) and its long-form CSV (header, rows)."""

    title: str
    header: list[str]
    rows: list[list[str]]
    csv_header: list[str]
    csv_rows: list[list[object]]
    notes: tuple[str, ...] = ()


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))


def format_mean_std(values: Sequence[float], digits: int) -> str:
    """'82.7 ± 2.7' for several values, '81.1' for one, '–' for none."""
    if not values:
        return MISSING
    mean, std = mean_std(values)
    return f"{mean:.{digits}f}" if len(values) == 1 else f"{mean:.{digits}f} ± {std:.{digits}f}"


def ranks(values: Sequence[float | None]) -> list[int | None]:
    """Competition ranks, highest value first (1 + how many are strictly higher); None stays unranked."""
    present = [v for v in values if v is not None]
    return [None if v is None else 1 + sum(other > v for other in present) for v in values]


def _per_seed(records: Iterable[RunRecord], value: str) -> dict[tuple[str, str], dict[int | None, float]]:
    """(dataset, method) -> seed -> value ('gflops' or a metric key); records without the metric (results
    cached before autopatch computed it) are left out."""
    table: dict[tuple[str, str], dict[int | None, float]] = {}
    for r in records:
        if value != "gflops" and value not in r.metrics:
            continue
        number = r.gflops if value == "gflops" else r.metrics[value]
        table.setdefault((r.dataset, r.method), {})[r.seed] = float(number)
    return table


def _seed_means(by_seed: list[dict[int | None, float]]) -> list[float]:
    """Per seed shared by every dataset: the average over datasets (the mean row's samples)."""
    if not by_seed or any(not d for d in by_seed):
        return []
    common = set.intersection(*(set(d) for d in by_seed))
    return [sum(d[s] for d in by_seed) / len(by_seed) for s in _seed_order(common)]


def _seed_order(seeds: Iterable[int | None]) -> list[int | None]:
    """Seeds ascending, the baseline's None last."""
    return sorted(seeds, key=lambda s: (s is None, s))


def _notes(results: ExperimentResults) -> tuple[str, ...]:
    notes = [results.setup] if results.setup else []
    return tuple(notes + ([f"baseline: {results.baseline_name}"] if results.baseline_name else []))


def _columns(results: ExperimentResults) -> list[str]:
    return results.methods + ([BASELINE] if results.baseline_name else [])


def _chosen(results: ExperimentResults, selection: str) -> list[RunRecord]:
    return [r for r in results.records if r.selection in (selection, BASELINE)]


def _samples(
    table: dict[tuple[str, str], dict[int | None, float]], datasets: list[str], dataset: str, method: str
) -> list[float]:
    if dataset == MEAN_ROW:
        return _seed_means([table.get((d, method), {}) for d in datasets])
    by_seed = table.get((dataset, method), {})
    return [by_seed[s] for s in _seed_order(by_seed)]


def _row_labels(datasets: list[str]) -> list[str]:
    return datasets + ([MEAN_ROW] if len(datasets) > 1 else [])


def rwap_gflops_table(results: ExperimentResults, selection: str = BEST, title: str | None = None) -> Table:
    """Table 3/4-style: per dataset and column, test rwAP % and GFLOPs as mean ± std over seeds."""
    records = _chosen(results, selection)
    rwap, gflops = _per_seed(records, "rwap"), _per_seed(records, "gflops")
    datasets = results.datasets
    columns = _columns(results)
    header = ["dataset"] + [f"{c} {what}" for c in columns for what in ("rwAP %", "GFLOPs")]
    rows, csv_rows = [], []
    for dataset in _row_labels(datasets):
        row = [dataset]
        for column in columns:
            scores = [100.0 * v for v in _samples(rwap, datasets, dataset, column)]
            costs = _samples(gflops, datasets, dataset, column)
            row += [format_mean_std(scores, 1), format_mean_std(costs, 2)]
            if scores:
                (score_mean, score_std), (cost_mean, cost_std) = mean_std(scores), mean_std(costs)
                csv_rows.append([dataset, column, len(scores), score_mean, score_std, cost_mean, cost_std])
        rows.append(row)
    return Table(
        title=title or "Test rwAP (%) and encoder GFLOPs of the chosen trial (highest validation rwAP minus its "
        "standard error), mean ± std over seeds",
        header=header,
        rows=rows,
        csv_header=["dataset", "method", "n", "rwap_pct_mean", "rwap_pct_std", "gflops_mean", "gflops_std"],
        csv_rows=csv_rows,
        notes=_notes(results),
    )


def metric_table(results: ExperimentResults, selection: str = BEST) -> Table:
    """Table 5-style: every metric (mean over seeds, %) per method, ranked among the dataset's methods."""
    records = _chosen(results, selection)
    per_metric = {key: _per_seed(records, key) for key in METRIC_KEYS}
    datasets = results.datasets
    columns = _columns(results)
    header = ["dataset", "method"] + [f"{METRIC_LABELS[key]} % (rank)" for key in METRIC_KEYS]
    rows: list[list[str]] = []
    csv_rows: list[list[object]] = []
    for dataset in _row_labels(datasets):
        samples = {
            (method, key): [100.0 * v for v in _samples(per_metric[key], datasets, dataset, method)]
            for method in columns
            for key in METRIC_KEYS
        }
        means = {cell: (mean_std(values)[0] if values else None) for cell, values in samples.items()}
        rank_of = {}
        for key in METRIC_KEYS:
            shown = [None if means[(m, key)] is None else round(means[(m, key)], 1) for m in columns]
            for method, rank in zip(columns, ranks(shown), strict=True):  # ranked as printed: equal cells share a rank
                rank_of[(method, key)] = rank
        for method in columns:
            if all(means[(method, key)] is None for key in METRIC_KEYS):
                continue
            row = [dataset, method]
            for key in METRIC_KEYS:
                values = samples[(method, key)]
                if not values:
                    row.append(MISSING)
                    continue
                mean, std = mean_std(values)
                row.append(f"{mean:.1f} ({rank_of[(method, key)]})")
                csv_rows.append([dataset, method, key, len(values), mean, std, rank_of[(method, key)]])
            rows.append(row)
    return Table(
        title="Test metrics (%) of each method, mean over seeds, with its rank among the methods (1 = best)",
        header=header,
        rows=rows,
        csv_header=["dataset", "method", "metric", "n", "pct_mean", "pct_std", "rank"],
        csv_rows=csv_rows,
        notes=_notes(results),
    )


def architecture_table(results: ExperimentResults) -> Table:
    """Table 6-style: each chosen architecture (paper notation) with its cost, val and test rwAP."""
    order = {method: i for i, method in enumerate(_columns(results))}
    dataset_order = {d: i for i, d in enumerate(results.datasets)}
    records = sorted(
        (r for r in results.records if r.selection in (BEST, BUDGET, BASELINE)),
        key=lambda r: (dataset_order[r.dataset], order.get(r.method, len(order)), r.seed or 0, r.selection),
    )
    header = ["dataset", "method", "seed", "selection", "trial", "GFLOPs", "val rwAP %", "test rwAP %", "architecture"]
    rows, csv_rows = [], []
    for r in records:
        val = None if r.val_rwap is None else 100.0 * r.val_rwap
        cells: list[object] = [
            r.dataset, r.method, r.seed, r.selection, r.trial, r.gflops, val, 100.0 * r.metrics["rwap"], r.architecture
        ]  # fmt: skip
        csv_rows.append(["" if c is None else c for c in cells])
        rows.append([_cell(c) for c in cells])
    return Table(
        title="Chosen architectures (per stage B=block, E=expand ratio, K=kernel, P=patch size, W=channels)",
        header=header,
        rows=rows,
        csv_header=["dataset", "method", "seed", "selection", "trial", "gflops", "val_rwap_pct", "test_rwap_pct",
                    "architecture"],  # fmt: skip
        csv_rows=csv_rows,
    )


def selection_table(results: ExperimentResults) -> Table:
    """Test rwAP % (mean ± std over seeds) per dataset of each k's pick, of its front's highest validation
    rwAP, and of the search's best default architecture by test rwAP (per seed; what the pick should not fall
    below), beside Test' and the baseline."""
    rwap = {
        "pick": _per_seed(_chosen(results, BEST), "rwap"),
        "highest": _per_seed((r for r in results.records if r.selection == HIGHEST), "rwap"),
        "default": {},
    }
    for r in results.records:
        if r.selection == DEFAULT:
            by_seed = rwap["default"].setdefault((r.dataset, r.method), {})
            by_seed[r.seed] = max(by_seed.get(r.seed, 0.0), float(r.metrics["rwap"]))
    columns = [(method, kind) for method in results.methods if method != ORACLE for kind in rwap]
    columns += [(ORACLE, "pick")] + ([(BASELINE, "pick")] if results.baseline_name else [])
    labels = {"pick": "pick", "highest": "highest val", "default": "best default"}
    header = ["dataset"] + [f"{method} {labels[kind]}" if method not in (ORACLE, BASELINE) else method
                            for method, kind in columns]  # fmt: skip
    datasets, rows, csv_rows = results.datasets, [], []
    for dataset in _row_labels(datasets):
        row = [dataset]
        for method, kind in columns:
            scores = [100.0 * v for v in _samples(rwap[kind], datasets, dataset, method)]
            row.append(format_mean_std(scores, 1))
            if scores:
                csv_rows.append([dataset, method, kind, len(scores), *mean_std(scores)])
        rows.append(row)
    return Table(
        title="Test rwAP (%) of the pick, of the front's highest validation rwAP and of the best default "
        "architecture (by test rwAP), mean ± std over seeds",
        header=header,
        rows=rows,
        csv_header=["dataset", "method", "selection", "n", "rwap_pct_mean", "rwap_pct_std"],
        csv_rows=csv_rows,
        notes=_notes(results),
    )


def _cell(value: object) -> str:
    if value is None:
        return MISSING
    if isinstance(value, float):
        return f"{value:.2f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def to_markdown(table: Table) -> str:
    """A GitHub Markdown table with the title as a heading and notes as lines under it."""

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    parts = [f"### {table.title}", ""]
    parts += [f"{note}  " for note in table.notes] + ([""] if table.notes else [])
    parts += [line(table.header), line(["---"] * len(table.header))]
    parts += [line(row) for row in table.rows]
    return "\n".join(parts) + "\n"


def write_table(table: Table, out_dir: str | Path, stem: str) -> list[Path]:
    """Write `<stem>.md` and `<stem>.csv` under `out_dir`; returns both paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    markdown = write_text(out / f"{stem}.md", to_markdown(table))
    comma = out / f"{stem}.csv"
    with atomic_path(comma) as tmp, tmp.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(table.csv_header)
        writer.writerows(table.csv_rows)
    return [markdown, comma]


def write_tables(results: ExperimentResults, out_dir: str | Path, max_gflops: float | None = None) -> list[Path]:
    """All tables of the experiment; with `max_gflops` also the Table 3/4 grid of the within-budget trials."""
    paths = write_table(rwap_gflops_table(results), out_dir, "table3_rwap_gflops")
    if max_gflops is not None:
        title = f"Test rwAP (%) and GFLOPs of the best trial with at most {max_gflops:g} GFLOPs, mean ± std over seeds"
        paths += write_table(rwap_gflops_table(results, BUDGET, title), out_dir, "table4_rwap_gflops_budget")
    paths += write_table(metric_table(results), out_dir, "table5_metrics")
    paths += write_table(architecture_table(results), out_dir, "table6_architectures")
    paths += write_table(selection_table(results), out_dir, "selection")
    return paths
