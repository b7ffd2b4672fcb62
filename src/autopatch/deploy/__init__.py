"""Deploy: run a saved Segmenter on image files (heatmap PNG + raw score map + OK/NG verdict per image)."""

from autopatch.deploy.prediction import PREDICTIONS_FILE, Prediction, PredictionReport, predict_files

__all__ = ["PREDICTIONS_FILE", "Prediction", "PredictionReport", "predict_files"]
