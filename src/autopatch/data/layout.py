"""Find the files of one MVTec-layout category and check the layout before any pixel is decoded.

Expected layout (MVTec AD)::

    <root>/<category>/train/good/*.png
    <root>/<category>/test/good/*.png
    <root>/<category>/test/<defect type>/<stem>.png
    <root>/<category>/ground_truth/<defect type>/<stem>_mask.png

A `FolderDataset` (good and reject folders, optional masks; see its docstring) and a VisA category
(`split_csv/1cls.csv` beside the category folders) are checked into the same `CategoryLayout`. Every list is
sorted by file name so splits are the same on every machine (a raw directory listing is not ordered). Layout
problems raise AutopatchError with one line naming the path and the fix.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

from autopatch.errors import AutopatchError

IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
"""File name endings (compared case-insensitively) treated as images; other files are ignored."""

NORMAL_TYPE = "good"  # the type of a normal image (MVTec's folder name); every other type is a defect
MASK_SUFFIX = "_mask"


@dataclass(frozen=True)
class DefectType:
    """One defect type: its test images and the ground-truth mask of each (None: the image has no mask, as in a
    folder dataset without masks), in the same sorted order."""

    name: str
    images: tuple[Path, ...]
    masks: tuple[Path | None, ...]


@dataclass(frozen=True)
class CategoryLayout:
    """The checked file lists of one category; `defects` is sorted by defect-type name."""

    path: Path
    train_good: tuple[Path, ...]
    test_good: tuple[Path, ...]
    defects: tuple[DefectType, ...]


def list_images(directory: Path) -> list[Path]:
    """Image files directly inside `directory` (by IMAGE_EXTENSIONS, hidden files skipped), sorted by name."""
    return sorted(
        (p for p in Path(directory).iterdir()
         if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTENSIONS),
        key=lambda p: p.name,
    )


def discover_category(root: str | Path, category: str) -> CategoryLayout:
    """List and cross-check the files of `root/category`; raise AutopatchError on the first problem."""
    root = Path(root)
    if root.is_file():
        raise AutopatchError(f"dataset folder {root} is a file: pass the folder that contains the category folders")
    if not root.is_dir():
        raise AutopatchError(
            f"dataset folder {root} does not exist: pass the folder that contains the category folders"
        )
    path = root / category
    if not path.is_dir():
        available = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        raise AutopatchError(
            f"category folder {path} does not exist: pick one of {available or 'none (the folder is empty)'} "
            f"or pass the folder that contains '{category}'"
        )
    if not any(path.iterdir()):
        raise AutopatchError(
            f"category folder {path} is empty: copy the MVTec layout (train/good, test/, ground_truth/) into it"
        )
    train_good = _required_images(path / "train" / NORMAL_TYPE, "the normal training images")
    test_good = _required_images(path / "test" / NORMAL_TYPE, "the normal test images")
    if len(train_good) <= len(test_good):
        raise AutopatchError(
            f"{path / 'train' / NORMAL_TYPE} has {len(train_good)} images but {len(test_good)} are held out for "
            f"validation (as many as {path / 'test' / NORMAL_TYPE} has): add normal training images"
        )
    type_dirs = sorted(
        (p for p in (path / "test").iterdir() if p.is_dir() and p.name != NORMAL_TYPE and not p.name.startswith(".")),
        key=lambda p: p.name,
    )
    if not type_dirs:
        raise AutopatchError(
            f"{path / 'test'} has no defect-type folder besides '{NORMAL_TYPE}': add test/<type>/ with anomalous "
            f"images and ground_truth/<type>/ with their masks"
        )
    defects = tuple(_defect_type(path, d) for d in type_dirs)
    return CategoryLayout(path=path, train_good=tuple(train_good), test_good=tuple(test_good), defects=defects)


def _required_images(directory: Path, what: str) -> list[Path]:
    if not directory.is_dir():
        raise AutopatchError(f"missing folder {directory}: put {what} there (MVTec layout)")
    images = list_images(directory)
    if not images:
        raise AutopatchError(
            f"{directory} holds no images (extensions {', '.join(IMAGE_EXTENSIONS)}): put {what} there"
        )
    return images


def _defect_type(category_path: Path, type_dir: Path) -> DefectType:
    """Pair every image of test/<type> with ground_truth/<type>/<stem>_mask.* one to one."""
    name = type_dir.name
    images = _required_images(type_dir, f"the '{name}' test images (or remove the folder)")
    mask_dir = category_path / "ground_truth" / name
    if not mask_dir.is_dir():
        raise AutopatchError(
            f"defect type '{name}' has no mask folder {mask_dir}: add its masks as <image name>{MASK_SUFFIX}.png"
        )
    masks_by_stem = _unique_by_stem(list_images(mask_dir))
    images_by_stem = _unique_by_stem(images)
    counts = (
        f"{len(images)} images in {type_dir} but {len(masks_by_stem)} masks in {mask_dir}; "
        if len(images) != len(masks_by_stem) else ""
    )
    for stem, image in images_by_stem.items():
        if stem + MASK_SUFFIX not in masks_by_stem:
            raise AutopatchError(
                f"{counts}image {image} has no mask {mask_dir / (stem + MASK_SUFFIX + '.png')}: "
                f"add the mask or remove the image"
            )
    for stem, mask in masks_by_stem.items():
        if not stem.endswith(MASK_SUFFIX) or stem[: -len(MASK_SUFFIX)] not in images_by_stem:
            raise AutopatchError(
                f"{counts}mask {mask} matches no image in {type_dir} (masks are named <image stem>{MASK_SUFFIX}.png): "
                f"rename or remove it"
            )
    masks = tuple(masks_by_stem[image.stem + MASK_SUFFIX] for image in images)
    return DefectType(name=name, images=tuple(images), masks=masks)


def _unique_by_stem(files: list[Path]) -> dict[str, Path]:
    """Map file stem -> path; two files with one stem (000.png, 000.jpg) make the pairing ambiguous."""
    by_stem: dict[str, Path] = {}
    for f in files:
        if f.stem in by_stem:
            raise AutopatchError(f"{by_stem[f.stem]} and {f} share the name '{f.stem}': keep only one of them")
        by_stem[f.stem] = f
    return by_stem


DIRECT_TYPE = "defect"  # the defect type of images placed directly in an abnormal folder
TEST_SHARE = 5  # without a normal test folder, the last 1/TEST_SHARE of the sorted normal images are test images


@dataclass(frozen=True)
class FolderDataset:
    """A user's own folders (anomalib's Folder convention): good parts, rejects, optionally masks and good test
    parts. Defect types are the sub-folders of `abnormal_dir`; images directly in it are one type, "defect".
    Masks are matched by file stem (`<stem>.png` or `<stem>_mask.png`), in `mask_dir/<type>/` or flat in
    `mask_dir`; without `mask_dir` the data has image labels only. Without `normal_test_dir` the last fifth of
    the sorted normal images (at least one) are the test normals."""

    normal_dir: Path
    abnormal_dir: Path
    mask_dir: Path | None = None
    normal_test_dir: Path | None = None

    @property
    def name(self) -> str:
        """What the dataset is called in study names and model metadata: the name of the folder that holds
        both the normal and the abnormal folder (`part` for part/good and part/bad; links are not followed), or
        the normal folder's own name when they share none."""
        common = Path(os.path.commonpath([Path(self.normal_dir).absolute(), Path(self.abnormal_dir).absolute()]))
        return common.name or Path(self.normal_dir).absolute().name


