"""The paper's few-shot splits (Table 2) of one MVTec-layout category or folder dataset, decoded once into
tensors.

With n_holdout = number of files in test/good (a folder dataset's test normals) and every list sorted by file
name:

- train: train/good without its first n_holdout files (the bank is fitted on these);
- val:   those n_holdout normal images + the first k images of every defect type (the search objective);
- test:  all of test/good + every defect type's images from index `holdout_anomalies` on, so k = 1, 2
         and 4 share one test set (default 4). `oracle=True` gives the paper's Test' instead: defect
         images from index k on, i.e. every anomaly not used for validation. A defect type with no more
         than `holdout_anomalies` images gives the test set every image from index k on.

Images are kept as one uint8 tensor per split so repeated search trials never decode files again;
normalisation happens per backbone later.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from autopatch.data.decode import decode_pairs
from autopatch.data.layout import (
    NORMAL_TYPE,
    CategoryLayout,
    FolderDataset,
    discover_category,
    discover_folders,
    discover_visa,
    is_visa_root,
)
from autopatch.data.synthetic import MIX, SOURCE_IMAGES, SYNTHETIC_TYPE_PREFIX, make_synthetic
from autopatch.errors import AutopatchError, AutopatchWarning
from autopatch.image_size import ImageSize, check_resize, parse_image_size, resolve_image_size


@dataclass(frozen=True)
class Split:
    """Images uint8 [N,3,H,W], masks bool [N,H,W] (all false for normal images), defect type and file per image.
    `pixel_labels` is False when some anomalous image has no mask (a folder dataset without masks): then
    the masks say nothing and only image-level metrics apply."""

    images: torch.Tensor
    masks: torch.Tensor
    types: list[str]
    paths: list[Path]
    pixel_labels: bool = True

    def __post_init__(self) -> None:
        n = self.images.shape[0]
        if self.images.dtype != torch.uint8 or self.images.dim() != 4 or self.images.shape[1] != 3:
            raise AutopatchError(
                f"Split images must be uint8 [N,3,S,S], got {self.images.dtype} {tuple(self.images.shape)}"
            )
        if self.masks.dtype != torch.bool or tuple(self.masks.shape) != (n, *self.images.shape[2:]):
            raise AutopatchError(
                f"Split masks must be bool {[n, *self.images.shape[2:]]}, "
                f"got {self.masks.dtype} {list(self.masks.shape)}"
            )
        if len(self.types) != n or len(self.paths) != n:
            raise AutopatchError(f"Split has {n} images but {len(self.types)} types and {len(self.paths)} paths")

    def __len__(self) -> int:
        return len(self.types)

    @property
    def is_anomalous(self) -> list[bool]:
        """Per image: True for a defect type, False for "good"."""
        return [t != NORMAL_TYPE for t in self.types]

    def check_marks_anomalies(self, name: str) -> None:
        """The pixel metrics and thresholds need anomalous pixels: one error line naming the images whose masks
        are empty when none of this split's masks marks any."""
        if bool(self.masks.any()):
            return
        empty = [str(path) for path, anomalous in zip(self.paths, self.is_anomalous, strict=True) if anomalous]
        listed = ", ".join(empty[:3]) + (f" and {len(empty) - 3} more" if len(empty) > 3 else "")
        raise AutopatchError(
            f"the {name} split's masks mark no anomalous pixel (images: {listed or 'none anomalous'}); "
            "check that their ground_truth masks are not all black"
        )


@dataclass(frozen=True)
class Splits:
    """train (normal only), val (search objective) and test (or Test' with oracle=True)."""

    train: Split
    val: Split
    test: Split

    @property
    def image_size(self) -> ImageSize:
        """(height, width) every image was resized to."""
        return int(self.train.images.shape[-2]), int(self.train.images.shape[-1])


_Item = tuple[Path, Path | None, str]  # image, mask (None for normal and mask-less images), defect type


