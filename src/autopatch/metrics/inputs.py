"""Turn user-supplied score maps, masks and defect types into checked numpy arrays.

Every metric starts here so a bad call fails at once with one line that names the value and the fix,
instead of producing NaN or a silently wrong number deep inside a curve.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from autopatch.data.layout import NORMAL_TYPE
from autopatch.errors import AutopatchError


def _as_array(value: object, name: str) -> np.ndarray:
    """np.asarray that explains the usual failures (a CUDA or grad-tracking tensor, ragged lists) in one line."""
    try:
        return np.asarray(value)
    except (TypeError, RuntimeError, ValueError) as error:
        reason = " ".join(str(error).split())
        raise AutopatchError(
            f"{name} could not be read as an array ({reason}); pass a numpy array or a CPU tensor "
            "(call .detach().cpu())"
        ) from None


def checked_maps(scores: object, masks: object) -> tuple[np.ndarray, np.ndarray]:
    """Return (scores, masks) as float [N,H,W] and bool [N,H,W] arrays after checking shape and values.

    float32 scores stay float32 (sorting them is faster); any other numeric type becomes float64 so no two
    distinct scores are merged into one threshold.
    """
    scores = _as_array(scores, "scores")
    masks = checked_masks(masks)
    if scores.ndim != 3:
        raise AutopatchError(
            f"scores has shape {scores.shape}; pass one score map per image as an [N, H, W] array"
        )
    if masks.shape != scores.shape:
        raise AutopatchError(
            f"masks has shape {masks.shape} but scores has shape {scores.shape}; pass one mask per score map, same size"
        )
    if scores.dtype == np.bool_ or not np.issubdtype(scores.dtype, np.number) or np.iscomplexobj(scores):
        raise AutopatchError(f"scores has dtype {scores.dtype}; pass real-valued (float) anomaly scores")
    if scores.dtype != np.float32:
        scores = scores.astype(np.float64, copy=False)
    if not np.isfinite(scores).all():
        bad = int(np.size(scores) - np.count_nonzero(np.isfinite(scores)))
        raise AutopatchError(f"scores contain {bad} NaN or infinite values; replace them before computing metrics")
    return scores, masks


def checked_masks(masks: object) -> np.ndarray:
    """Return masks as a bool [N,H,W] array; 0/1 integers are accepted, anything else is refused."""
    masks = _as_array(masks, "masks")
    if masks.ndim != 3:
        raise AutopatchError(f"masks has shape {masks.shape}; pass one mask per image as an [N, H, W] array")
    if masks.dtype != np.bool_:
        if not np.issubdtype(masks.dtype, np.number) or not np.isin(masks, (0, 1)).all():
            raise AutopatchError(
                f"masks has dtype {masks.dtype} with values other than 0/1; pass boolean masks (True = anomalous)"
            )
        masks = masks.astype(np.bool_)
    return masks


def require_both_classes(masks: np.ndarray) -> None:
    """Ranking metrics need at least one anomalous and one normal pixel to be defined."""
    anomalous = int(np.count_nonzero(masks))
    if anomalous == 0:
        raise AutopatchError(
            f"masks of shape {masks.shape} mark no anomalous pixel; include at least one image with a defect mask"
        )
    if anomalous == masks.size:
        raise AutopatchError(
            f"masks of shape {masks.shape} mark every pixel anomalous; include normal pixels (e.g. a 'good' image)"
        )


def checked_types(types: Sequence[str], masks: np.ndarray) -> list[str]:
    """One defect-type string per image; normal images ('good') must have empty masks."""
    types = list(types)
    if len(types) != masks.shape[0]:
        raise AutopatchError(
            f"types has {len(types)} entries but there are {masks.shape[0]} masks; give one defect type per image"
        )
    for index, kind in enumerate(types):
        if not isinstance(kind, str):
            raise AutopatchError(
                f"types[{index}] is {kind!r}; give each image's defect type as a string ('good' if normal)"
            )
        if kind == NORMAL_TYPE and masks[index].any():
            raise AutopatchError(
                f"image {index} has type '{NORMAL_TYPE}' but its mask marks {int(masks[index].sum())} anomalous "
                "pixels; give it its defect type or clear its mask"
            )
    return types
