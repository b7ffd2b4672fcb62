"""Runner pieces that need no search: how roots and categories pair into table rows, which searches a
run makes, and that a cached result only counts when it was produced with the same key."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from autopatch.data import FolderDataset, load_splits
from autopatch.data.synthetic import SYNTHETIC_TYPE_PREFIX
from autopatch.errors import AutopatchError
from autopatch.experiment import ExperimentSettings
from autopatch.experiment.cache import ResultCache
from autopatch.experiment.datasets import experiment_datasets, pair_datasets
from autopatch.experiment.runner import ExperimentRunner

TOY = Path(__file__).resolve().parents[3] / "examples" / "data" / "hazelnut_toy" / "hazelnut_toy"


def test_roots_and_categories_pair_or_broadcast() -> None:
    zipped = pair_datasets(["data/mvtec_bottle", "data/magnetic_tile"], ["bottle", "magnetic_tile"])
    assert [(d.root.name, d.category, d.label) for d in zipped] == [
        ("mvtec_bottle", "bottle", "bottle"), ("magnetic_tile", "magnetic_tile", "magnetic_tile")
    ]  # fmt: skip
    one_root = pair_datasets(["mvtec"], ["bottle", "cable"])
    assert [(d.root.name, d.category) for d in one_root] == [("mvtec", "bottle"), ("mvtec", "cable")]
    shared_category = pair_datasets(["a/x", "b/y"], ["bottle"])
    assert [d.label for d in shared_category] == ["x/bottle", "y/bottle"]  # same category twice: root named
    assert [d.slug for d in shared_category] == ["x-bottle", "y-bottle"]
    with pytest.raises(AutopatchError, match="do not pair up"):
        pair_datasets(["a", "b"], ["c", "d", "e"])
    with pytest.raises(AutopatchError, match="repeats"):
        pair_datasets(["a", "a"], ["c", "c"])


def test_a_folder_dataset_is_one_row_named_after_its_folder_and_read_as_folders() -> None:
    folders = FolderDataset(TOY / "train" / "good", TOY / "test" / "colour", TOY / "ground_truth" / "colour")
    (row,) = experiment_datasets((), (), folders)
    assert (row.label, row.category, row.source, row.category_arg) == ("hazelnut_toy", "hazelnut_toy", folders, None)
    with pytest.raises(AutopatchError, match="not both"):
        experiment_datasets(("root",), ("bottle",), folders)
    with pytest.raises(AutopatchError, match="compares pixel rwAP.*--mask-dir"):
        experiment_datasets((), (), FolderDataset(TOY / "train" / "good", TOY / "test" / "colour"))


def test_searches_per_seed_are_each_k_then_the_oracle(tmp_path: Path) -> None:
    settings = ExperimentSettings(("root",), ("bottle",), str(tmp_path), ks=(2, 1), seeds=(0, 5), baseline=None)
    specs = [(s.method, s.k, s.seed, s.oracle) for s in settings.searches()]
    assert specs == [
        ("k=2", 2, 0, False), ("k=1", 1, 0, False), ("Test'", 1, 0, True),
        ("k=2", 2, 5, False), ("k=1", 1, 5, False), ("Test'", 1, 5, True),
    ]  # fmt: skip


def test_synthetic_adds_a_k0_search_per_seed_before_the_oracle(tmp_path: Path) -> None:
    settings = ExperimentSettings(("root",), ("bottle",), str(tmp_path), ks=(1,), seeds=(0, 5), baseline=None,
                                  synthetic=8, synthetic_kind="nsa")  # fmt: skip
    specs = [(s.method, s.k, s.seed, s.oracle, s.synthetic, s.synthetic_kind) for s in settings.searches()]
    assert specs == [
        ("k=1", 1, 0, False, 0, "mix"), ("k=0 (synthetic)", 0, 0, False, 8, "nsa"), ("Test'", 1, 0, True, 0, "mix"),
        ("k=1", 1, 5, False, 0, "mix"), ("k=0 (synthetic)", 0, 5, False, 8, "nsa"), ("Test'", 1, 5, True, 0, "mix"),
    ]  # fmt: skip
    assert settings.methods() == ["k=1", "k=0 (synthetic)", "Test'"]
    assert settings.setup().endswith("k=0 (synthetic): 8 synthetic anomalies (nsa)")


def test_a_synthetic_search_refits_on_its_own_validation_and_the_shared_test_split(tmp_path: Path) -> None:
    settings = ExperimentSettings((str(TOY.parent),), (TOY.name,), str(tmp_path), ks=(1,), seeds=(3,), baseline=None,
                                  image_size=32, synthetic=5, device="cpu")  # fmt: skip
    runner = ExperimentRunner(settings)
    synthetic = next(spec for spec in settings.searches() if spec.synthetic)
    splits = runner._splits_for(runner.datasets[0], synthetic)
    real = load_splits(TOY.parent, TOY.name, 1, image_size=32)  # the k=1 column's splits, made independently
    assert splits.test.paths == real.test.paths
    made = load_splits(TOY.parent, TOY.name, 0, image_size=32, synthetic=5, synthetic_seed=3)
    assert torch.equal(splits.val.images, made.val.images)  # the search's seed makes the same anomalies
    assert [t.startswith(SYNTHETIC_TYPE_PREFIX) for t in splits.val.types].count(True) == 5
    assert set(splits.val.types) - {"good"} == {t for t in splits.val.types if t.startswith(SYNTHETIC_TYPE_PREFIX)}


@pytest.mark.parametrize(
    "changes",
    [{"ks": (1, 1)}, {"seeds": ()}, {"trials": 0}, {"examples_per_type": 0}, {"baseline_coreset": 0.0},
     {"bank_fraction": 1.5}, {"baseline": "no_such_net"}, {"synthetic": -1}, {"synthetic_kind": "perlin"}],
)  # fmt: skip
def test_bad_settings_fail_before_any_work(tmp_path: Path, changes: dict) -> None:
    with pytest.raises(AutopatchError):
        ExperimentSettings(("root",), ("bottle",), str(tmp_path), **changes)


def test_cache_entry_counts_only_with_the_same_key(tmp_path: Path) -> None:
    cache = ResultCache(tmp_path / "cache")
    key = {"root": "/data", "k": 1, "architecture": {"blocks": (3, 5)}}
    assert cache.load("refit-a", key) is None
    cache.save("refit-a", key, {"metrics": {"rwap": 0.5}})
    assert cache.load("refit-a", {"root": "/data", "k": 1, "architecture": {"blocks": [3, 5]}}) == {
        "metrics": {"rwap": 0.5}
    }  # tuples and lists are the same JSON
    assert cache.load("refit-a", {**key, "k": 2}) is None
    (tmp_path / "cache" / "refit-b.json").write_text("{half a file", encoding="utf-8")
    assert cache.load("refit-b", key) is None
