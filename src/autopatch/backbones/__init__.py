"""Encoder families behind one registry; importing this package registers them all."""

from autopatch.backbones import (  # noqa: F401,E402 (register)
    efficientnet_lite,
    mobilenet_v2,
    mobilenet_v3,
    ofa_mbv3,  # noqa: F401
    wide_resnet,
)
from autopatch.backbones.base import BlockInfo, Encoder
from autopatch.backbones.registry import create_encoder, list_encoders, register_encoder

__all__ = ["BlockInfo", "Encoder", "create_encoder", "list_encoders", "register_encoder"]
