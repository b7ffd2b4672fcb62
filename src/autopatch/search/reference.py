"""The known-good model a study's pick must beat: PatchCore on the space's reference encoder.

One anomaly per defect type is thin evidence, and on some data every architecture's validation value is noise.
So a pick (`export --trial best`, the experiment's 'best') keeps PatchCore (the paper's baseline, on the space's
smallest encoder as trained: its stride-8 and stride-16 blocks, 1024-d embedding, 10 % greedy coreset) unless a
trial beats it on the validation split: the trial's value minus PatchCore's, less the bootstrap standard error of
that difference over the same resamples (`metrics.paired_lower_bound`), must be above 0.

The reference is fitted on the study's train split and scored on its validation split once, seeded by the study's
seed (so its resamples are the trials'), and stored with the study (`REFERENCE_ATTR`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import optuna
import torch

from autopatch.backbones import create_encoder
from autopatch.baselines import build_patchcore, describe
from autopatch.data import ImageSize, Splits
from autopatch.metrics import SE_SUFFIX, paired_lower_bound
from autopatch.segmenter import Segmenter, fit_on_splits

REFERENCE_ATTR = "reference"


@dataclass(frozen=True)
class Reference:
    """encoder: registry name; architecture: how tables name it; gflops: its encoder on one image; metrics: its
    validation metrics with their standard errors; draws: its bootstrapped objectives on each resample."""

    encoder: str
    architecture: str
    gflops: float
    metrics: dict[str, float]
    draws: dict[str, list[float]]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Reference:
        return cls(**data)

    def margin(self, metric: str, value: float, draws: list[float] | None) -> float:
        """How far a model with validation `value` (and `draws` on the same resamples) is above the reference on
        `metric`, less the standard error of the difference; without draws (a study from before autopatch kept
        them, or a metric without resamples) the difference itself."""
        mine = self.draws.get(metric)
        if draws is None or mine is None:
            return value - self.metrics[metric]
        return paired_lower_bound(value, draws, self.metrics[metric], mine)


def reference_summary(study_attrs: dict[str, Any], metric: str, label: str) -> str | None:
    """One line on the study's reference as `pareto` shows it: its validation `metric` (printed as `label`) once
    `export --trial best` has fitted it, else what that pick will compare with; None for a Test' study."""
    if study_attrs.get("oracle"):
        return None
    stored = study_attrs.get(REFERENCE_ATTR)
    rule = "unless a trial beats it by more than the standard error of the difference"
    if stored is None:
        return f"export --trial best keeps PatchCore on the space's smallest encoder (the reference) {rule}"
    reference = Reference.from_dict(stored)
    value, error = reference.metrics.get(metric), reference.metrics.get(metric + SE_SUFFIX)
    shown = "-" if value is None else f"{value:.4f}" + ("" if error is None else f" ± {error:.4f}")
    return f"reference {reference.architecture}: validation {label} {shown}; export --trial best keeps it {rule}"


def build_reference(
    encoder: str, image_size: int | str | ImageSize, device: str | torch.device = "cpu", seed: int = 0
) -> Segmenter:
    """The unfitted reference model: PatchCore (its default layers, embedding and coreset) on `encoder`."""
    return build_patchcore(create_encoder(encoder, pretrained=True), image_size, device=device, seed=seed)


def study_reference(
    study: optuna.Study,
    encoder: str,
    splits: Callable[[], Splits],
    device: str | torch.device = "cpu",
    batch_size: int = 32,
) -> Reference:
    """The study's reference on `encoder`: as stored with the study, else fitted on `splits()` (the study's,
    loaded only then) and stored."""
    stored = study.user_attrs.get(REFERENCE_ATTR)
    if stored is not None and stored.get("encoder") == encoder:
        return Reference.from_dict(stored)
    loaded = splits()
    segmenter = build_reference(encoder, loaded.image_size, device, int(study.user_attrs["seed"]))
    val = fit_on_splits(segmenter, loaded, batch_size)
    reference = Reference(encoder, describe(segmenter, encoder), segmenter.gflops, val["metrics"], val["draws"])
    study.set_user_attr(REFERENCE_ATTR, reference.to_dict())
    return reference