def discover_folders(dataset: FolderDataset) -> CategoryLayout:
    """List and cross-check the files of a folder dataset as a `CategoryLayout` (masks may be None)."""
    normal = _required_images(Path(dataset.normal_dir), "the normal (good) images")
    if dataset.normal_test_dir is not None:
        test_good = _required_images(Path(dataset.normal_test_dir), "the normal test images")
        train_good = normal
    else:
        count = max(1, len(normal) // TEST_SHARE)
        train_good, test_good = normal[:-count], normal[-count:]
    if len(train_good) <= len(test_good):
        raise AutopatchError(
            f"{dataset.normal_dir} has {len(train_good)} normal images for training and validation but "
            f"{len(test_good)} are test normals, as many are held out for validation: add normal images"
        )
    abnormal = Path(dataset.abnormal_dir)
    if not abnormal.is_dir():
        raise AutopatchError(f"abnormal folder {abnormal} does not exist: pass the folder of rejected parts")
    groups = [(DIRECT_TYPE, list_images(abnormal))] + [
        (d.name, list_images(d))
        for d in sorted((p for p in abnormal.iterdir() if p.is_dir() and not p.name.startswith(".")),
                        key=lambda p: p.name)
    ]  # fmt: skip
    groups = [(name, images) for name, images in groups if images]
    if not groups:
        raise AutopatchError(
            f"abnormal folder {abnormal} holds no images, directly or in sub-folders: put the rejected parts there"
        )
    masks: dict[Path, Path] = {}
    if dataset.mask_dir is not None:  # masks are matched by stem: one stem in two types would be ambiguous
        _check_unique_stems(groups)
        masks = _folder_masks(Path(dataset.mask_dir), groups)
    defects = tuple(
        DefectType(name=name, images=tuple(images), masks=tuple(masks.get(image) for image in images))
        for name, images in sorted(groups)
    )
    root = Path(os.path.commonpath([Path(p).resolve() for p in (dataset.normal_dir, abnormal,
                                                                 dataset.mask_dir, dataset.normal_test_dir) if p]))
    return CategoryLayout(path=root, train_good=tuple(train_good), test_good=tuple(test_good), defects=defects)


def _check_unique_stems(groups: list[tuple[str, list[Path]]]) -> None:
    """Masks are matched by stem, so one stem in two defect types would be ambiguous."""
    seen: dict[str, Path] = {}
    for _, images in groups:
        for image in images:
            if image.stem in seen:
                raise AutopatchError(
                    f"{seen[image.stem]} and {image} share the name '{image.stem}': masks are matched by name, "
                    "so rename one of them"
                )
            seen[image.stem] = image


def _folder_masks(mask_dir: Path, groups: list[tuple[str, list[Path]]]) -> dict[Path, Path]:
    """image -> its mask, from mask_dir/<type>/ or flat in mask_dir; with a mask folder every anomalous image
    needs a mask, and every mask must match an image."""
    if not mask_dir.is_dir():
        raise AutopatchError(f"mask folder {mask_dir} does not exist: pass the folder of defect masks")
    candidates = list_images(mask_dir) + [
        mask for name, _ in groups if name != DIRECT_TYPE and (mask_dir / name).is_dir()
        for mask in list_images(mask_dir / name)
    ]  # fmt: skip
    unused = {(mask.parent.name if mask.parent != mask_dir else "", mask.stem): mask for mask in candidates}
    found: dict[Path, Path] = {}
    for name, images in groups:
        kind = "" if name == DIRECT_TYPE else name
        for image in images:
            folders = dict.fromkeys((kind, ""))  # the type's sub-folder first, then flat
            keys = [(folder, image.stem + suffix) for folder in folders for suffix in ("", MASK_SUFFIX)]
            key = next((key for key in keys if key in unused), None)
            if key is None:
                raise AutopatchError(
                    f"image {image} of '{name}' has no mask in {mask_dir} (looked for {image.stem}.png and "
                    f"{image.stem}{MASK_SUFFIX}.png, flat and in a '{name}' sub-folder); with a mask folder every "
                    "anomalous image needs one: add it, or drop the mask folder"
                )
            found[image] = unused.pop(key)
    if unused:
        stray = sorted(unused.values())[0]
        raise AutopatchError(
            f"mask {stray} matches no image of the abnormal folder (masks are named <image stem>.png or "
            f"<image stem>{MASK_SUFFIX}.png): rename or remove it"
        )
    return found


VISA_SPLIT_CSV = ("split_csv", "1cls.csv")
VISA_TYPE = "anomaly"  # VisA's 1cls split names no defect types: its anomalies are one type


def is_visa_root(root: str | Path) -> bool:
    """A VisA root holds split_csv/1cls.csv beside its category folders."""
    return Path(root).joinpath(*VISA_SPLIT_CSV).is_file()


def discover_visa(root: str | Path, category: str) -> CategoryLayout:
    """The files of one VisA category from split_csv/1cls.csv (columns object, split, label, image, mask;
    paths relative to `root`): its train normals are the train pool, its test normals the test normals, and
    its anomalies (with their masks) one defect type, each list sorted by file name."""
    root = Path(root)
    table = root.joinpath(*VISA_SPLIT_CSV)
    with table.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = {"object", "split", "label", "image", "mask"} - set(reader.fieldnames or ())
        if missing:
            raise AutopatchError(f"{table} lacks the column(s) {', '.join(sorted(missing))}: use VisA's 1cls.csv")
        rows = list(reader)
    mine = [row for row in rows if row["object"] == category]
    if not mine:
        objects = sorted({row["object"] for row in rows})
        raise AutopatchError(f"{table} has no rows for category '{category}': pick one of {objects}")

    def existing(relative: str, row_number: int) -> Path:
        path = root / relative
        if not path.is_file():
            raise AutopatchError(f"{path} (row {row_number} of {table}) does not exist: restore it or fix the row")
        return path

    train_good, test_good, anomalies = [], [], []
    for number, row in enumerate(rows, start=2):
        if row["object"] != category:
            continue
        image = existing(row["image"], number)
        if row["label"] == "normal":
            (train_good if row["split"] == "train" else test_good).append(image)
        elif not row["mask"]:
            raise AutopatchError(f"anomalous image {image} (row {number} of {table}) has no mask: add its mask path")
        else:
            anomalies.append((image, existing(row["mask"], number)))
    anomalies.sort(key=lambda pair: pair[0].name)
    if not train_good or not test_good or not anomalies:
        raise AutopatchError(
            f"{table}: category '{category}' needs train normals, test normals and anomalies; it has "
            f"{len(train_good)}, {len(test_good)} and {len(anomalies)}"
        )
    defect = DefectType(VISA_TYPE, tuple(a for a, _ in anomalies), tuple(m for _, m in anomalies))
    return CategoryLayout(path=root / category, train_good=tuple(sorted(train_good, key=lambda p: p.name)),
                          test_good=tuple(sorted(test_good, key=lambda p: p.name)), defects=(defect,))  # fmt: skip
