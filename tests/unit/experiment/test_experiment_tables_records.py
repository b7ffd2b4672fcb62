"""Table builders on hand-made records: the written CSV/Markdown parse, hold the expected rows and columns,
and their numbers equal mean ± sample std worked out by hand below."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from autopatch.experiment.records import ExperimentResults, FrontPoint, RunRecord
from autopatch.experiment.tables import (
    architecture_table,
    format_mean_std,
    mean_std,
    metric_table,
    ranks,
    rwap_gflops_table,
    selection_table,
    write_tables,
)


def metrics(rwap: float, auroc: float = 0.9, ap: float = 0.5, pauroc: float = 0.8, aupro: float = 0.7) -> dict:
    return {"rwap": rwap, "ap": ap, "auroc": auroc, "pauroc_0.3": pauroc, "aupro_0.3": aupro}


def record(
    dataset: str, method: str, seed: int | None, rwap: float, gflops: float, selection: str = "best", **kw: float
) -> RunRecord:
    trial, val = (None, None) if seed is None else (10 + seed, rwap + 0.01)
    return RunRecord(dataset, method, seed, selection, f"arch-{method}-{seed}", gflops, metrics(rwap, **kw), trial, val)


@pytest.fixture()
def results() -> ExperimentResults:
    """Two datasets; k=1 and Test' with seeds 0 and 1; a baseline per dataset; one budget record."""
    records = [
        record("bottle", "k=1", 0, 0.80, 0.40, auroc=0.95),
        record("bottle", "k=1", 1, 0.84, 0.30, auroc=0.97),
        record("bottle", "Test'", 0, 0.90, 0.50, auroc=0.96),
        record("bottle", "Test'", 1, 0.86, 0.70, auroc=0.96),
        record("bottle", "baseline", None, 0.81, 18.41, selection="baseline", auroc=0.99),
        record("tile", "k=1", 0, 0.50, 1.00),
        record("tile", "k=1", 1, 0.60, 2.10),
        record("tile", "Test'", 0, 0.70, 1.50),
        record("tile", "Test'", 1, 0.70, 2.50),
        record("tile", "baseline", None, 0.55, 18.41, selection="baseline"),
        record("bottle", "k=1", 0, 0.70, 0.10, selection="budget"),
    ]
    fronts = [FrontPoint("bottle", "k=1", 0, 3, 0.1, 0.7, 0.69)]
    return ExperimentResults(methods=["k=1", "Test'"], baseline_name="PatchCore wrn", records=records, fronts=fronts)


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def read_markdown(path: Path) -> tuple[list[str], list[list[str]]]:
    """Header and body cells of the one pipe table in the file."""
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.startswith("|")]
    cells = [[c.strip() for c in line.strip("|").split(" | ")] for line in lines]
    assert set(cells[1]) == {"---"}
    return cells[0], cells[2:]


def test_mean_std_and_ranks_by_hand() -> None:
    assert mean_std([80.0, 84.0]) == pytest.approx((82.0, 2.8284271247), rel=1e-9)  # sqrt(((-2)^2 + 2^2) / 1)
    assert mean_std([81.1]) == (81.1, 0.0)
    assert format_mean_std([80.0, 84.0], 1) == "82.0 ± 2.8"
    assert format_mean_std([81.1], 1) == "81.1"
    assert format_mean_std([], 1) == "–"
    assert ranks([0.5, 0.9, None, 0.9, 0.1]) == [3, 1, None, 1, 4]


def test_rwap_gflops_grid(results: ExperimentResults) -> None:
    table = rwap_gflops_table(results)
    assert table.header == ["dataset", "k=1 rwAP %", "k=1 GFLOPs", "Test' rwAP %", "Test' GFLOPs",
                            "baseline rwAP %", "baseline GFLOPs"]  # fmt: skip
    rows = {row[0]: row for row in table.rows}
    assert list(rows) == ["bottle", "tile", "mean"]
    # bottle k=1: rwAP 80, 84 -> 82.0 ± 2.8 ; GFLOPs 0.4, 0.3 -> 0.35 ± 0.07 (std = 0.0707)
    assert rows["bottle"][1:3] == ["82.0 ± 2.8", "0.35 ± 0.07"]
    assert rows["bottle"][5:7] == ["81.0", "18.41"]
    # tile Test': 70, 70 -> 70.0 ± 0.0
    assert rows["tile"][3] == "70.0 ± 0.0"
    # mean row, per seed over datasets first: k=1 seed0 (80+50)/2=65, seed1 (84+60)/2=72 -> 68.5 ± 4.9497
    assert rows["mean"][1] == "68.5 ± 4.9"
    # GFLOPs seed0 (0.4+1)/2=0.7, seed1 (0.3+2.1)/2=1.2 -> 0.95 ± 0.3536
    assert rows["mean"][2] == "0.95 ± 0.35"
    # baseline has one value per dataset: (81 + 55) / 2
    assert rows["mean"][5:7] == ["68.0", "18.41"]


def test_budget_grid_uses_budget_records_only(results: ExperimentResults) -> None:
    rows = {row[0]: row for row in rwap_gflops_table(results, "budget").rows}
    assert rows["bottle"][1:3] == ["70.0", "0.10"]
    assert rows["tile"][1] == "–"  # no budget record for tile
    assert rows["mean"][1] == "–"  # the mean needs every dataset


