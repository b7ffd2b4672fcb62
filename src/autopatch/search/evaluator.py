"""Score one architecture: fit a memory bank on the train split, score the validation split, measure.

The evaluator lives for a whole study so the expensive, trial-independent work happens once: the
split images move to the device once, the `pretrained` space's encoders run once per split (the
feature cache), and the OFA supernet is loaded once per width and only re-sliced per trial (its maps
are cached too, keyed by the setting prefix up to each block, so a trial that only changes patch
sizes or later stages reuses them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from time import perf_counter
from typing import Any

import numpy as np
import torch

from autopatch.backbones import OFA_LAYOUT, Encoder, SupernetPool, create_encoder
from autopatch.backbones.flops import count_flops
from autopatch.bank import MemoryBank
from autopatch.data import Split, Splits
from autopatch.features import AveragePatchify
from autopatch.features.cache import FeatureCache
from autopatch.features.encoding import prepared
from autopatch.metrics import image_metrics, image_scores, resampled_metrics, segmentation_metrics, standard_errors
from autopatch.search.architecture import Architecture, encoder_prefix
from autopatch.search.fidelity import FULL, Fidelity
from autopatch.search.spaces import extractable_blocks
from autopatch.segmenter.scoring import PatchScorer

PHASES = ("encode", "flops", "fit", "score", "metrics")  # fit: bank rows + bank; score: val patches + 1-NN + upsample


class TrialFailed(Exception):
    """A trial that cannot be scored (out of memory, NaN); the study records it failed and goes on."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class TrialResult:
    """metrics: rwap, ap, auroc, pauroc_0.3, aupro_0.3 (with masks), image_auroc, image_ap, image_f1_max on the
    scored split and, on validation, the bootstrap standard errors of the objectives (`metrics.standard_errors`:
    rwap_se, image_ap_se, image_auroc_se); gflops: the truncated encoder on one image; timings: seconds per
    phase (PHASES) and their total; bank_rows: the rows of the memory bank it fitted (what `export` deploys);
    draws: those objectives on each bootstrap resample (`metrics.resampled_metrics`), which pair up with any other
    model's scored on the same split with the same seed (the pick's comparison with the study's reference)."""

    metrics: dict[str, float]
    gflops: float
    timings: dict[str, float]
    bank_rows: int = 0
    draws: dict[str, list[float]] = field(default_factory=dict)


