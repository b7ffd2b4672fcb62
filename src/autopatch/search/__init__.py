"""Architecture search: spaces, per-trial evaluation, and the Optuna study around them.

The public face is `run_study` (returns the study and its Pareto front), `StudySettings`, the spaces,
`pareto_front` / `select_trial` and `export_trial`; the modules behind it are free to change.
"""

from autopatch.search.architecture import Architecture, build_encoder
from autopatch.search.definition import (
    ObjectiveFactory,
    StudySettings,
    TrialOutcome,
    load_existing_study,
    open_study,
)
from autopatch.search.evaluator import TrialEvaluator, TrialFailed, TrialResult
from autopatch.search.export import ExportResult, export_trial
from autopatch.search.pareto import front_table, pareto_front, select_trial
from autopatch.search.spaces import SPACE_NAMES, OFASpace, PretrainedSpace, SearchSpace, default_space, get_space
from autopatch.search.storage import Heartbeat, existing_default_storage_url, open_storage
from autopatch.search.study import ArchitectureObjectiveFactory, SearchSummary, run_study
from autopatch.search.workers import run_worker

__all__ = [
    "SPACE_NAMES",
    "Architecture",
    "ArchitectureObjectiveFactory",
    "ExportResult",
    "Heartbeat",
    "OFASpace",
    "ObjectiveFactory",
    "PretrainedSpace",
    "SearchSpace",
    "SearchSummary",
    "StudySettings",
    "TrialEvaluator",
    "TrialFailed",
    "TrialOutcome",
    "TrialResult",
    "build_encoder",
    "default_space",
    "existing_default_storage_url",
    "export_trial",
    "front_table",
    "get_space",
    "load_existing_study",
    "open_storage",
    "open_study",
    "pareto_front",
    "run_study",
    "run_worker",
    "select_trial",
]
