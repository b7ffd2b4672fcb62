"""Run an exported autopatch ONNX model with ONNX Runtime alone: this module imports neither torch nor faiss,
so a line PC needs only numpy and `onnxruntime` (`pip install 'autopatch[onnx]'`).

The file's metadata (`deploy.inference.GraphInfo`, written by `deploy.convert`) holds the format, the image
size, both thresholds, the architecture and the model's metadata as JSON; the graph's input and outputs are
documented in `deploy.graph`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from autopatch.deploy.inference import INPUT_NAME, OUTPUT_NAMES, GraphInfo, Inference, check_images
from autopatch.errors import AutopatchError

EXTRA_HINT = "pip install 'autopatch[onnx]' (or: pip install onnxruntime)"


class OnnxInferencer:
    """An autopatch .onnx model in an ONNX Runtime CPU session; `predict` takes uint8 RGB [N, H, W, 3]."""

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
        info = GraphInfo.read(dict(self.session.get_modelmeta().custom_metadata_map), self.path)
        self.image_size, self.threshold, self.image_threshold = info.image_size, info.threshold, info.image_threshold
        self.metadata = info.metadata

    def predict(self, images: np.ndarray) -> Inference:
        """Score uint8 RGB images [N, H, W, 3] ((H, W) = `image_size`)."""
        check_images(images, self.image_size, self.path.name)
        maps, scores, labels, masks = self.session.run(list(OUTPUT_NAMES), {INPUT_NAME: np.ascontiguousarray(images)})
        return Inference(maps, scores, labels, None if self.threshold is None else masks)
