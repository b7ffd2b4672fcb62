"""The VisA layout (split_csv/1cls.csv beside the category folders): which file lands in which split, read
through the same DATA_ROOT --category as the MVTec layout, and one-line errors for a broken table or tree."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from autopatch.data import load_splits
from autopatch.errors import AutopatchError

SIZE = 16
HEADER = ["object", "split", "label", "image", "mask"]


def visa(root: Path, normals_train: int = 8, normals_test: int = 2, anomalies: int = 6) -> Path:
    """A VisA tree with 'candle' (as given) and a one-row 'pcb1'; normals train/test interleaved in the table."""
    rows = []
    for i in range(normals_train + normals_test):
        relative = f"candle/Data/Images/Normal/{i:04d}.JPG"
        _image(root / relative)
        rows.append(["candle", "train" if i % 5 else "test", "normal", relative, ""])
    # the table's order is not the files' order: it is shuffled here, and the splits must not depend on it
    for i in reversed(range(anomalies)):
        image, mask = f"candle/Data/Images/Anomaly/{i:03d}.JPG", f"candle/Data/Masks/Anomaly/{i:03d}.png"
        _image(root / image)
        _mask(root / mask)
        rows.append(["candle", "test", "anomaly", image, mask])
    _image(root / "pcb1/Data/Images/Normal/0000.JPG")
    rows.append(["pcb1", "train", "normal", "pcb1/Data/Images/Normal/0000.JPG", ""])
    table = root / "split_csv" / "1cls.csv"
    table.parent.mkdir(parents=True)
    with table.open("w", newline="") as handle:
        csv.writer(handle).writerows([HEADER, *rows])
    return table


def _image(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((SIZE, SIZE, 3), 128, np.uint8)).save(path, format="JPEG")


def _mask(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    mask = np.zeros((SIZE, SIZE), np.uint8)
    mask[2:6, 2:6] = 1  # VisA masks hold class indices: anything > 0 is anomalous
    Image.fromarray(mask).save(path)


def names(split) -> list[str]:
    return [p.name for p in split.paths]


def test_visa_splits_follow_table_2(tmp_path):
    visa(tmp_path, normals_train=8, normals_test=2)
    splits = load_splits(tmp_path, "candle", k=1, image_size=SIZE)
    # rows 0 and 5 are the test normals; the train pool is the other 8, its first 2 the validation normals
    assert names(splits.test)[:2] == ["0000.JPG", "0005.JPG"]
    assert names(splits.val) == ["0001.JPG", "0002.JPG", "000.JPG"]
    assert names(splits.train) == ["0003.JPG", "0004.JPG", "0006.JPG", "0007.JPG", "0008.JPG", "0009.JPG"]
    assert names(splits.test)[2:] == ["004.JPG", "005.JPG"]  # anomalies from index 4 on, in file order
    assert splits.val.types == ["good", "good", "anomaly"]
    assert int(splits.val.masks[2].sum()) == 16 and splits.val.pixel_labels


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ("unknown category", r"no rows for category 'bottle': pick one of \['candle', 'pcb1'\]"),
        ("missing file", "does not exist: restore it or fix the row"),
        ("no mask", "has no mask: add its mask path"),
        ("missing column", "lacks the column"),
    ],
)
def test_a_broken_visa_tree_is_one_line_naming_the_file(tmp_path, change, match):
    table = visa(tmp_path)
    category = "candle"
    if change == "unknown category":
        category = "bottle"
    elif change == "missing file":
        (tmp_path / "candle/Data/Images/Anomaly/003.JPG").unlink()
    else:
        with table.open(newline="") as handle:
            rows = list(csv.reader(handle))
        if change == "no mask":
            next(row for row in rows if row[2] == "anomaly")[4] = ""
        else:
            rows = [row[:4] for row in rows]
        with table.open("w", newline="") as handle:
            csv.writer(handle).writerows(rows)
    with pytest.raises(AutopatchError, match=match) as info:
        load_splits(tmp_path, category, k=1, image_size=SIZE)
    assert "\n" not in str(info.value) and str(tmp_path) in str(info.value)
