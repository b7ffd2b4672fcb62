"""Defect regions (8-connected components of each mask) and the rwAP pixel weights built on them.

rwAP (AutoPatch paper, Eq. 1-4) weighs every pixel of region j in image i of defect type k by
(mean region area / A_ij) * (mean region count per defect type / N_k), so small defects and rare defect
types count as much as large, frequent ones; normal pixels weigh 1. The regions are also what AUPRO
averages its per-region overlap over.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from autopatch.metrics.inputs import NORMAL_TYPE, checked_masks, checked_types

# Label the [N, H, W] stack in one call: full 3x3 neighbourhood (8-connectivity) inside an image, no links
# between neighbouring images, and region ids that are already unique across the whole stack.
_EIGHT_CONNECTED_PER_IMAGE = np.zeros((3, 3, 3), dtype=bool)
_EIGHT_CONNECTED_PER_IMAGE[1] = True


@dataclass(frozen=True)
class Regions:
    """Connected defect regions of a mask stack.

    labels: int32 [N, H, W]; 0 for normal pixels, r in 1..R for the pixels of region r.
    areas: int64 [R]; pixel count of region r at index r - 1.
    images: int64 [R]; index of the image that holds region r at index r - 1.
    """

    labels: np.ndarray
    areas: np.ndarray
    images: np.ndarray

    @property
    def count(self) -> int:
        return int(self.areas.size)


def find_regions(masks: np.ndarray) -> Regions:
    """8-connected components of every mask (as the paper's reference code and MVTec's AUPRO use)."""
    labels, count = ndimage.label(masks, structure=_EIGHT_CONNECTED_PER_IMAGE)
    labels = labels.astype(np.int32, copy=False)
    flat = labels.ravel()
    anomalous = np.flatnonzero(flat)
    areas = np.bincount(flat[anomalous] - 1, minlength=count).astype(np.int64)
    images = np.zeros(count, dtype=np.int64)
    images[flat[anomalous] - 1] = anomalous // (masks.shape[1] * masks.shape[2])
    return Regions(labels=labels, areas=areas, images=images)


def rwap_region_weights(regions: Regions, types: Sequence[str], copies: np.ndarray | None = None) -> np.ndarray:
    """float64 [R]: the rwAP weight shared by all pixels of each region.

    As in the reference code, the mean region count runs over every defect type that occurs in `types`
    (a type whose masks happen to be empty counts with 0 regions). When every defect type has at least one
    region, the weights of all anomalous pixels sum to the anomalous pixel count.

    `copies` (int [N], default one each) gives the weights of the stack that holds `copies[i]` copies of image
    i, as a bootstrap resample does (`metrics.bootstrap`): a region counts once per copy, the types are those of
    the images held, and the regions of images left out weigh 0.
    """
    copies = np.ones(len(types), dtype=np.int64) if copies is None else np.asarray(copies)
    weights = np.zeros(regions.count, dtype=np.float64)
    held = copies[regions.images]
    if not held.any():
        return weights
    defect_types = sorted({kind for kind, n in zip(types, copies, strict=True) if n and kind != NORMAL_TYPE})
    type_index = {kind: index for index, kind in enumerate(defect_types)}
    region_type = np.array([type_index.get(types[image], -1) for image in regions.images], dtype=np.int64)
    inside = held > 0
    regions_per_type = np.bincount(region_type[inside], weights=held[inside], minlength=len(defect_types))
    areas = regions.areas.astype(np.float64)
    mean_area = np.dot(held, areas) / held.sum()
    weights[inside] = (mean_area / areas[inside]) * (regions_per_type.mean() / regions_per_type[region_type[inside]])
    return weights


def rwap_pixel_weights(masks: object, types: Sequence[str]) -> np.ndarray:
    """float64 [N, H, W] rwAP weight of every pixel (1 for normal pixels), e.g. for sklearn's sample_weight."""
    masks = checked_masks(masks)
    types = checked_types(types, masks)
    regions = find_regions(masks)
    table = np.concatenate(([1.0], rwap_region_weights(regions, types)))
    return table[regions.labels]