def load_splits(
    root: str | Path | FolderDataset,
    category: str | None,
    k: int,
    image_size: int | str | ImageSize = 224,
    holdout_anomalies: int = 4,
    oracle: bool = False,
    workers: int | None = None,
    resize: str = "stretch",
    synthetic: int = 0,
    synthetic_kind: str = MIX,
    synthetic_seed: int = 0,
) -> Splits:
    """Check the layout of `root/category` (or of the folder dataset `root`, with `category` None), build the
    Table-2 splits for `k` shots and decode them.

    `holdout_anomalies` (>= k) fixes where the test anomalies start; it is ignored with `oracle=True`,
    where the test anomalies start at k. Every defect type must keep at least one test image (k below its
    image count).
    `workers` is the number of decoding threads (default: one per core, at most 8). `image_size` and `resize`
    are read as `data.size` says; with `resize="keep-aspect"` the first train image fixes the aspect ratio.
    `synthetic` > 0 adds that many synthetic anomalies of `synthetic_kind` (`data.synthetic`, seeded by
    `synthetic_seed`) to the validation split, made from `synthetic_sources` train normals that then leave the
    train split, so no validation normal or train image is ever part of one; k may then be 0.
    """
    _check_int("synthetic", synthetic, 0, "the number of synthetic validation anomalies, e.g. 16")
    _check_int("k", k, 0 if synthetic else 1, "the number of anomalous images per defect type used for validation, "
               "e.g. 1; 0 needs synthetic anomalies (--synthetic N)")  # fmt: skip
    _check_int("holdout_anomalies", holdout_anomalies, 0, "the index where test anomalies start, e.g. 4")
    parse_image_size(image_size)
    check_resize(resize)
    if not oracle and holdout_anomalies < k:
        raise AutopatchError(
            f"k={k} (--k) is more than the {holdout_anomalies} anomalies per defect type kept out of the test split, "
            f"so validation anomalies would also be test anomalies: use --k {holdout_anomalies} or less, "
            "or --test-oracle (in Python: holdout_anomalies >= k, or oracle=True)"
        )
    layout = discover(root, category)
    train, val, test = _split_items(layout, k, k if oracle else holdout_anomalies)
    sources = train[len(train) - synthetic_sources(len(train)) :] if synthetic else []
    train = train[: len(train) - len(sources)]
    _warn_if_thin(layout, train, val, synthetic)
    # One pool for all the splits keeps the threads busy across split boundaries.
    size = resolve_image_size(image_size, resize, train[0][0] if train else None)
    items = [*train, *val, *test, *sources]
    decoded = decode_pairs([(image, mask) for image, mask, _ in items], size, workers)
    splits = Splits(
        train=_take(decoded, train, 0),
        val=_take(decoded, val, len(train)),
        test=_take(decoded, test, len(train) + len(val)),
    )
    if not synthetic:
        return splits
    normals = decoded[0][len(items) - len(sources) :].permute(0, 2, 3, 1).numpy()
    made = make_synthetic(normals, synthetic, synthetic_kind, synthetic_seed)
    val = splits.val
    return Splits(
        train=splits.train,
        val=Split(
            images=torch.cat([val.images, torch.from_numpy(made.images).permute(0, 3, 1, 2)]),
            masks=torch.cat([val.masks, torch.from_numpy(made.masks)]),
            types=[*val.types, *(f"{SYNTHETIC_TYPE_PREFIX}{kind}" for kind in made.kinds)],
            paths=[*val.paths, *(sources[t][0].with_name(f"{sources[t][0].name}#synthetic-{i}")
                                 for i, t in enumerate(made.targets))],
            pixel_labels=val.pixel_labels,
        ),
        test=splits.test,
    )  # fmt: skip


def synthetic_source_paths(root: str | Path | FolderDataset, category: str | None) -> list[Path]:
    """The train normals `load_splits(..., synthetic=N)` makes its synthetic anomalies from."""
    layout = discover(root, category)
    train = layout.train_good[len(layout.test_good) :]
    return list(train[len(train) - synthetic_sources(len(train)) :])


