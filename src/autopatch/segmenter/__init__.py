"""Segmenter: encoder + extraction blocks + patch sizes + memory bank, its model file, evaluate and predict."""

from autopatch.segmenter.evaluation import evaluate_on_split
from autopatch.segmenter.prediction import PredictionReport, predict_files
from autopatch.segmenter.segmenter import Segmenter

__all__ = ["PredictionReport", "Segmenter", "evaluate_on_split", "predict_files"]