def test_metric_table_ranks(results: ExperimentResults) -> None:
    table = metric_table(results)
    assert table.header == ["dataset", "method", "AUROC % (rank)", "AUROC@0.3 % (rank)", "AP % (rank)",
                            "rwAP % (rank)", "AUPRO@0.3 % (rank)",
                            "image AUROC % (rank)", "image AP % (rank)"]  # fmt: skip
    rows = {(row[0], row[1]): row for row in table.rows}
    assert set(rows) == {(d, m) for d in ("bottle", "tile", "mean") for m in ("k=1", "Test'", "baseline")}
    # bottle AUROC: k=1 (95+97)/2=96, Test' 96, baseline 99 -> ranks 2, 2, 1
    assert rows[("bottle", "k=1")][2] == "96.0 (2)"
    assert rows[("bottle", "Test'")][2] == "96.0 (2)"
    assert rows[("bottle", "baseline")][2] == "99.0 (1)"
    # bottle rwAP: k=1 82, Test' 88, baseline 81 -> 2, 1, 3
    assert [rows[("bottle", m)][5] for m in ("k=1", "Test'", "baseline")] == ["82.0 (2)", "88.0 (1)", "81.0 (3)"]
    # these records were cached before image metrics existed: their cells are missing, not zero
    assert {row[7] for row in table.rows} == {row[8] for row in table.rows} == {"–"}


def test_architecture_table_lists_every_record(results: ExperimentResults) -> None:
    table = architecture_table(results)
    assert len(table.rows) == len(results.records)
    first = dict(zip(table.header, table.rows[0], strict=True))
    assert first["dataset"] == "bottle" and first["method"] == "k=1" and first["seed"] == "0"
    assert first["architecture"] == "arch-k=1-0" and first["test rwAP %"] == "80.0"


def test_written_files_parse(results: ExperimentResults, tmp_path: Path) -> None:
    paths = write_tables(results, tmp_path, max_gflops=0.2)
    names = sorted(p.name for p in paths)
    assert names == sorted(f"{stem}.{ext}" for stem in ("table3_rwap_gflops", "table4_rwap_gflops_budget",
                                                        "table5_metrics", "table6_architectures", "selection")
                           for ext in ("md", "csv"))  # fmt: skip
    header, body = read_markdown(tmp_path / "table3_rwap_gflops.md")
    assert header[0] == "dataset" and [row[0] for row in body] == ["bottle", "tile", "mean"]
    rows = read_csv(tmp_path / "table3_rwap_gflops.csv")
    bottle_k1 = next(r for r in rows if r["dataset"] == "bottle" and r["method"] == "k=1")
    assert int(bottle_k1["n"]) == 2
    assert float(bottle_k1["rwap_pct_mean"]) == pytest.approx(82.0)
    assert float(bottle_k1["rwap_pct_std"]) == pytest.approx(2.8284271247)
    assert float(bottle_k1["gflops_mean"]) == pytest.approx(0.35)
    metric_rows = read_csv(tmp_path / "table5_metrics.csv")
    assert len(metric_rows) == 3 * 3 * 5  # datasets incl. mean x methods x metrics
    tile_base = next(r for r in metric_rows if (r["dataset"], r["method"], r["metric"]) == ("tile", "baseline", "rwap"))
    # tile rwAP: Test' 70, k=1 (50+60)/2 = 55, baseline 55 -> the tie shares rank 2
    assert float(tile_base["pct_mean"]) == pytest.approx(55.0) and tile_base["rank"] == "2"
    header6, body6 = read_markdown(tmp_path / "table6_architectures.md")
    assert len(body6) == len(results.records) and header6[-1] == "architecture"


def test_selection_table_sets_the_pick_beside_the_highest_value_and_the_best_default(results):
    results.records += [
        record("bottle", "k=1", 0, 0.76, 0.2, selection="highest"),
        record("bottle", "k=1", 1, 0.84, 0.3, selection="highest"),
        record("bottle", "k=1", 0, 0.78, 0.5, selection="default"),
        record("bottle", "k=1", 0, 0.83, 0.9, selection="default"),  # seed 0's best default: 83
        record("bottle", "k=1", 1, 0.79, 0.5, selection="default"),
    ]
    table = selection_table(results)
    assert table.header == ["dataset", "k=1 pick", "k=1 highest val", "k=1 best default", "Test'", "baseline"]
    bottle = dict(zip(table.header, table.rows[0], strict=True))
    # pick: 80, 84; highest: 76, 84; best default: 83, 79 (sample std of two values: |a - b| / sqrt 2)
    assert bottle["k=1 pick"] == "82.0 ± 2.8"
    assert bottle["k=1 highest val"] == "80.0 ± 5.7"
    assert bottle["k=1 best default"] == "81.0 ± 2.8"
    assert bottle["Test'"] == "88.0 ± 2.8" and bottle["baseline"] == "81.0"
    tile = dict(zip(table.header, table.rows[1], strict=True))
    assert tile["k=1 highest val"] == "–" and tile["k=1 pick"] == "55.0 ± 7.1"
    # the architectures table keeps to the chosen models
    assert len(architecture_table(results).rows) == len(results.records) - 5
