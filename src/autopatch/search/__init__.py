"""Architecture search: spaces, per-trial evaluation, and the Optuna study around them.

The public face is `run_study` (returns the study and its Pareto front), `StudySettings`, the spaces,
`pareto_front` / `select_trial` / `best_trial` (against the study's reference model) and `export_trial`; the
modules behind it are free to change. Names load on first use, so `from autopatch.search import SPACE_NAMES` (the
CLI's --help) imports neither optuna nor torch.
"""

from autopatch._lazy import lazy_exports

_EXPORTS = {
    "DEFAULT_FIDELITY": "autopatch.search.fidelity",
    "DEFAULT_SYNTHETIC": "autopatch.search.names",
    "FIDELITIES": "autopatch.search.fidelity",
    "Fidelity": "autopatch.search.fidelity",
    "Architecture": "autopatch.search.architecture",
    "ArchitectureObjectiveFactory": "autopatch.search.study",
    "ExportResult": "autopatch.search.export",
    "Heartbeat": "autopatch.search.storage",
    "OFASpace": "autopatch.search.spaces",
    "ObjectiveFactory": "autopatch.search.definition",
    "Pick": "autopatch.search.export",
    "PretrainedSpace": "autopatch.search.spaces",
    "REFERENCE_ATTR": "autopatch.search.reference",
    "Reference": "autopatch.search.reference",
    "SPACE_NAMES": "autopatch.search.names",
    "SearchSpace": "autopatch.search.spaces",
    "SearchSummary": "autopatch.search.study",
    "StudySettings": "autopatch.search.definition",
    "TrialEvaluator": "autopatch.search.evaluator",
    "TrialFailed": "autopatch.search.evaluator",
    "TrialOutcome": "autopatch.search.definition",
    "TrialResult": "autopatch.search.evaluator",
    "best_trial": "autopatch.search.export",
    "build_encoder": "autopatch.search.architecture",
    "candidates": "autopatch.search.pareto",
    "default_space": "autopatch.search.spaces",
    "default_synthetic": "autopatch.search.names",
    "existing_default_storage_url": "autopatch.search.storage",
    "export_reference": "autopatch.search.export",
    "export_trial": "autopatch.search.export",
    "front_table": "autopatch.search.pareto",
    "get_fidelity": "autopatch.search.fidelity",
    "get_space": "autopatch.search.spaces",
    "load_existing_study": "autopatch.search.definition",
    "noise_summary": "autopatch.search.pareto",
    "open_storage": "autopatch.search.storage",
    "open_study": "autopatch.search.definition",
    "pareto_front": "autopatch.search.pareto",
    "reference_summary": "autopatch.search.reference",
    "run_study": "autopatch.search.study",
    "run_worker": "autopatch.search.workers",
    "study_reference": "autopatch.search.reference",
    "select_trial": "autopatch.search.pareto",
    "select_lower_bound": "autopatch.search.pareto",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
