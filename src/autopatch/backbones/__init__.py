"""Encoder families behind one registry; importing this package registers them all."""

from autopatch.backbones import (  # noqa: F401 (register)
    efficientnet_lite,
    mobilenet_v2,
    mobilenet_v3,
    ofa,
    wide_resnet,
)
from autopatch.backbones.base import IMAGENET_MEAN, IMAGENET_STD, BlockInfo, Encoder, patchcore_blocks
from autopatch.backbones.ofa import OFA_LAYOUT, SupernetPool
from autopatch.backbones.registry import (
    create_encoder,
    is_pretrained_available,
    list_encoders,
    pretrained_checkpoint,
    register_encoder,
)

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "OFA_LAYOUT",
    "BlockInfo",
    "Encoder",
    "SupernetPool",
    "create_encoder",
    "is_pretrained_available",
    "list_encoders",
    "patchcore_blocks",
    "pretrained_checkpoint",
    "register_encoder",
]
