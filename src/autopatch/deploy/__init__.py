"""Deploy: run a model on image files (heatmap PNG + raw score map + OK/NG verdict per image), convert it to
ONNX or OpenVINO (`convert_model`) and run it in any runtime behind one interface (`load_inferencer`).

Names load on first use, so `load_inferencer` and the ONNX / OpenVINO inferencers import neither torch nor
faiss: a line PC needs only numpy and its runtime.
"""

from autopatch._lazy import lazy_exports

_EXPORTS = {
    "PREDICTIONS_FILE": "autopatch.deploy.prediction",
    "Conversion": "autopatch.deploy.convert",
    "Inference": "autopatch.deploy.inference",
    "LatencyMeter": "autopatch.deploy.latency",
    "OnnxInferencer": "autopatch.deploy.onnx_runtime",
    "OpenvinoInferencer": "autopatch.deploy.openvino_runtime",
    "Prediction": "autopatch.deploy.prediction",
    "PredictionReport": "autopatch.deploy.prediction",
    "ScoringGraph": "autopatch.deploy.graph",
    "TorchInferencer": "autopatch.deploy.inference",
    "convert_model": "autopatch.deploy.convert",
    "load_inferencer": "autopatch.deploy.runtimes",
    "predict_files": "autopatch.deploy.prediction",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
