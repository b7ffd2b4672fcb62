"""timm-style registry: each backbone family file registers a factory under its name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from autopatch.backbones.base import Encoder
from autopatch.errors import AutopatchError

EncoderFactory = Callable[..., Encoder]
_REGISTRY: dict[str, EncoderFactory] = {}


def register_encoder(name: str) -> Callable[[EncoderFactory], EncoderFactory]:
    """Decorator: make `factory(pretrained: bool = True, weights: str | None = None, **config)` creatable by name."""

    def wrap(factory: EncoderFactory) -> EncoderFactory:
        if name in _REGISTRY:
            raise ValueError(f"encoder {name!r} registered twice")
        _REGISTRY[name] = factory
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
