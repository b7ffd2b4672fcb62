"""Segmenter: any registry encoder turned into a training-free anomaly segmenter (paper Algorithm 1).

fit: encode the normal training images, aggregate the chosen blocks into patches, keep them as the
memory bank (optionally greedy-coreset and/or random-fraction subsampled). predict: each test patch
scores its squared L2 distance to the nearest bank patch; the map is bilinearly resized to the image
size and optionally Gaussian-smoothed (PatchCore). Everything after the encoder is `PatchScorer`, the
step search trials use too. Everything that touches pixels runs on one device.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from autopatch.backbones import Encoder, create_encoder
from autopatch.backbones.flops import count_flops
from autopatch.bank import MemoryBank
from autopatch.data import ImageSize, image_size_spec, parse_image_size
from autopatch.device import resolve_device
from autopatch.errors import AutopatchError, check_fraction, check_positive
from autopatch.features import AveragePatchify, PatchAggregation, create_aggregation
from autopatch.features.encoding import encode_batch, prepared
from autopatch.metrics import (
    DEFAULT_NORMAL_FPR,
    best_f1_threshold,
    image_metrics,
    image_scores,
    image_threshold,
    resampled_metrics,
    segmentation_metrics,
    standard_errors,
)
from autopatch.segmenter.model_file import load_model_file, save_model_file
from autopatch.segmenter.scoring import PatchScorer


class Segmenter:
    """Encoder + extraction blocks + patch sizes + memory bank (+ pixel and image thresholds), saved as one file.

    Blocks are ordered by stride (stable) so the first map, which all others are resized to, is the
    highest-resolution one; `block_ids`/`patch_sizes` hold that order. Only the encoder truncated at
    the deepest block is kept, which is also all the model file stores.
    """

    def __init__(
        self,
        encoder: Encoder,
        block_ids: Sequence[int],
        patch_sizes: Sequence[int],
        image_size: int | str | ImageSize,
        bank_fraction: float = 1.0,
        coreset: float | None = None,
        smoothing_sigma: float | None = None,
        device: str | torch.device = "cpu",
        *,
        seed: int = 0,
        aggregation: PatchAggregation | None = None,
    ) -> None:
        block_ids, patch_sizes = [int(b) for b in block_ids], [int(p) for p in patch_sizes]
        if not block_ids:
            raise AutopatchError("no extraction blocks given; pass at least one block id, e.g. --blocks 5,9")
        if len(block_ids) != len(patch_sizes):
            raise AutopatchError(
                f"{len(block_ids)} blocks but {len(patch_sizes)} patch sizes; give one patch size per block"
            )
        if any(p < 1 for p in patch_sizes):
            raise AutopatchError(f"patch sizes {patch_sizes} must all be positive integers such as 1 or 3")
        if coreset is not None:
            check_fraction("coreset fraction", coreset)
        check_fraction("bank fraction", bank_fraction)
        if smoothing_sigma is not None and smoothing_sigma <= 0:
            raise AutopatchError(f"smoothing sigma {smoothing_sigma} must be positive (PatchCore uses 4)")
        strides = [encoder.block(b).stride for b in block_ids]  # also validates the ids
        order = sorted(range(len(block_ids)), key=lambda i: strides[i])
        self.block_ids = [block_ids[i] for i in order]
        self.patch_sizes = [patch_sizes[i] for i in order]
        self.image_size = parse_image_size(image_size)  # (height, width)
        self.device = resolve_device(device)
        self.seed = int(seed)
        self.encoder = prepared(encoder.truncated(max(self.block_ids)), self.device)
        # maps -> patch vectors: AutoPatch's patchify unless given (PatchCore's embedding, built for this order)
        self.scorer = PatchScorer(
            aggregation if aggregation is not None else AveragePatchify(self.patch_sizes),
            MemoryBank(device=self.device, fraction=bank_fraction, seed=self.seed),
            self.image_size,
            coreset=coreset,
            smoothing_sigma=None if smoothing_sigma is None else float(smoothing_sigma),
            seed=self.seed,
        )
        self.threshold: float | None = None  # pixel: score >= threshold is a defect pixel
        self.image_threshold: float | None = None  # image: max of the map >= it is NG
        self.metadata: dict[str, Any] = {}
        self._gflops: float | None = None
        self._feature_map_size: tuple[int, int] | None = None

    # --- features -------------------------------------------------------------------------------

    def _check_images(self, images: torch.Tensor) -> None:
        height, width = self.image_size
        if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.ndim != 4:
            raise AutopatchError(
                f"images must be a uint8 tensor [N,3,{height},{width}] as load_splits/load_images return"
            )
        if images.shape[0] == 0:
            raise AutopatchError("no images given; pass at least one image")
        if tuple(images.shape[1:]) != (3, height, width):
            raise AutopatchError(
                f"images have shape {tuple(images.shape[1:])} but this model expects (3, {height}, {width}); "
                f"load them with image_size={image_size_spec(self.image_size)!r}"
            )

    # the scoring step's parts, read-only here: `self.scorer` owns them
    @property
    def bank(self) -> MemoryBank:
        return self.scorer.bank

    @property
    def aggregation(self) -> PatchAggregation:
        return self.scorer.aggregation

    @property
    def coreset(self) -> float | None:
        return self.scorer.coreset

    @property
    def smoothing_sigma(self) -> float | None:
        return self.scorer.smoothing_sigma

    def _block_map_batches(
        self, images: torch.Tensor, batch_size: int, progress: bool, desc: str
    ) -> Iterator[list[torch.Tensor]]:
        """Block maps [B, C_i, h_i, w_i] of `block_ids` on the device, one batch of images at a time."""
        self._check_images(images)
        check_positive("batch size", batch_size)
        starts = range(0, images.shape[0], batch_size)
        for start in tqdm(starts, desc=desc, unit="batch", disable=not progress, leave=False):
            yield encode_batch(self.encoder, images[start : start + batch_size], self.block_ids)

    @property
    def feature_map_size(self) -> tuple[int, int]:
        """(h, w) of the patch grid, i.e. of the highest-resolution extracted block (one probe forward)."""
        if self._feature_map_size is None:
            with torch.inference_mode():
                probe = torch.zeros(1, 3, *self.image_size, dtype=torch.uint8, device=self.device)
                first = self.encoder.forward_features(self.encoder.normalize(probe), self.block_ids[:1])[0]
            self._feature_map_size = (int(first.shape[-2]), int(first.shape[-1]))
        return self._feature_map_size

    @property
    def gflops(self) -> float:
        """Encoder GFLOPs (2 x MACs) for one image up to the deepest block, the paper's cost objective."""
        if self._gflops is None:
            self._gflops = count_flops(self.encoder, self.block_ids, self.image_size) / 1e9
        return self._gflops

    # --- fit / predict ----------------------------------------------------------------------------

    @torch.inference_mode()
    def fit(self, images: torch.Tensor, batch_size: int = 32, progress: bool = False) -> Segmenter:
        """Memory bank from the patches of normal images uint8 [N,3,H,W]; returns self."""
        rows = [self.scorer.rows(maps) for maps in self._block_map_batches(images, batch_size, progress, "encode")]
        self.scorer.fit_rows(torch.cat(rows), progress=progress)
        return self

    @torch.inference_mode()
    def predict(self, images: torch.Tensor, batch_size: int = 32, progress: bool = False) -> torch.Tensor:
        """Anomaly score maps float32 [N,H,W] on the CPU (squared L2 to the nearest bank patch)."""
        out = torch.empty(images.shape[0], *self.image_size, dtype=torch.float32)
        start = 0
        for maps in self._block_map_batches(images, batch_size, progress, "predict"):
            scores = self.scorer.score(maps)
            out[start : start + len(scores)] = scores.cpu()
            start += len(scores)
        return out

    def fit_thresholds(
        self,
        images: torch.Tensor,
        masks: torch.Tensor | None,
        anomalous: Sequence[bool],
        *,
        normal_fpr: float = DEFAULT_NORMAL_FPR,
        batch_size: int = 32,
        progress: bool = False,
        types: Sequence[str] | None = None,
    ) -> dict[str, Any]:
        """Store both decision thresholds from (validation) images: the pixel threshold with the best F1 on
        `masks` (none without masks), and the image (OK/NG) threshold on the image scores, by image F1-max when
        `anomalous` marks any image, else flagging at most `normal_fpr` of the normal images. Returns them with
        F1/P/R (None without masks), the image rule, and `metrics`: these images' image metrics, and with masks
        and their defect `types` the pixel metrics (rwAP...), as exactly as this model scores, with the bootstrap
        standard errors of rwAP, image AP and image AUROC (`metrics.standard_errors`, seeded by the bank's seed), and
        `draws`: those metrics on each bootstrap resample (`metrics.resampled_metrics`), to compare two models."""
        scores = self.predict(images, batch_size, progress).numpy()
        record: dict[str, Any] = dict.fromkeys(("threshold", "f1", "precision", "recall"))
        per_image = image_scores(scores)
        metrics = {key: float(value) for key, value in image_metrics(per_image, list(anomalous)).items()}
        truth = None
        if masks is not None:
            truth = masks.cpu().numpy().astype(bool)
            threshold, f1, precision, recall = best_f1_threshold(scores, truth)
            record.update(threshold=float(threshold), f1=float(f1), precision=float(precision), recall=float(recall))
            if types is not None:
                metrics.update({key: float(v) for key, v in segmentation_metrics(scores, truth, list(types)).items()})
        kinds = None if types is None else list(types)
        resampled = resampled_metrics(scores, list(anomalous), truth, kinds, seed=self.seed)
        metrics.update(standard_errors(resampled))
        self.threshold = record["threshold"]
        self.image_threshold, rule = image_threshold(per_image, list(anomalous), normal_fpr)
        draws = {name: values.tolist() for name, values in resampled.items()}
        return {**record, "image_threshold": self.image_threshold, "image_threshold_rule": rule, "metrics": metrics,
                "draws": draws}

    # --- model file -------------------------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """One file loadable with torch.load(weights_only=True); see autopatch.segmenter.model_file."""
        try:
            json.dumps(self.metadata)
        except (TypeError, ValueError) as error:
            raise AutopatchError(
                f"model metadata must be JSON-serialisable (str, number, list, dict): {error}"
            ) from None
        state_dict = {k: v.detach().cpu() for k, v in self.encoder.state_dict().items()}
        content = {
            "encoder": {"family": self.encoder.family, "config": self.encoder.config(), "state_dict": state_dict},
            "block_ids": list(self.block_ids),
            "patch_sizes": list(self.patch_sizes),
            "aggregation": {"kind": self.aggregation.kind, "config": self.aggregation.config()},
            "image_size": list(self.image_size),
            "normalisation": {"mean": list(self.encoder.mean), "std": list(self.encoder.std)},
            "bank": self.bank.state_dict(),
            "threshold": self.threshold,
            "image_threshold": self.image_threshold,
            "smoothing_sigma": self.smoothing_sigma,
            "metadata": dict(self.metadata),
        }
        return save_model_file(path, content)

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu") -> Segmenter:
        """Rebuild a saved Segmenter (encoder without download, strict weights, bank) on `device`."""
        payload = load_model_file(path)
        try:
            spec = payload["encoder"]
            family, config, weights = spec["family"], dict(spec["config"]), spec["state_dict"]
            bank_state = dict(payload["bank"])
        except (KeyError, TypeError, ValueError) as error:
            raise AutopatchError(
                f"model file {path} is damaged (bad encoder or bank entry: {error}); re-create it with `autopatch fit`"
            ) from None
        encoder = create_encoder(family, pretrained=False, **config)
        try:
            encoder.load_state_dict(weights, strict=True)
        except RuntimeError as error:
            first = str(error).strip().splitlines()[0]
            raise AutopatchError(
                f"model file {path}: encoder weights do not fit {family} ({first[:120]}); "
                "re-create it with `autopatch fit`"
            ) from None
        saved = payload["normalisation"]
        if any([float(v) for v in saved[key]] != [float(v) for v in getattr(encoder, key)] for key in ("mean", "std")):
            raise AutopatchError(
                f"model file {path}: stored normalisation differs from {family}'s; re-create it with `autopatch fit`"
            )
        aggregation = create_aggregation(payload["aggregation"]["kind"], payload["aggregation"]["config"])
        segmenter = cls(
            encoder,
            payload["block_ids"],
            payload["patch_sizes"],
            payload["image_size"],
            bank_fraction=bank_state.get("fraction", 1.0),
            smoothing_sigma=payload["smoothing_sigma"],
            device=device,
            seed=bank_state.get("seed", 0),
            aggregation=aggregation,
        )
        segmenter.scorer.bank = MemoryBank.from_state_dict(bank_state, device=segmenter.device)
        segmenter.threshold = payload["threshold"]
        segmenter.image_threshold = payload.get("image_threshold")  # format 1 files have none
        segmenter.metadata = dict(payload["metadata"])
        return segmenter
