"""Folder datasets (good / reject folders, optional masks): which file lands in which split, masks matched by
stem, and a one-line error naming the path for every bad layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from autopatch.data import FolderDataset, load_splits
from autopatch.errors import AutopatchError

SIZE = 16


def write(path: Path, value: int = 0, size: tuple[int, int] = (SIZE, SIZE), mask: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    shape = size[::-1] if mask else (*size[::-1], 3)
    Image.fromarray(np.full(shape, value, np.uint8)).save(path)
    return path


def folders(tmp_path: Path, normals: int = 10, types: dict[str, int] | None = None, masks: str | None = None,
            direct: int = 0) -> FolderDataset:  # fmt: skip
    """normals good images; per type n rejects (sub-folders) and `direct` rejects in the abnormal folder itself;
    masks 'flat', 'typed' or None, each mask's pixel (0, 0) set."""
    for i in range(normals):
        write(tmp_path / "good" / f"g{i:02d}.png", value=i)
    types = {"crack": 5, "stain": 2} if types is None else types
    rejects = [(kind, f"{kind}{i}") for kind, n in types.items() for i in range(n)]
    rejects += [("", f"d{i}") for i in range(direct)]
    for kind, stem in rejects:
        image = write(tmp_path / "bad" / kind / f"{stem}.png", value=200)
        if masks is not None:
            folder = tmp_path / "masks" / (kind if masks == "typed" else "")
            mask = np.zeros((SIZE, SIZE), np.uint8)
            mask[:4, :4] = 255
            folder.mkdir(parents=True, exist_ok=True)
            name = f"{stem}_mask.png" if stem.endswith("0") else f"{stem}.png"  # both namings
            Image.fromarray(mask).save(folder / name)
        assert image.is_file()
    return FolderDataset(tmp_path / "good", tmp_path / "bad", tmp_path / "masks" if masks else None)


def names(split) -> list[str]:
    return [p.name for p in split.paths]


@pytest.mark.parametrize("masks", ["flat", "typed"])
def test_splits_follow_table_2_with_masks_matched_by_stem(tmp_path, masks):
    splits = load_splits(folders(tmp_path, masks=masks), None, k=1, image_size=SIZE)
    # 10 normals: the last fifth (2) are test normals, the first 2 of the rest validation normals
    assert names(splits.train) == [f"g{i:02d}.png" for i in range(2, 8)]
    assert names(splits.val) == ["g00.png", "g01.png", "crack0.png", "stain0.png"]
    # crack (5 images) from index 4 on; stain (2 images, fewer than 4) every image after the k validation ones
    assert names(splits.test) == ["g08.png", "g09.png", "crack4.png", "stain1.png"]
    assert splits.val.types == ["good", "good", "crack", "stain"]
    assert splits.val.pixel_labels and splits.test.pixel_labels
    crack4 = splits.test.masks[2]  # its mask marks the 4 x 4 corner (no resize at SIZE)
    assert int(crack4.sum()) == 16 and crack4[:4, :4].all() and not splits.test.masks[0].any()


def test_without_masks_the_splits_have_image_labels_only(tmp_path):
    splits = load_splits(folders(tmp_path, direct=3), None, k=1, image_size=SIZE)
    assert names(splits.val)[2:] == ["crack0.png", "d0.png", "stain0.png"]  # images directly in bad/: 'defect'
    assert splits.val.types[2:] == ["crack", "defect", "stain"]
    assert not splits.val.pixel_labels and not splits.test.pixel_labels and splits.train.pixel_labels
    assert not splits.val.masks.any()


def test_an_explicit_normal_test_folder_gives_the_test_normals(tmp_path):
    dataset = folders(tmp_path)
    for i in range(3):
        write(tmp_path / "good_test" / f"t{i}.png")
    explicit = FolderDataset(dataset.normal_dir, dataset.abnormal_dir, normal_test_dir=tmp_path / "good_test")
    splits = load_splits(explicit, None, k=1, image_size=SIZE)
    assert names(splits.test)[:3] == ["t0.png", "t1.png", "t2.png"]
    assert names(splits.val)[:3] == ["g00.png", "g01.png", "g02.png"] and len(splits.train) == 7


