"""Table-2 splits on a hand-built category where the expected file of every split position is written out."""

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from autopatch.data import Split, load_splits
from autopatch.errors import AutopatchError, AutopatchWarning

SIZE = 8
FOLDER_CODE = {"train/good": 10, "test/good": 20, "test/cut": 30, "test/hole": 40}


def _write(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def _drawn_mask(index: int) -> np.ndarray:
    """A rectangle that differs per image, so a mask landing on the wrong image is noticed."""
    mask = np.zeros((SIZE, SIZE), dtype=bool)
    mask[index % SIZE, : index % SIZE + 1] = True
    mask[SIZE - 1, SIZE - 1] = True
    return mask


def make_category(root: Path, counts: dict[str, int] | None = None) -> Path:
    """Constant images whose red value is the file index and green value the folder code; masks from _drawn_mask.

    Files are written in reverse order so creation order never matches the sorted order.
    """
    counts = counts or {"train/good": 6, "test/good": 2, "test/cut": 5, "test/hole": 6}
    category = root / "toy"
    for folder, n in counts.items():
        defect = folder.split("/")[1]
        for i in reversed(range(n)):
            pixel = np.zeros((SIZE, SIZE, 3), dtype=np.uint8)
            pixel[..., 0], pixel[..., 1], pixel[..., 2] = i, FOLDER_CODE[folder], 255
            _write(category / folder / f"{i:03d}.png", pixel)
            if defect != "good":
                _write(category / "ground_truth" / defect / f"{i:03d}_mask.png", _drawn_mask(i).astype(np.uint8) * 255)
    return category


def _ids(split: Split) -> list[str]:
    return [f"{p.parent.parent.name}/{p.parent.name}/{p.name}" for p in split.paths]


def _check_pixels_and_masks(split: Split) -> None:
    """Each image must carry the identity of its own path, and each mask the rectangle drawn for it."""
    for image, mask, kind, path in zip(split.images, split.masks, split.types, split.paths, strict=True):
        index = int(path.stem)
        folder = f"{path.parent.parent.name}/{path.parent.name}"
        assert bool((image[0] == index).all()) and bool((image[1] == FOLDER_CODE[folder]).all())
        assert kind == path.parent.name
        expected = np.zeros((SIZE, SIZE), bool) if kind == "good" else _drawn_mask(index)
        assert np.array_equal(mask.numpy(), expected)


def test_k1_splits_hold_exactly_the_expected_files(tmp_path):
    make_category(tmp_path)
    splits = load_splits(tmp_path, "toy", k=1, image_size=SIZE, workers=3)
    assert _ids(splits.train) == [f"train/good/{i:03d}.png" for i in (2, 3, 4, 5)]
    assert _ids(splits.val) == ["train/good/000.png", "train/good/001.png", "test/cut/000.png", "test/hole/000.png"]
    assert _ids(splits.test) == ["test/good/000.png", "test/good/001.png", "test/cut/004.png",
                                 "test/hole/004.png", "test/hole/005.png"]
    assert splits.val.types == ["good", "good", "cut", "hole"]
    assert splits.val.is_anomalous == [False, False, True, True]
    assert (len(splits.train), len(splits.val), len(splits.test)) == (4, 4, 5)
    for split in (splits.train, splits.val, splits.test):
        assert split.images.dtype == torch.uint8 and split.images.shape[1:] == (3, SIZE, SIZE)
        assert split.masks.dtype == torch.bool
        _check_pixels_and_masks(split)


def test_k2_changes_val_only_and_oracle_test_starts_at_k(tmp_path):
    make_category(tmp_path)
    k1 = load_splits(tmp_path, "toy", k=1, image_size=SIZE)
    k2 = load_splits(tmp_path, "toy", k=2, image_size=SIZE)
    assert _ids(k2.val)[2:] == ["test/cut/000.png", "test/cut/001.png", "test/hole/000.png", "test/hole/001.png"]
    assert _ids(k2.test) == _ids(k1.test) and torch.equal(k2.test.images, k1.test.images)
    oracle = load_splits(tmp_path, "toy", k=2, image_size=SIZE, oracle=True)
    assert _ids(oracle.val) == _ids(k2.val)
    assert _ids(oracle.test) == ["test/good/000.png", "test/good/001.png"] + [
        f"test/cut/{i:03d}.png" for i in (2, 3, 4)] + [f"test/hole/{i:03d}.png" for i in (2, 3, 4, 5)]
    _check_pixels_and_masks(oracle.test)


def test_resizing_changes_only_the_pixel_grid(tmp_path):
    make_category(tmp_path)
    splits = load_splits(tmp_path, "toy", k=1, image_size=4)
    assert splits.test.images.shape == (5, 3, 4, 4) and splits.test.masks.shape == (5, 4, 4)
    # Constant images stay constant; every drawn mask touches the bottom-right corner pixel.
    assert bool((splits.test.images[:, 2] == 255).all())
    assert bool(splits.test.masks[2:, 3, 3].all()) and not splits.test.masks[:2].any()


def test_files_that_are_not_images_are_ignored(tmp_path):
    category = make_category(tmp_path)
    (category / "train" / "good" / "notes.txt").write_text("hello")
    (category / "train" / "good" / ".DS_Store").write_bytes(b"\0")
    assert len(load_splits(tmp_path, "toy", k=1, image_size=SIZE).train) == 4


def _raises(root: Path, match: str, names: Path | str, **kwargs) -> str:
    kwargs = {"category": "toy", "k": 1, "image_size": SIZE, **kwargs}
    with pytest.raises(AutopatchError, match=match) as info:
        load_splits(root, **kwargs)
    message = str(info.value)
    assert "\n" not in message, message
    assert str(names) in message, message
    assert ": " in message, message  # "<problem naming the path>: <fix>"
    return message


def test_missing_train_good(tmp_path):
    category = make_category(tmp_path, {"test/good": 2, "test/cut": 5})
    _raises(tmp_path, "missing folder", category / "train" / "good")


def test_train_good_without_images(tmp_path):
    category = make_category(tmp_path, {"test/good": 2, "test/cut": 5})
    (category / "train" / "good").mkdir(parents=True)
    _raises(tmp_path, "holds no images", category / "train" / "good")


def test_missing_test_good(tmp_path):
    category = make_category(tmp_path, {"train/good": 6, "test/cut": 5})
    _raises(tmp_path, "missing folder", category / "test" / "good")


def test_too_few_training_images_for_the_holdout(tmp_path):
    category = make_category(tmp_path, {"train/good": 2, "test/good": 2, "test/cut": 5})
    _raises(tmp_path, "add normal training images", category / "train" / "good")


def test_defect_type_without_ground_truth(tmp_path):
    category = make_category(tmp_path)
    for mask in (category / "ground_truth" / "hole").iterdir():
        mask.unlink()
    (category / "ground_truth" / "hole").rmdir()
    _raises(tmp_path, "no mask folder", category / "ground_truth" / "hole")


def test_image_without_mask_reports_counts(tmp_path):
    category = make_category(tmp_path)
    (category / "ground_truth" / "cut" / "003_mask.png").unlink()
    message = _raises(tmp_path, "has no mask", category / "test" / "cut" / "003.png")
    assert "5 images" in message and "4 masks" in message


def test_mask_without_image(tmp_path):
    category = make_category(tmp_path)
    (category / "test" / "cut" / "002.png").unlink()
    _raises(tmp_path, "matches no image", category / "ground_truth" / "cut" / "002_mask.png")


def test_mask_name_mismatch(tmp_path):
    category = make_category(tmp_path)
    masks = category / "ground_truth" / "cut"
    (masks / "001_mask.png").rename(masks / "001_gt.png")
    _raises(tmp_path, "has no mask", category / "test" / "cut" / "001.png")


def test_two_files_with_one_stem(tmp_path):
    category = make_category(tmp_path)
    _write(category / "test" / "cut" / "000.jpg", np.zeros((SIZE, SIZE, 3), np.uint8))
    _raises(tmp_path, "share the name", category / "test" / "cut" / "000.jpg")


def test_mask_size_differs_from_image_size(tmp_path):
    category = make_category(tmp_path)
    _write(category / "ground_truth" / "hole" / "000_mask.png", np.zeros((SIZE, SIZE + 1), np.uint8))
    mask = category / "ground_truth" / "hole" / "000_mask.png"
    _raises(tmp_path, f"is {SIZE + 1}x{SIZE} but its image is {SIZE}x{SIZE}", mask)


def test_unreadable_file(tmp_path):
    category = make_category(tmp_path)
    (category / "train" / "good" / "004.png").write_bytes(b"\x89PNG but not really")
    _raises(tmp_path, "cannot read image", category / "train" / "good" / "004.png")


def test_zero_byte_file(tmp_path):
    category = make_category(tmp_path)
    (category / "ground_truth" / "cut" / "004_mask.png").write_bytes(b"")
    _raises(tmp_path, r"0 bytes", category / "ground_truth" / "cut" / "004_mask.png")


def test_k_larger_than_the_anomalies_of_a_type(tmp_path):
    category = make_category(tmp_path)
    message = _raises(tmp_path, "k=6 exceeds the 5 anomalous images of 'cut'", category / "test" / "cut",
                      k=6, holdout_anomalies=6)
    assert "k <= 5" in message


def test_type_left_without_test_images(tmp_path):
    category = make_category(tmp_path, {"train/good": 6, "test/good": 2, "test/cut": 2})
    _raises(tmp_path, "none is left for the test set", category / "test" / "cut", k=2)
    assert len(load_splits(tmp_path, "toy", k=1, image_size=SIZE, oracle=True).test) == 2 + 1


def test_a_type_with_no_more_than_holdout_images_tests_on_all_after_k(tmp_path):
    make_category(tmp_path, {"train/good": 6, "test/good": 2, "test/cut": 4})
    test = load_splits(tmp_path, "toy", k=1, image_size=SIZE).test  # 4 images: none from index 4 on
    assert [p.name for p in test.paths if "cut" in p.parts] == ["001.png", "002.png", "003.png"]


def test_holdout_smaller_than_k_names_the_cli_flags_and_the_python_keywords(tmp_path):
    make_category(tmp_path)
    message = _raises(tmp_path, "use --k 1 or less, or --test-oracle", "k=2 (--k)", k=2, holdout_anomalies=1)
    assert "holdout_anomalies >= k, or oracle=True" in message


def test_a_data_root_that_is_a_file_says_so(tmp_path):
    (tmp_path / "data.zip").write_bytes(b"PK")
    _raises(tmp_path / "data.zip", "is a file: pass the folder", tmp_path / "data.zip")


def test_a_validation_split_with_all_black_masks_names_its_images(tmp_path):
    category = make_category(tmp_path)
    splits = load_splits(tmp_path, "toy", k=1, image_size=SIZE)
    splits.val.masks.zero_()
    with pytest.raises(AutopatchError) as info:
        splits.val.check_marks_anomalies("validation")
    message = str(info.value)
    anomalous = [p for p, bad in zip(splits.val.paths, splits.val.is_anomalous, strict=True) if bad]
    assert "\n" not in message and str(anomalous[0]) in message and str(category) in message
    assert "not all black" in message


@pytest.mark.parametrize("k", [0, -1, 1.5, True])
def test_invalid_k(tmp_path, k):
    make_category(tmp_path)
    _raises(tmp_path, "is invalid", f"k={k!r}", k=k)


def test_empty_category(tmp_path):
    (tmp_path / "toy").mkdir()
    _raises(tmp_path, "is empty", tmp_path / "toy")


def test_category_without_defect_types(tmp_path):
    category = make_category(tmp_path, {"train/good": 6, "test/good": 2})
    _raises(tmp_path, "no defect-type folder", category / "test")


def test_missing_category_folder_lists_the_available_ones(tmp_path):
    make_category(tmp_path)
    message = _raises(tmp_path, "does not exist", tmp_path / "bottle", category="bottle")
    assert "['toy']" in message


def test_missing_dataset_folder(tmp_path):
    _raises(tmp_path / "nowhere", "does not exist", tmp_path / "nowhere")


def test_split_rejects_inconsistent_fields():
    with pytest.raises(AutopatchError, match="masks must be bool"):
        Split(torch.zeros(2, 3, 4, 4, dtype=torch.uint8), torch.zeros(2, 4, 5, dtype=torch.bool), ["good"] * 2,
              [Path("a"), Path("b")])
    with pytest.raises(AutopatchError, match="1 types"):
        Split(torch.zeros(2, 3, 4, 4, dtype=torch.uint8), torch.zeros(2, 4, 4, dtype=torch.bool), ["good"],
              [Path("a"), Path("b")])


def test_thin_splits_warn_in_one_line_and_still_load(tmp_path):
    make_category(tmp_path, {"train/good": 8, "test/good": 2, "test/cut": 6})  # 6 train images, one defect type
    with pytest.warns(AutopatchWarning) as caught:
        splits = load_splits(tmp_path, "toy", k=1, image_size=SIZE)
    messages = sorted(str(w.message) for w in caught)
    assert len(messages) == 2 and all("\n" not in m for m in messages)
    assert "only 6 training images remain once the 2 validation normals" in messages[0]
    assert "single anomaly" in messages[1] and len(splits.train) == 6


def test_enough_images_and_anomalies_give_no_warning(tmp_path):
    make_category(tmp_path, {"train/good": 14, "test/good": 2, "test/cut": 6, "test/hole": 6})
    with warnings.catch_warnings():
        warnings.simplefilter("error", AutopatchWarning)
        load_splits(tmp_path, "toy", k=1, image_size=SIZE)
