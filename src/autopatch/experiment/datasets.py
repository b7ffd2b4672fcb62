"""Which datasets an experiment covers: data roots and categories paired into uniquely labelled rows, or one
folder dataset."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from autopatch.data import FolderDataset, has_masks
from autopatch.errors import AutopatchError


@dataclass(frozen=True)
class Dataset:
    """One table row: a category folder under a dataset root, or a folder dataset (`folders`; `root` is then its
    normal folder and `category` its name); `label` is unique within the experiment."""

    root: Path
    category: str
    label: str
    folders: FolderDataset | None = None

    @property
    def source(self) -> Path | FolderDataset:
        """What `data.load_splits` and `data.data_fingerprint` read, with `category_arg`."""
        return self.root if self.folders is None else self.folders

    @property
    def category_arg(self) -> str | None:
        return self.category if self.folders is None else None

    @property
    def slug(self) -> str:
        """The label made safe for file and study names."""
        return re.sub(r"[^A-Za-z0-9_.-]+", "-", self.label).strip("-")


def experiment_datasets(
    roots: Sequence[str | Path], categories: Sequence[str], folders: FolderDataset | None
) -> list[Dataset]:
    """The rows of an experiment: `pair_datasets`, or the one folder dataset, which needs masks (the
    experiment's tables compare rwAP)."""
    if folders is None:
        return pair_datasets(roots, categories)
    if roots or categories:
        raise AutopatchError("give DATA_ROOT... --category C..., or one folder dataset (--normal-dir ...), not both")
    if not has_masks(folders, None):
        raise AutopatchError(
            f"the experiment compares pixel rwAP, and {folders.abnormal_dir} has no masks: give --mask-dir, or use "
            "`autopatch search --objective image-ap` and `autopatch baseline` on data without masks"
        )
    return [Dataset(Path(folders.normal_dir), folders.name, folders.name, folders)]


def pair_datasets(roots: Sequence[str | Path], categories: Sequence[str]) -> list[Dataset]:
    """Roots and categories pair up one to one, or one of the two is shared by all of the other.
    A category that appears under two roots is labelled `<root folder>/<category>`."""
    roots = [Path(r) for r in roots]
    if not roots or not categories:
        raise AutopatchError("give at least one DATA_ROOT and one --category")
    if len(roots) == len(categories):
        pairs = list(zip(roots, categories, strict=True))
    elif len(roots) == 1:
        pairs = [(roots[0], c) for c in categories]
    elif len(categories) == 1:
        pairs = [(r, categories[0]) for r in roots]
    else:
        raise AutopatchError(
            f"{len(roots)} data roots and {len(categories)} categories do not pair up; give as many of each, "
            "or one root (shared by all categories) or one category (shared by all roots)"
        )
    repeated = {c for _, c in pairs if sum(c == other for _, other in pairs) > 1}
    datasets = [Dataset(r, c, f"{r.name}/{c}" if c in repeated else c) for r, c in pairs]
    labels = [d.label for d in datasets]
    if len(set(labels)) != len(labels):
        raise AutopatchError(f"the dataset list {labels} repeats a root and category; give each pair once")
    return datasets
