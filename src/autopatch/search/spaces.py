"""Search spaces: turn an Optuna trial's suggestions into an Architecture (or None when infeasible).

Every space suggests ALL of its parameters in every trial, even those a trial ends up not using
(a patch size of a stage without a block): Optuna's multivariate TPE models only the parameters
common to all finished trials, so a fixed set of names keeps the joint model effective.

Parameter names follow the reference implementation (tommiekerssies/AutoPatch `search.py`),
including its 0-based stage index: `stage_0_*` is the paper's stage 1 (blocks 1-4). A stage's block
choice is `None` or a global block id, exactly as the reference encodes it.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from functools import cache
from typing import Any

import optuna

from autopatch.backbones import OFA_LAYOUT, is_pretrained_available, patchcore_blocks
from autopatch.errors import AutopatchError
from autopatch.features.aggregation import NEIGHBOURHOOD
from autopatch.search.architecture import MAX_PATCH_SIZE, Architecture, encoder_blocks
from autopatch.search.names import SPACE_NAMES

PRETRAINED_ENCODERS = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")
OPTIONAL_PRETRAINED_ENCODERS = ("mobilenet_v2",)  # only when its checkpoint is already local
# Stride-2 maps are left out of the pretrained space: OFA's searchable stages start at stride 4 too,
# and a stride-2 map would quadruple the memory bank of every trial that picks it.
MIN_PRETRAINED_STRIDE = 4
FINAL_STRIDE = 32


class SearchSpace(ABC):
    """A named family of architectures that Optuna samples from."""

    name: str

    @abstractmethod
    def suggest(self, trial: optuna.Trial) -> Architecture | None:
        """Suggest every parameter on `trial`; None when the suggestion selects no extraction block."""

    @abstractmethod
    def default_params(self) -> list[dict[str, Any]]:
        """The parameters of the space's known-good architectures, one dict per encoder: PatchCore's choice
        (the last blocks of the stride-8 and stride-16 stages, patch size 3) on the encoder as trained. Every
        study evaluates them first (`search.definition.open_study`), so its front starts from them; the known-good
        model a pick must beat is PatchCore itself (`reference_encoder`, `search.reference`)."""

    @property
    @abstractmethod
    def reference_encoder(self) -> str:
        """The encoder of the study's reference, the known-good model a pick must beat (`search.reference`): the
        space's smallest encoder as trained."""

    def defaults(self) -> list[Architecture]:
        """The architectures of `default_params`, built by `suggest` itself (one path from parameters)."""
        return [arch for params in self.default_params() if (arch := self.suggest(optuna.trial.FixedTrial(params)))]

    def sample(self, n: int, seed: int = 0) -> list[Architecture]:
        """`n` architectures drawn uniformly at random (Optuna's seeded RandomSampler), those that select no block
        skipped: the benchmarks' random architectures."""
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
        found: list[Architecture] = []
        while len(found) < n:
            arch = self.suggest(study.ask())
            if arch is not None:
                found.append(arch)
        return found


class OFASpace(SearchSpace):
    """The paper's Table 1: supernet width, per-stage kernel/expand ratio/extraction block/patch size.

    Only the blocks a trial extracts deepen a stage: depth = max(2, position of the extracted block),
    so a stage's unused deeper blocks cost no FLOPs. A stage after the deepest extracted block keeps the
    minimal legal depth 2 (it never runs: the encoder is truncated at the deepest block).
    Fixing `supernet`, `kernel_size` and `expand_ratio` (the Table 7 ablation) drops those parameters.
    """

    def __init__(
        self,
        name: str = "ofa",
        supernet: str | None = None,
        kernel_size: int | None = None,
        expand_ratio: int | None = None,
    ) -> None:
        self.name = name
        self.supernet = supernet
        self.kernel_size = kernel_size
        self.expand_ratio = expand_ratio

    def suggest(self, trial: optuna.Trial) -> Architecture | None:
        supernet = self.supernet or trial.suggest_categorical("supernet_name", list(OFA_LAYOUT.families))
        ks: list[int] = []
        e: list[int] = []
        d: list[int] = []
        block_ids: list[int] = []
        patch_sizes: list[int] = []
        for index in range(OFA_LAYOUT.stages):
            blocks = OFA_LAYOUT.stage_blocks(index + 1)
            kernel = self.kernel_size or trial.suggest_int(
                f"stage_{index}_kernel_size", min(OFA_LAYOUT.kernel_sizes), max(OFA_LAYOUT.kernel_sizes), step=2
            )
            expand = self.expand_ratio or trial.suggest_categorical(
                f"stage_{index}_expand_ratio", list(OFA_LAYOUT.expand_ratios)
            )
            block = trial.suggest_categorical(f"stage_{index}_block", [None, *blocks])
            patch = trial.suggest_int(f"stage_{index}_patch_size", 1, MAX_PATCH_SIZE)
            ks += [kernel] * OFA_LAYOUT.blocks_per_stage
            e += [expand] * OFA_LAYOUT.blocks_per_stage
            depth = min(OFA_LAYOUT.depths)
            if block is not None:
                depth = max(depth, blocks.index(block) + 1)
                block_ids.append(block)
                patch_sizes.append(patch)
            d.append(depth)
        if not block_ids:
            return None
        return Architecture(supernet, {"ks": ks, "e": e, "d": d}, tuple(block_ids), tuple(patch_sizes))

    @property
    def reference_encoder(self) -> str:
        return self.supernet or list(OFA_LAYOUT.families)[0]

    def default_params(self) -> list[dict[str, Any]]:
        """Per supernet: the largest kernel size and expand ratio (the supernet as trained) unless fixed."""
        kernel = self.kernel_size or max(OFA_LAYOUT.kernel_sizes)
        expand = self.expand_ratio or max(OFA_LAYOUT.expand_ratios)
        full = OFA_LAYOUT.uniform_setting(kernel, expand, max(OFA_LAYOUT.depths))
        defaults = []
        for supernet in [self.supernet] if self.supernet else list(OFA_LAYOUT.families):
            chosen = patchcore_blocks(encoder_blocks(supernet, json.dumps(full, sort_keys=True)), supernet)
            params: dict[str, Any] = {} if self.supernet else {"supernet_name": supernet}
            for index in range(OFA_LAYOUT.stages):
                if not self.kernel_size:
                    params[f"stage_{index}_kernel_size"] = kernel
                if not self.expand_ratio:
                    params[f"stage_{index}_expand_ratio"] = expand
                blocks = OFA_LAYOUT.stage_blocks(index + 1)
                params[f"stage_{index}_block"] = next((b for b in chosen if b in blocks), None)
                params[f"stage_{index}_patch_size"] = NEIGHBOURHOOD
            defaults.append(params)
        return defaults


