"""Degenerate or malformed input fails with one clear AutopatchError line instead of a wrong number."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from autopatch.errors import AutopatchError
from autopatch.metrics import segmentation_metrics


def valid() -> tuple[np.ndarray, np.ndarray, list[str]]:
    scores = np.arange(8, dtype=np.float32).reshape(2, 2, 2)
    masks = np.zeros((2, 2, 2), dtype=bool)
    masks[1, 0, 0] = True
    return scores, masks, ["good", "crack"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s, m, t: (s, np.zeros_like(m), t), "no anomalous pixel"),
        (lambda s, m, t: (s, np.ones_like(m), ["crack", "crack"]), "every pixel anomalous"),
        (lambda s, m, t: (np.where(m, np.nan, s), m, t), "NaN or infinite"),
        (lambda s, m, t: (np.where(m, np.inf, s), m, t), "NaN or infinite"),
        (lambda s, m, t: (s[:, :, :1], m, t), "masks has shape"),
        (lambda s, m, t: (s[0], m[0], t), "shape"),
        (lambda s, m, t: (s, m, ["crack"]), "types has 1 entries"),
        (lambda s, m, t: (s, m, ["good", "good"]), "type 'good' but its mask"),
        (lambda s, m, t: (s, m, ["good", 3]), "types\\[1\\]"),
        (lambda s, m, t: (s, m.astype(np.int64) * 2, t), "values other than 0/1"),
        (lambda s, m, t: (s.astype(str), m, t), "real-valued"),
        (lambda s, m, t: ([[[1.0, 2.0], [3.0]]], m, t), "could not be read"),
        (lambda s, m, t: (torch.from_numpy(s).requires_grad_(), m, t), "could not be read"),
    ],
)
def test_bad_input_raises_a_clear_error(change, message):
    with pytest.raises(AutopatchError, match=message) as raised:
        segmentation_metrics(*change(*valid()))
    assert "\n" not in str(raised.value)


def test_integer_masks_and_scores_and_tensors_are_accepted():
    scores, masks, types = valid()
    expected = segmentation_metrics(scores, masks, types)
    assert segmentation_metrics(scores.astype(np.int64), masks.astype(np.uint8), types) == expected
    assert segmentation_metrics(torch.from_numpy(scores), torch.from_numpy(masks), types) == expected