def _raises(dataset: FolderDataset, match: str, path: Path) -> None:
    with pytest.raises(AutopatchError, match=match) as info:
        load_splits(dataset, None, k=1, image_size=SIZE)
    assert "\n" not in str(info.value) and str(path) in str(info.value), str(info.value)


def test_an_empty_abnormal_folder(tmp_path):
    dataset = folders(tmp_path, types={})
    (tmp_path / "bad").mkdir()
    _raises(dataset, "holds no images", tmp_path / "bad")


def test_a_mask_that_matches_no_image(tmp_path):
    dataset = folders(tmp_path, masks="flat")
    stray = write(tmp_path / "masks" / "nothing.png", mask=True)
    _raises(dataset, "matches no image", stray)


def test_a_type_with_masks_for_some_images_only(tmp_path):
    dataset = folders(tmp_path, masks="typed")
    (tmp_path / "masks" / "crack" / "crack3.png").unlink()
    _raises(dataset, "has no mask", tmp_path / "bad" / "crack" / "crack3.png")


def test_a_mask_of_another_size(tmp_path):
    dataset = folders(tmp_path, masks="flat")
    mask = write(tmp_path / "masks" / "crack4.png", size=(SIZE + 2, SIZE), mask=True)
    _raises(dataset, "but its image is", mask)


def test_one_stem_in_two_defect_types_with_masks(tmp_path):
    dataset = folders(tmp_path, masks="flat")
    write(tmp_path / "bad" / "stain" / "crack1.png")
    _raises(dataset, "share the name 'crack1'", tmp_path / "bad" / "stain" / "crack1.png")
    plain = folders(tmp_path / "plain")  # without masks the same names in two types are fine (MVTec's naming)
    write(tmp_path / "plain" / "bad" / "stain" / "crack1.png")
    val = load_splits(plain, None, k=1, image_size=SIZE).val
    named = [(p.name, kind) for p, kind in zip(val.paths, val.types, strict=True)]
    assert named[-2:] == [("crack0.png", "crack"), ("crack1.png", "stain")]


def test_a_missing_abnormal_folder(tmp_path):
    for i in range(10):
        write(tmp_path / "good" / f"g{i}.png")
    _raises(FolderDataset(tmp_path / "good", tmp_path / "rejects"), "does not exist", tmp_path / "rejects")


def long_parts(tmp_path: Path) -> FolderDataset:
    """Parts 40 px wide and 20 px high; each reject's mask marks a 3 px wide vertical crack at x = 30..32."""
    for i in range(10):
        write(tmp_path / "good" / f"g{i:02d}.png", value=i, size=(40, 20))
    for i in range(5):
        write(tmp_path / "bad" / "crack" / f"c{i}.png", value=200, size=(40, 20))
        mask = np.zeros((20, 40), np.uint8)
        mask[:, 30:33] = 255
        (tmp_path / "masks").mkdir(exist_ok=True)
        Image.fromarray(mask).save(tmp_path / "masks" / f"c{i}.png")
    return FolderDataset(tmp_path / "good", tmp_path / "bad", tmp_path / "masks")


@pytest.mark.parametrize(("size", "resize"), [("16x32", "stretch"), (16, "keep-aspect")])
def test_a_long_part_keeps_its_shape_and_its_thin_defect(tmp_path, size, resize):
    splits = load_splits(long_parts(tmp_path), None, k=1, image_size=size, resize=resize)
    assert splits.image_size == (16, 32) and splits.test.images.shape[1:] == (3, 16, 32)
    # the oracle: PIL's own bilinear resize of the mask file to 32 x 16, then > 0
    want = np.asarray(Image.open(tmp_path / "masks" / "c4.png").resize((32, 16), Image.Resampling.BILINEAR)) > 0
    got = splits.test.masks[splits.test.types.index("crack")].numpy()
    np.testing.assert_array_equal(got, want)
    assert got[:, 24:27].all() and not got[:, :20].any()  # still a full-height crack, 2-3 px wide


def test_squashing_the_long_part_to_a_square_halves_the_crack(tmp_path):
    square = load_splits(long_parts(tmp_path), None, k=1, image_size=16).test.masks[-1]
    long = load_splits(long_parts(tmp_path), None, k=1, image_size="16x32").test.masks[-1]
    assert int(long.sum()) > int(square.sum())  # what --image-size HxW is for