def synthetic_sources(train_images: int) -> int:
    """How many train normals make the synthetic anomalies (and leave the train split): SOURCE_IMAGES, at most a
    quarter of the train images, at least one. A few give the generators variety; more would shrink the bank."""
    return max(1, min(SOURCE_IMAGES, train_images // 4))


def discover(root: str | Path | FolderDataset, category: str | None) -> CategoryLayout:
    """The checked file lists of a folder dataset, a VisA category or an MVTec-layout category."""
    if isinstance(root, FolderDataset):
        return discover_folders(root)
    if category is None:
        raise AutopatchError(f"no category given for the dataset folder {root}; pass --category")
    return discover_visa(root, category) if is_visa_root(root) else discover_category(root, category)


def has_masks(root: str | Path | FolderDataset, category: str | None) -> bool:
    """Whether every anomalous image of the data has a defect mask (pixel metrics need them)."""
    return all(mask is not None for defect in discover(root, category).defects for mask in defect.masks)


def data_fingerprint(
    root: str | Path | FolderDataset, category: str | None, k: int, holdout_anomalies: int = 4, oracle: bool = False
) -> str:
    """What `load_splits` would read, as a hex digest: every file's path relative to the category folder,
    its size and its split, plus the split settings. A moved or copied dataset keeps its fingerprint; other
    files (re-encoded images, added or removed ones, other masks) or other splits change it."""
    layout = discover(root, category)
    splits = _split_items(layout, k, k if oracle else holdout_anomalies)

    def entry(path: Path | None) -> list[object] | None:
        if path is None:
            return None
        relative = os.path.relpath(os.path.abspath(path), os.path.abspath(layout.path))  # no symlink resolving
        return [Path(relative).as_posix(), path.stat().st_size]

    record = {
        "k": k, "test_start": k if oracle else holdout_anomalies,
        "splits": [[[entry(image), entry(mask), kind] for image, mask, kind in items] for items in splits],
    }  # fmt: skip
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode("utf-8")).hexdigest()[:16]


MIN_TRAIN_IMAGES = 10  # below this a memory bank rarely covers the normal variation of a part


def _warn_if_thin(layout: CategoryLayout, train: list[_Item], val: list[_Item], synthetic: int = 0) -> None:
    """Splits that work but give little evidence: a tiny train split, or one validation anomaly in all (and no
    synthetic ones)."""
    if len(train) < MIN_TRAIN_IMAGES:
        warnings.warn(
            f"{layout.path}: only {len(train)} training images remain once the {len(layout.test_good)} "
            "validation normals are taken out; add normal images to train/good for a bank that covers normal parts",
            AutopatchWarning, stacklevel=3,
        )  # fmt: skip
    anomalies = [item for item in val if item[2] != NORMAL_TYPE]
    if len(anomalies) == 1 and not synthetic:
        warnings.warn(
            f"{layout.path}: the validation split holds a single anomaly ({anomalies[0][0].name}), so the search "
            "ranks architectures and the threshold is chosen on one image; use a larger --k where you have more",
            AutopatchWarning, stacklevel=3,
        )  # fmt: skip


def _check_int(name: str, value: int, minimum: int, meaning: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise AutopatchError(f"{name}={value!r} is invalid: pass an integer >= {minimum} ({meaning})")


def _split_items(layout: CategoryLayout, k: int, test_start: int) -> tuple[list[_Item], list[_Item], list[_Item]]:
    """File lists of train / val / test; pure slicing of the sorted layout, no decoding."""
    n_holdout = len(layout.test_good)
    train = [(p, None, NORMAL_TYPE) for p in layout.train_good[n_holdout:]]
    val = [(p, None, NORMAL_TYPE) for p in layout.train_good[:n_holdout]]
    test = [(p, None, NORMAL_TYPE) for p in layout.test_good]
    for defect in layout.defects:
        n = len(defect.images)
        folder = defect.images[0].parent
        if k > n:
            raise AutopatchError(
                f"k={k} exceeds the {n} anomalous images of '{defect.name}' in {folder}: pass k <= {n}"
            )
        if k >= n:
            raise AutopatchError(
                f"'{defect.name}' in {folder} has {n} anomalous images, all in the validation split at k={k}, so "
                f"none is left for the test set: pass k below {n} or add images of '{defect.name}'"
            )
        pairs = list(zip(defect.images, defect.masks, strict=True))
        val += [(image, mask, defect.name) for image, mask in pairs[:k]]
        start = test_start if test_start < n else k  # a type with few images: every one not used for validation
        test += [(image, mask, defect.name) for image, mask in pairs[start:]]
    return train, val, test


def _take(decoded: tuple[torch.Tensor, torch.Tensor], items: list[_Item], start: int) -> Split:
    images, masks = decoded
    end = start + len(items)
    return Split(
        images=images[start:end].clone(),
        masks=masks[start:end].clone(),
        types=[t for _, _, t in items],
        paths=[image for image, _, _ in items],
        pixel_labels=all(mask is not None for _, mask, kind in items if kind != NORMAL_TYPE),
    )
