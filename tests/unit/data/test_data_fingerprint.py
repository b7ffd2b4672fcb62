"""data_fingerprint: the same files anywhere give one fingerprint; another file, size or split another one."""

import shutil
from pathlib import Path

import pytest
from PIL import Image

from autopatch.data import data_fingerprint

TOY = Path(__file__).resolve().parents[3] / "examples" / "data" / "hazelnut_toy"
CATEGORY = "hazelnut_toy"


@pytest.fixture
def copy(tmp_path):
    shutil.copytree(TOY, tmp_path / "a")
    return tmp_path / "a"


def test_a_moved_copy_keeps_the_fingerprint(copy, tmp_path):
    moved = tmp_path / "elsewhere" / "data"
    shutil.copytree(copy, moved)
    fingerprints = {data_fingerprint(root, CATEGORY, 1) for root in (TOY, copy, moved)}
    assert len(fingerprints) == 1


def test_a_re_encoded_image_a_removed_image_or_other_splits_change_it(copy):
    original = data_fingerprint(copy, CATEGORY, 1)
    assert data_fingerprint(copy, CATEGORY, 2) != original
    assert data_fingerprint(copy, CATEGORY, 1, oracle=True) != original
    image = copy / CATEGORY / "train" / "good" / "020.png"
    Image.open(image).convert("RGB").save(image, format="PNG", compress_level=0)
    re_encoded = data_fingerprint(copy, CATEGORY, 1)
    assert re_encoded != original
    (copy / CATEGORY / "train" / "good" / "021.png").unlink()
    assert data_fingerprint(copy, CATEGORY, 1) not in (original, re_encoded)
