"""One interface for every runtime: each inferencer's `predict` takes uint8 RGB images [N, H, W, 3] and returns
an `Inference` (`deploy.runtimes.load_inferencer` picks one by the file's extension). Importing this module
(or `deploy.onnx_runtime`) loads neither torch nor faiss; the torch inferencer imports them when it is built.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from autopatch import __version__
from autopatch.errors import AutopatchError
from autopatch.image_size import ImageSize, parse_image_size, size_label

GRAPH_FORMAT = "autopatch-graph"  # a converted model (ONNX, OpenVINO IR): `deploy.graph` plus this metadata
GRAPH_FORMAT_VERSION = 2  # 2: image_size may be "HxW"
INPUT_NAME = "images"
OUTPUT_NAMES = ("anomaly_map", "image_score", "label", "mask")

if TYPE_CHECKING:
    import torch

    from autopatch.segmenter import Segmenter


@dataclass(frozen=True)
class Inference:
    """Per image: anomaly map float32 [N, H, W], image score float32 [N] (the map's maximum), label bool [N]
    (True = NG: score >= the image threshold) and defect mask bool [N, H, W] (map >= the pixel threshold);
    labels are None for a model without an image threshold (a format-1 .pt file), masks for one without a pixel
    threshold (fitted on data without masks)."""

    anomaly_maps: np.ndarray
    image_scores: np.ndarray
    labels: np.ndarray | None
    masks: np.ndarray | None


class Inferencer(Protocol):
    image_size: ImageSize  # (height, width)
    threshold: float | None
    image_threshold: float | None
    metadata: dict[str, Any]

    def predict(self, images: np.ndarray) -> Inference: ...


@dataclass(frozen=True)
class GraphInfo:
    """What a converted model's metadata says: image size, pixel (None: fitted without masks) and image
    thresholds, the model's metadata."""

    image_size: ImageSize
    threshold: float | None
    image_threshold: float
    metadata: dict[str, Any]

    @staticmethod
    def write(segmenter: Segmenter) -> dict[str, str]:
        """The metadata of a converted `segmenter`, as the string pairs ONNX and OpenVINO files hold."""
        return {
            "format": GRAPH_FORMAT, "format_version": str(GRAPH_FORMAT_VERSION), "autopatch_version": __version__,
            "image_size": size_label(segmenter.image_size), "threshold": repr(segmenter.threshold),
            "image_threshold": repr(segmenter.image_threshold), "input": "uint8 RGB [N, H, W, 3]",
            "architecture": str(segmenter.metadata.get("architecture", "")),
            "metadata": json.dumps(segmenter.metadata),
        }  # fmt: skip

    @classmethod
    def read(cls, values: dict[str, str], path: Path) -> GraphInfo:
        """Check and parse `write`'s pairs read back from `path`."""
        if values.get("format") != GRAPH_FORMAT:
            raise AutopatchError(
                f"{path} is not a model written by `autopatch convert` (format {values.get('format')!r}); "
                "convert an autopatch model file instead"
            )
        if int(values.get("format_version", 0)) > GRAPH_FORMAT_VERSION:
            raise AutopatchError(
                f"{path} has format version {values['format_version']}, newer than this autopatch reads "
                f"({GRAPH_FORMAT_VERSION}); upgrade autopatch"
            )
        threshold = None if values["threshold"] == "None" else float(values["threshold"])
        return cls(parse_image_size(values["image_size"]), threshold, float(values["image_threshold"]),
                   json.loads(values.get("metadata", "{}")))  # fmt: skip


def check_images(images: object, size: ImageSize, model: str) -> None:
    """uint8 RGB [N, height, width, 3], else one line naming the model's expected shape."""
    height, width = size
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4 or len(images) == 0:
        raise AutopatchError(f"images must be a non-empty uint8 numpy array [N, {height}, {width}, 3] (RGB)")
    if images.shape[1:] != (height, width, 3):
        raise AutopatchError(
            f"images have shape {images.shape[1:]} per image but {model} expects ({height}, {width}, 3): "
            f"RGB with 3 channels, resized to {height} x {width} (height x width)"
        )


def require_image_threshold(image_threshold: float | None, model: object) -> None:
    """A converted model decides OK/NG: its image threshold must be there."""
    if image_threshold is None:
        raise AutopatchError(
            f"model {model} has no image threshold (a format-1 model file?); re-create it with "
            "`autopatch fit` or `autopatch export`"
        )


class TorchInferencer:
    """A Segmenter (or its .pt model file, loaded on `device`) behind the same interface as the other runtimes."""

    def __init__(self, model: Segmenter | str | Path, device: str | torch.device = "cpu") -> None:
        from autopatch.segmenter import Segmenter

        self.segmenter = model if isinstance(model, Segmenter) else Segmenter.load(model, device=device)
        self.name = Path(model).name if isinstance(model, str | Path) else "the model"
        self.image_size = self.segmenter.image_size
        self.threshold = self.segmenter.threshold
        self.image_threshold = self.segmenter.image_threshold
        self.metadata = self.segmenter.metadata

    def predict(self, images: np.ndarray) -> Inference:
        import torch

        check_images(images, self.image_size, self.name)
        maps = self.segmenter.predict(torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()).numpy()
        scores = maps.max(axis=(1, 2))
        labels = None if self.image_threshold is None else scores >= self.image_threshold
        masks = None if self.threshold is None else maps >= self.threshold
        return Inference(maps, scores, labels, masks)
