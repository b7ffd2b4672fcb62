"""Encoder families behind one registry; importing this package registers them all."""

from autopatch.backbones.base import BlockInfo, Encoder
from autopatch.backbones.registry import create_encoder, list_encoders, register_encoder
from autopatch.backbones import efficientnet_lite, mobilenet_v2, mobilenet_v3, wide_resnet  # noqa: F401,E402 (register)
from autopatch.backbones import ofa_mbv3  # noqa: F401

__all__ = ["BlockInfo", "Encoder", "create_encoder", "list_encoders", "register_encoder"]