class PretrainedSpace(SearchSpace):
    """Fixed ImageNet encoders, offline: which encoder, and per stage an extraction block + patch size.

    Stages mirror OFA's five (see `pretrained_stages`). Block choices depend on the encoder, so their
    parameter names are encoder-qualified (`efficientnet_lite0_stage_1_block`: Optuna requires one
    distribution per name); patch sizes mean the same for every encoder and share `stage_{i}_patch_size`,
    so multivariate TPE models encoder and patch sizes jointly; the study's TPESampler(group=True) also
    models each encoder's block choices jointly.
    """

    name = "pretrained"

    def __init__(self, encoders: Sequence[str] | None = None) -> None:
        self.encoders = tuple(encoders) if encoders is not None else available_pretrained_encoders()

    def suggest(self, trial: optuna.Trial) -> Architecture | None:
        encoder = trial.suggest_categorical("encoder", list(self.encoders))
        block_ids: list[int] = []
        patch_sizes: list[int] = []
        stages = pretrained_stages(encoder)
        for index in range(len(stages)):
            block = trial.suggest_categorical(f"{encoder}_stage_{index}_block", [None, *stages[index]])
            patch = trial.suggest_int(f"stage_{index}_patch_size", 1, MAX_PATCH_SIZE)
            if block is not None:
                block_ids.append(block)
                patch_sizes.append(patch)
        if not block_ids:
            return None
        return Architecture(encoder, {}, tuple(block_ids), tuple(patch_sizes))

    @property
    def reference_encoder(self) -> str:
        return self.encoders[0]

    def default_params(self) -> list[dict[str, Any]]:
        defaults = []
        for encoder in self.encoders:
            chosen = patchcore_blocks(encoder_blocks(encoder), encoder)
            params: dict[str, Any] = {"encoder": encoder}
            for index, stage in enumerate(pretrained_stages(encoder)):
                params[f"{encoder}_stage_{index}_block"] = next((b for b in chosen if b in stage), None)
                params[f"stage_{index}_patch_size"] = NEIGHBOURHOOD
            defaults.append(params)
        return defaults


@cache
def pretrained_stages(encoder: str) -> tuple[tuple[int, ...], ...]:
    """The pretrained space's stages of `encoder`: runs of blocks with equal (stride, channels) at
    stride >= 4 (the network's own stages, independent of how a family numbers them), with every
    stride-32 stage merged into one.

    EfficientNet-Lite (and MobileNetV2) then have five stages at strides 4, 8, 16, 16, 32, like OFA's
    (24/40/80/112/160 channels for OFA w1.0, 24/40/80/112/192+320 for Lite0): the 112-channel stride-16
    stage is kept apart as in OFA, and the last two stride-32 stages (Lite: 192 and 320 channels) are
    one OFA-like stage so the space has the same shape for every encoder.
    """
    groups: list[list[int]] = []
    last: tuple[int, int] = (0, 0)
    for info in encoder_blocks(encoder):
        if info.stride < MIN_PRETRAINED_STRIDE:
            continue
        both_final = info.stride >= FINAL_STRIDE and last[0] >= FINAL_STRIDE
        if groups and ((info.stride, info.channels) == last or both_final):
            groups[-1].append(info.id)
        else:
            groups.append([info.id])
        last = (info.stride, info.channels)
    return tuple(tuple(group) for group in groups)


def extractable_blocks(encoder: str) -> tuple[int, ...]:
    """Every block a `pretrained`-space trial may extract from `encoder` (what the feature cache stores)."""
    return tuple(block for stage in pretrained_stages(encoder) for block in stage)


def available_pretrained_encoders() -> tuple[str, ...]:
    """Lite0-2 (weights ship as pip packages) plus MobileNetV2 when its checkpoint is local."""
    return PRETRAINED_ENCODERS + tuple(name for name in OPTIONAL_PRETRAINED_ENCODERS if is_pretrained_available(name))


def get_space(name: str) -> SearchSpace:
    """The search space called `name` (one of SPACE_NAMES)."""
    if name == "ofa":
        return OFASpace()
    if name == "ofa-fixed":
        return OFASpace("ofa-fixed", supernet=OFA_LAYOUT.family(1.2), kernel_size=7, expand_ratio=6)
    if name == "pretrained":
        return PretrainedSpace()
    raise AutopatchError(f"unknown search space {name!r}; choose one of: {', '.join(SPACE_NAMES)}")


def default_space() -> str:
    """'ofa' when the OFA supernet weights are already local, else 'pretrained' (works offline)."""
    return "ofa" if all(is_pretrained_available(name) for name in OFA_LAYOUT.families) else "pretrained"
