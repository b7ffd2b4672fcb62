"""Run an exported autopatch ONNX model with ONNX Runtime alone: this module imports neither torch nor faiss,
so a line PC needs only numpy and `onnxruntime` (`pip install 'autopatch[onnx]'`).

The file's metadata (written by `deploy.onnx_export`) holds the format, the image size, both thresholds, the
architecture and the model's metadata as JSON; the graph's input and outputs are documented in
`deploy.graph`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from autopatch.deploy.inference import Inference, check_images
from autopatch.errors import AutopatchError

ONNX_FORMAT = "autopatch-onnx"
ONNX_FORMAT_VERSION = 1
INPUT_NAME = "images"
OUTPUT_NAMES = ("anomaly_map", "image_score", "label", "mask")
EXTRA_HINT = "pip install 'autopatch[onnx]' (or: pip install onnxruntime)"


class OnnxInferencer:
    """An autopatch .onnx model in an ONNX Runtime CPU session; `predict` takes uint8 RGB [N, S, S, 3]."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise AutopatchError(f"ONNX model {self.path} does not exist; write one with `autopatch convert`")
        try:
            import onnxruntime
        except ImportError:
            raise AutopatchError(f"running {self.path} needs ONNX Runtime: {EXTRA_HINT}") from None
        try:
            self.session = onnxruntime.InferenceSession(str(self.path), providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own Fail/InvalidProtobuf/... types
            reason = " ".join(str(error).split())[:160]
            raise AutopatchError(
                f"{self.path} is not a readable ONNX model ({reason}); write it again with `autopatch convert`"
            ) from None
        meta = dict(self.session.get_modelmeta().custom_metadata_map)
        if meta.get("format") != ONNX_FORMAT:
            raise AutopatchError(
                f"{self.path} is an ONNX model but not one written by `autopatch convert` (format "
                f"{meta.get('format')!r}); convert an autopatch model file instead"
            )
        if int(meta.get("format_version", 0)) > ONNX_FORMAT_VERSION:
            raise AutopatchError(
                f"{self.path} has ONNX format version {meta['format_version']}, newer than this autopatch reads "
                f"({ONNX_FORMAT_VERSION}); upgrade autopatch"
            )
        self.image_size = int(meta["image_size"])
        self.threshold = float(meta["threshold"])
        self.image_threshold = float(meta["image_threshold"])
        self.metadata: dict[str, Any] = json.loads(meta.get("metadata", "{}"))

    def predict(self, images: np.ndarray) -> Inference:
        """Score uint8 RGB images [N, S, S, 3] (S = `image_size`)."""
        check_images(images, self.image_size, self.path.name)
        outputs = self.session.run(list(OUTPUT_NAMES), {INPUT_NAME: np.ascontiguousarray(images)})
        return Inference(*outputs)
