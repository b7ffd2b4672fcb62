"""The PatchCore baseline (Roth et al. 2022) as the paper compares against it, on any registry encoder.

Faithful to amazon-science/patchcore-inspection: two backbone layers (WRN-50-2 `layer2` + `layer3`;
for other encoders the last block of the stride-8 and of the stride-16 stage), 3x3 neighbourhood
aggregation, per-layer adaptive average pooling to 1024 values and aggregation to 1024, approximate
greedy coreset (10 %), 1-NN squared L2, bilinear upsampling and a Gaussian with sigma 4. Run on
AutoPatch's splits: plain resize to the image size, no centre crop.

It is a `Segmenter` with PatchCore's embedding as its patch aggregation, so fit, threshold, predict,
save/load and evaluation are the very code AutoPatch's models use; only the features differ.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from autopatch.backbones import Encoder, create_encoder, patchcore_blocks
from autopatch.data import FolderDataset, ImageSize, load_splits
from autopatch.errors import AutopatchError
from autopatch.features.aggregation import NEIGHBOURHOOD, PRETRAIN_DIM, TARGET_DIM, PatchCoreEmbedding
from autopatch.files import check_output_file
from autopatch.segmenter import Segmenter, fit_and_evaluate

SMOOTHING_SIGMA = 4.0
DEFAULT_CORESET = 0.1


def default_layers(encoder: Encoder) -> tuple[int, int]:
    """The last block of the stride-8 and of the stride-16 stage (WRN-50-2: layer2, layer3)."""
    return patchcore_blocks(encoder.blocks, encoder.family)


def build_patchcore(
    encoder: Encoder,
    image_size: int | str | ImageSize = 224,
    layers: Sequence[int] | None = None,
    coreset: float | None = DEFAULT_CORESET,
    device: str | torch.device = "cpu",
    seed: int = 0,
    pretrain_dim: int = PRETRAIN_DIM,
    target_dim: int = TARGET_DIM,
) -> Segmenter:
    """An unfitted PatchCore Segmenter; `coreset` None or 1 keeps the whole memory bank."""
    layers = list(layers) if layers is not None else list(default_layers(encoder))
    if not layers:
        raise AutopatchError("PatchCore needs at least one layer; pass --layers, e.g. 2,3")
    if len(set(layers)) != len(layers):
        raise AutopatchError(f"PatchCore layers {layers} repeat a block; give distinct block ids")
    ordered = sorted(layers, key=lambda b: encoder.block(b).stride)  # the Segmenter's order: finest map first
    channels = [encoder.block(b).channels for b in ordered]
    embedding = PatchCoreEmbedding(channels, NEIGHBOURHOOD, pretrain_dim, target_dim)
    return Segmenter(
        encoder,
        ordered,
        [NEIGHBOURHOOD] * len(ordered),
        image_size,
        coreset=None if coreset is None or coreset >= 1.0 else coreset,
        smoothing_sigma=SMOOTHING_SIGMA,
        device=device,
        seed=seed,
        aggregation=embedding,
    )


@dataclass(frozen=True)
class BaselineResult:
    """The fitted baseline and its test-split metrics (evaluate_on_split's dict, GFLOPs and images/s included)."""

    segmenter: Segmenter
    metrics: dict[str, Any]


def describe(segmenter: Segmenter, backbone: str) -> str:
    """`PatchCore wide_resnet50_2 [2,3] coreset 0.1` — how tables name the baseline."""
    coreset = segmenter.coreset if segmenter.coreset is not None else 1.0
    return f"PatchCore {backbone} [{','.join(map(str, segmenter.block_ids))}] coreset {coreset:g}"


def run_baseline(
    data_root: str | Path | FolderDataset,
    category: str | None,
    backbone: str,
    *,
    layers: Sequence[int] | None = None,
    coreset: float | None = DEFAULT_CORESET,
    k: int = 1,
    image_size: int | str | ImageSize = 224,
    resize: str = "stretch",
    device: str | torch.device = "auto",
    weights: str | None = None,
    batch_size: int = 32,
    seed: int = 0,
    out: str | Path | None = None,
    progress: bool = False,
) -> BaselineResult:
    """PatchCore on `backbone` fit on the category's (or the folder dataset's, with `category` None) train split,
    thresholds on val (k shots), scored on test."""
    if out is not None:
        check_output_file(out, "model file")
    splits = load_splits(data_root, category, k, image_size=image_size, resize=resize)
    encoder = create_encoder(backbone, pretrained=True, weights=weights)
    segmenter = build_patchcore(encoder, splits.image_size, layers, coreset, device=device, seed=seed)
    evaluation = fit_and_evaluate(segmenter, splits, batch_size, progress)
    segmenter.metadata = {
        "category": category or data_root.name,
        "k": k,
        "architecture": describe(segmenter, backbone),
        "coreset": segmenter.coreset,
        "train_images": len(splits.train),
        "val": evaluation.val,
    }
    if out is not None:
        segmenter.save(out)
    return BaselineResult(segmenter=segmenter, metrics=evaluation.test)
