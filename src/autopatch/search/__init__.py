"""Architecture search: spaces, per-trial evaluation, and (SEARCH-STUDY) the Optuna study around them."""

from autopatch.search.architecture import Architecture, build_encoder
from autopatch.search.evaluator import TrialEvaluator, TrialFailed, TrialResult
from autopatch.search.export import ExportResult, export_trial
from autopatch.search.pareto import pareto_front, select_trial
from autopatch.search.spaces import SPACE_NAMES, OFASpace, PretrainedSpace, SearchSpace, default_space, get_space
from autopatch.search.storage import Heartbeat, open_storage
from autopatch.search.study import (
    ArchitectureObjectiveFactory,
    SearchSummary,
    StudySettings,
    TrialOutcome,
    load_existing_study,
    run_search,
)
from autopatch.search.workers import run_worker

__all__ = [
    "SPACE_NAMES",
    "Architecture",
    "OFASpace",
    "PretrainedSpace",
    "SearchSpace",
    "TrialEvaluator",
    "TrialFailed",
    "TrialResult",
    "ArchitectureObjectiveFactory",
    "ExportResult",
    "Heartbeat",
    "SearchSummary",
    "StudySettings",
    "TrialOutcome",
    "export_trial",
    "load_existing_study",
    "open_storage",
    "pareto_front",
    "run_search",
    "run_worker",
    "select_trial",
    "build_encoder",
    "default_space",
    "get_space",
]
