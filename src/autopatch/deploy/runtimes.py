"""Which runtime runs a model file: torch for .pt, ONNX Runtime for .onnx, OpenVINO for .xml (torch is imported
only for .pt)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from autopatch.deploy.inference import Inferencer, TorchInferencer
from autopatch.deploy.onnx_runtime import OnnxInferencer
from autopatch.deploy.openvino_runtime import OpenvinoInferencer
from autopatch.errors import AutopatchError

if TYPE_CHECKING:
    import torch


def load_inferencer(path: str | Path, device: str | torch.device = "cpu") -> Inferencer:
    """The inferencer for `path` by its extension: .pt (torch, on `device`), .onnx (ONNX Runtime, CPU) or .xml
    (OpenVINO, CPU)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".pt":
        return TorchInferencer(path, device)
    if suffix == ".onnx":
        return OnnxInferencer(path)
    if suffix == ".xml":
        return OpenvinoInferencer(path)
    raise AutopatchError(f"{path}: unknown model extension {path.suffix!r}; pass a .pt, .onnx or .xml model file")