class TrialEvaluator:
    """Scores architectures on `splits`: bank from `train`, metrics on `val` (on `test`, i.e. Test',
    when `oracle`), at `fidelity` (`search.fidelity`; the default is full fidelity: exact, whole bank)."""

    def __init__(
        self,
        splits: Splits,
        device: str | torch.device = "cpu",
        fidelity: Fidelity = FULL,
        seed: int = 0,
        oracle: bool = False,
        pretrained: bool = True,
        weights: str | None = None,
        cache: FeatureCache | None = None,
    ) -> None:
        self.device = torch.device(device)
        self.fidelity = fidelity
        self.seed = seed
        self.oracle = oracle
        self.pretrained = pretrained
        self.weights = weights
        self.cache = cache if cache is not None else FeatureCache()
        scored: Split = splits.test if oracle else splits.val
        self.pixel_labels = scored.pixel_labels  # without masks a trial has image-level metrics only
        if self.pixel_labels:
            scored.check_marks_anomalies("test (Test')" if oracle else "validation")
        self.image_size = splits.image_size
        self._images = {"train": splits.train.images.to(self.device), "scored": scored.images.to(self.device)}
        self._masks = scored.masks.numpy()
        self._types = list(scored.types)
        self._anomalous = scored.is_anomalous
        self._encoders: dict[str, Encoder] = {}
        self._supernets = SupernetPool(pretrained, weights, self.device)
        self._gflops: dict[tuple[Any, ...], float] = {}

    def warm_cache(self, encoders: list[str]) -> dict[str, float]:
        """Encode the train and scored images once for each fixed encoder (what the first trial of that
        encoder would otherwise pay); seconds per encoder. OFA encoders are skipped (never cached)."""
        seconds = {}
        for name in encoders:
            if OFA_LAYOUT.is_family(name):
                continue
            start = perf_counter()
            encoder = self._fixed_encoder(name)
            blocks = extractable_blocks(name)
            for split in ("train", "scored"):  # keyed as the trials of this encoder ask for them
                self.cache.block_maps(encoder, split, self._images[split], blocks[:1], blocks, network=(name, {}))
            seconds[name] = perf_counter() - start
        return seconds

    def evaluate(self, arch: Architecture) -> TrialResult:
        """Metrics, GFLOPs and phase timings of `arch`; raises TrialFailed on OOM or non-finite scores."""
        timings = dict.fromkeys(PHASES, 0.0)
        try:
            return self._evaluate(arch, timings)
        except RuntimeError as error:  # torch.cuda.OutOfMemoryError is a RuntimeError too
            if not _is_out_of_memory(error):
                raise
        finally:
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
        # raised here, outside the except block, so the OOM traceback (and the tensors its frames
        # hold) is already released when the next trial starts
        raise TrialFailed("out of memory")

    def _evaluate(self, arch: Architecture, timings: dict[str, float]) -> TrialResult:
        start = perf_counter()
        encoder, train_maps, scored_maps = self._block_maps(arch)
        timings["encode"] = perf_counter() - start

        start = perf_counter()
        gflops = self._count_gflops(arch, encoder)
        timings["flops"] = perf_counter() - start

        start = perf_counter()
        _check_patch_sizes_fit(arch, scored_maps)
        # averages of finite maps are finite: checking the maps fails the same trials as checking every patch
        if not all(bool(torch.isfinite(m).all()) for m in [*train_maps, *scored_maps]):
            raise TrialFailed(f"{arch}: the encoder produced NaN or Inf features")
        # the Segmenter's scoring step; below fraction 1 only the bank rows it keeps are computed
        fidelity = self.fidelity
        bank = MemoryBank(self.device, fraction=fidelity.bank_fraction, seed=self.seed, projection=fidelity.projection)
        scorer = PatchScorer(AveragePatchify(arch.patch_sizes), bank, self.image_size, seed=self.seed).fit(train_maps)
        bank_rows = int(bank.patches.shape[0])
        del train_maps
        timings["fit"] = perf_counter() - start

        start = perf_counter()
        scores = scorer.score(scored_maps, query_stride=fidelity.query_stride).cpu().numpy()
        del scorer, bank, scored_maps
        timings["score"] = perf_counter() - start
        if not np.isfinite(scores).all():
            raise TrialFailed(f"{arch}: NaN or Inf anomaly scores")

        start = perf_counter()
        values = image_metrics(image_scores(scores), self._anomalous)
        masks, types = (self._masks, self._types) if self.pixel_labels else (None, None)
        if self.pixel_labels:
            values.update(segmentation_metrics(scores, masks, types))
        resampled = {}
        if not self.oracle:  # the validation objective's noise; Test' is an upper bound, not a choice
            resampled = resampled_metrics(scores, self._anomalous, masks, types, seed=self.seed)
            values.update(standard_errors(resampled))
        metrics = {name: float(value) for name, value in values.items()}
        timings["metrics"] = perf_counter() - start
        if any(math.isnan(value) for value in metrics.values()):
            raise TrialFailed(f"{arch}: NaN metric ({metrics})")
        timings["total"] = sum(timings[phase] for phase in PHASES)
        draws = {name: values.tolist() for name, values in resampled.items()}
        return TrialResult(metrics=metrics, gflops=gflops, timings=timings, bank_rows=bank_rows, draws=draws)

    def _block_maps(self, arch: Architecture) -> tuple[Encoder | None, list[torch.Tensor], list[torch.Tensor]]:
        """Block maps of `arch` for train and scored images, and the encoder that computed them (None when
        every map came from the cache). A fixed encoder is encoded once at all its extractable blocks; an
        OFA sub-network is built only on a miss, and its maps are keyed by its setting up to each block,
        so a trial that reuses the same network up to its blocks (say, with other patch sizes) skips it."""
        built: list[Encoder] = []

        def encoder() -> Encoder:
            if not built:
                built.append(self._encoder(arch))
            return built[0]

        extra = () if OFA_LAYOUT.is_family(arch.encoder) else extractable_blocks(arch.encoder)
        network = (arch.encoder, arch.encoder_config)
        train, scored = (
            self.cache.block_maps(encoder, name, self._images[name], arch.block_ids, extra, network=network)
            for name in ("train", "scored")
        )
        return (built[0] if built else None), train, scored

    def _encoder(self, arch: Architecture) -> Encoder:
        return self._ofa_subnet(arch) if OFA_LAYOUT.is_family(arch.encoder) else self._fixed_encoder(arch.encoder)

    def _fixed_encoder(self, name: str) -> Encoder:
        if name not in self._encoders:
            encoder = create_encoder(name, pretrained=self.pretrained, weights=self.weights)
            self._encoders[name] = prepared(encoder, self.device)
        return self._encoders[name]

    def _ofa_subnet(self, arch: Architecture) -> Encoder:
        """Slice the trial's sub-network out of the one supernet kept per width."""
        return prepared(self._supernets.subnet(arch.encoder, arch.encoder_config, arch.deepest_block), self.device)

    def _count_gflops(self, arch: Architecture, encoder: Encoder | None) -> float:
        """FLOPs depend only on the network up to the deepest block (for OFA: on its setting prefix)."""
        key = encoder_prefix(arch)
        if key not in self._gflops:
            network = encoder if encoder is not None else self._encoder(arch)
            self._gflops[key] = count_flops(network, [arch.deepest_block], self.image_size) / 1e9
        return self._gflops[key]


def _check_patch_sizes_fit(arch: Architecture, maps: list[torch.Tensor]) -> None:
    """An even patch size pools a map down by one pixel (zero padding of (P-1)//2), so it cannot be
    applied to a 1-pixel map; only tiny images (stride-32 blocks at < 64 px) get there."""
    for block, size, block_map in zip(arch.block_ids, arch.patch_sizes, maps, strict=True):
        height, width = block_map.shape[-2:]
        if min(height, width) + 2 * ((size - 1) // 2) < size:
            raise TrialFailed(
                f"patch size {size} does not fit the {height}x{width} map of block {block}; use larger images"
            )


def _is_out_of_memory(error: RuntimeError) -> bool:
    message = str(error)
    cpu_out_of_memory = "can't allocate memory" in message  # DefaultCPUAllocator
    return isinstance(error, torch.cuda.OutOfMemoryError) or "out of memory" in message or cpu_out_of_memory
