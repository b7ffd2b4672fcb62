"""timm-style registry: each backbone family file registers a factory under its name, with the checkpoint
its pretrained weights come from, so whether those weights are on this machine is a registry fact."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from autopatch.backbones.base import Encoder
from autopatch.backbones.weights import Checkpoint
from autopatch.errors import AutopatchError

EncoderFactory = Callable[..., Encoder]
_REGISTRY: dict[str, EncoderFactory] = {}
_CHECKPOINTS: dict[str, Callable[[], Checkpoint]] = {}


def register_encoder(
    name: str, checkpoint: Callable[[], Checkpoint] | None = None
) -> Callable[[EncoderFactory], EncoderFactory]:
    """Decorator: make `factory(pretrained: bool = True, weights: str | None = None, **config)` creatable by name;
    `checkpoint()` names the pretrained weights the factory loads (none: the family has no published weights)."""

    def wrap(factory: EncoderFactory) -> EncoderFactory:
        if name in _REGISTRY:
            raise ValueError(f"encoder {name!r} registered twice")
        _REGISTRY[name] = factory
        if checkpoint is not None:
            _CHECKPOINTS[name] = checkpoint
        return factory

    return wrap


def list_encoders() -> list[str]:
    """All registered family names, sorted."""
    return sorted(_REGISTRY)


def create_encoder(name: str, *, pretrained: bool = True, weights: str | None = None, **config: Any) -> Encoder:
    """Build encoder `name`; `weights` is a local checkpoint path that replaces the download."""
    if name not in _REGISTRY:
        raise AutopatchError(f"unknown backbone {name!r}; choose one of: {', '.join(list_encoders())}")
    return _REGISTRY[name](pretrained=pretrained, weights=weights, **config)


def pretrained_checkpoint(name: str) -> Checkpoint | None:
    """The checkpoint `create_encoder(name, pretrained=True)` loads, or None for a family without one."""
    if name not in _REGISTRY:
        raise AutopatchError(f"unknown backbone {name!r}; choose one of: {', '.join(list_encoders())}")
    return _CHECKPOINTS[name]() if name in _CHECKPOINTS else None


def is_pretrained_available(name: str) -> bool:
    """Whether `create_encoder(name, pretrained=True)` finds its weights without the network."""
    checkpoint = pretrained_checkpoint(name)
    return checkpoint is not None and checkpoint.present()
