"""Find the files of one MVTec-layout category and check the layout before any pixel is decoded.

Expected layout (MVTec AD)::

    <root>/<category>/train/good/*.png
    <root>/<category>/test/good/*.png
    <root>/<category>/test/<defect type>/<stem>.png
    <root>/<category>/ground_truth/<defect type>/<stem>_mask.png

Every list is sorted by file name so splits are the same on every machine (a raw directory listing
is not ordered). Layout problems raise AutopatchError with one line naming the path and the fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from autopatch.errors import AutopatchError

IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
"""File name endings (compared case-insensitively) treated as images; other files are ignored."""

NORMAL_TYPE = "good"  # the type of a normal image (MVTec's folder name); every other type is a defect
MASK_SUFFIX = "_mask"


@dataclass(frozen=True)
class DefectType:
    """One defect type: its test images and the ground-truth mask of each, in the same sorted order."""

    name: str
    images: tuple[Path, ...]
    masks: tuple[Path, ...]


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
