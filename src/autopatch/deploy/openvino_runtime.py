"""Run a converted autopatch model in OpenVINO (IR: model.xml + model.bin) on the CPU, fp32; this module imports
neither torch nor faiss (`pip install 'autopatch[openvino]'`). The metadata (`deploy.inference.GraphInfo`)
is kept in the IR's runtime info under "autopatch".
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from autopatch.deploy.inference import INPUT_NAME, OUTPUT_NAMES, GraphInfo, Inference, check_images
from autopatch.errors import AutopatchError

EXTRA_HINT = "pip install 'autopatch[openvino]' (or: pip install openvino)"
RT_INFO_KEY = "autopatch"
FP32 = {"INFERENCE_PRECISION_HINT": "f32"}  # the CPU plugin would pick bf16 on CPUs that have it


class OpenvinoInferencer:
    """An autopatch OpenVINO IR (.xml beside its .bin) compiled for the CPU; `predict` takes uint8 RGB
    [N, H, W, 3]."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file() or not self.path.with_suffix(".bin").is_file():
            raise AutopatchError(
                f"OpenVINO model {self.path} (with {self.path.with_suffix('.bin').name} beside it) does not exist; "
                "write one with `autopatch convert --format openvino`"
            )
        try:
            import openvino
        except ImportError:
            raise AutopatchError(f"running {self.path} needs OpenVINO: {EXTRA_HINT}") from None
        core = openvino.Core()
        try:
            model = core.read_model(str(self.path))
        except RuntimeError as error:
            reason = " ".join(str(error).split())[:160]
            raise AutopatchError(
                f"{self.path} is not a readable OpenVINO model ({reason}); write it again with `autopatch convert`"
            ) from None
        values = {}
        if model.has_rt_info([RT_INFO_KEY]):
            values = {key: value.astype(str) for key, value in model.get_rt_info([RT_INFO_KEY]).astype(dict).items()}
        info = GraphInfo.read(values, self.path)
        self.image_size, self.threshold, self.image_threshold = info.image_size, info.threshold, info.image_threshold
        self.metadata = info.metadata
        self.compiled = core.compile_model(model, "CPU", FP32)
        self._outputs = [self.compiled.output(name) for name in OUTPUT_NAMES]

    def predict(self, images: np.ndarray) -> Inference:
        """Score uint8 RGB images [N, H, W, 3] ((H, W) = `image_size`)."""
        check_images(images, self.image_size, self.path.name)
        results = self.compiled({INPUT_NAME: np.ascontiguousarray(images)})
        maps, scores, labels, masks = (np.asarray(results[output]) for output in self._outputs)
        return Inference(maps, scores, labels, None if self.threshold is None else masks)
