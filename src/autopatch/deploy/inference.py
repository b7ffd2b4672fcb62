"""One interface for every runtime: each inferencer's `predict` takes uint8 RGB images [N, S, S, 3] and returns
an `Inference` (`deploy.runtimes.load_inferencer` picks one by the file's extension). Importing this module
(or `deploy.onnx_runtime`) loads neither torch nor faiss; the torch inferencer imports them when it is built.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from autopatch.errors import AutopatchError

if TYPE_CHECKING:
    import torch

    from autopatch.segmenter import Segmenter


@dataclass(frozen=True)
class Inference:
    """Per image: anomaly map float32 [N, S, S], image score float32 [N] (the map's maximum), label bool [N]
    (True = NG: score >= the image threshold) and defect mask bool [N, S, S] (map >= the pixel threshold);
    labels / masks are None for a model without that threshold (a format-1 .pt file)."""

    anomaly_maps: np.ndarray
    image_scores: np.ndarray
    labels: np.ndarray | None
    masks: np.ndarray | None


class Inferencer(Protocol):
    image_size: int
    threshold: float | None
    image_threshold: float | None
    metadata: dict[str, Any]

    def predict(self, images: np.ndarray) -> Inference: ...


def check_images(images: object, size: int, model: str) -> None:
    """uint8 RGB [N, size, size, 3], else one line naming the model's expected shape."""
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4 or len(images) == 0:
        raise AutopatchError(f"images must be a non-empty uint8 numpy array [N, {size}, {size}, 3] (RGB)")
    if images.shape[1:] != (size, size, 3):
        raise AutopatchError(
            f"images have shape {images.shape[1:]} per image but {model} expects ({size}, {size}, 3): "
            f"RGB with 3 channels, resized to {size} x {size}"
        )


def require_thresholds(threshold: float | None, image_threshold: float | None, model: object) -> None:
    """A deployed model decides: both thresholds must be there."""
    if threshold is None or image_threshold is None:
        raise AutopatchError(
            f"model {model} has no pixel or image threshold (a format-1 model file?); re-create it with "
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
