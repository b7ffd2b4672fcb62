"""Segmenter: encoder + extraction blocks + patch sizes + memory bank, its model file, evaluation."""

from autopatch.segmenter.evaluation import SplitsEvaluation, evaluate_on_split, fit_and_evaluate, fit_on_splits
from autopatch.segmenter.segmenter import Segmenter

__all__ = ["Segmenter", "SplitsEvaluation", "evaluate_on_split", "fit_and_evaluate", "fit_on_splits"]
