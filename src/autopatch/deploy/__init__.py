"""Deploy: run a saved Segmenter on image files (heatmap PNG + raw score map per image)."""

from autopatch.deploy.prediction import PredictionReport, predict_files

__all__ = ["PredictionReport", "predict_files"]
