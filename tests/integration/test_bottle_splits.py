"""Table-2 split sizes on the real MVTec bottle category (the counts the issue and the paper state)."""


import pytest
import torch

from autopatch.data import load_splits

DEFECTS = {"broken_large": 20, "broken_small": 22, "contamination": 21}  # anomalous images per type on disk

pytestmark = pytest.mark.realdata


def _count(types: list[str]) -> dict[str, int]:
    return {t: types.count(t) for t in sorted(set(types))}


def test_bottle_k1_counts_shapes_and_masks(bottle_root):
    splits = load_splits(bottle_root, "bottle", k=1)
    assert len(splits.train) == 189 and set(splits.train.types) == {"good"}
    assert _count(splits.val.types) == {"broken_large": 1, "broken_small": 1, "contamination": 1, "good": 20}
    assert sum(splits.test.is_anomalous) == 51 and splits.test.types.count("good") == 20
    assert _count(splits.test.types) == {t: n - 4 for t, n in DEFECTS.items()} | {"good": 20}
    assert splits.train.images.shape == (189, 3, 224, 224) and splits.train.images.dtype == torch.uint8
    assert splits.test.masks.shape == (71, 224, 224)
    anomalous = torch.tensor(splits.test.is_anomalous)
    assert not splits.test.masks[~anomalous].any()
    assert bool(splits.test.masks[anomalous].flatten(1).any(1).all())  # every bottle defect is annotated
    # The validation normals are the first 20 training files by name; they never reappear in train.
    assert [p.name for p in splits.val.paths[:20]] == [f"{i:03d}.png" for i in range(20)]
    assert not set(splits.val.paths) & set(splits.train.paths)
    assert [p.name for p in splits.val.paths[20:]] == ["000.png"] * 3


def test_bottle_test_set_is_shared_by_k_1_2_4_and_oracle_starts_at_k(bottle_root):
    small = {k: load_splits(bottle_root, "bottle", k=k, image_size=32) for k in (1, 2, 4)}
    for k in (2, 4):
        assert small[k].test.paths == small[1].test.paths
        assert torch.equal(small[k].test.images, small[1].test.images)
        assert torch.equal(small[k].test.masks, small[1].test.masks)
        assert sum(small[k].val.is_anomalous) == 3 * k
    oracle = load_splits(bottle_root, "bottle", k=2, image_size=32, oracle=True)
    assert oracle.val.paths == small[2].val.paths
    assert _count(oracle.test.types) == {t: n - 2 for t, n in DEFECTS.items()} | {"good": 20}
    first_of_type = {}
    for path, kind in zip(oracle.test.paths, oracle.test.types, strict=True):
        first_of_type.setdefault(kind, path.name)
    assert first_of_type == {"good": "000.png", "broken_large": "002.png", "broken_small": "002.png",
                             "contamination": "002.png"}
