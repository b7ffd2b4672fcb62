"""The paper's §5 experiments as one command: searches, re-fits, baseline, Tables 3-6, Figures 2-3."""

from autopatch.experiment.datasets import Dataset, pair_datasets
from autopatch.experiment.records import ExperimentResults, FrontPoint, RunRecord
from autopatch.experiment.runner import ExperimentOutputs, ExperimentRunner, run_experiment
from autopatch.experiment.settings import ExperimentSettings
from autopatch.experiment.tables import architecture_table, metric_table, rwap_gflops_table, write_tables

__all__ = [
    "Dataset",
    "ExperimentOutputs",
    "ExperimentResults",
    "ExperimentRunner",
    "ExperimentSettings",
    "FrontPoint",
    "RunRecord",
    "architecture_table",
    "metric_table",
    "pair_datasets",
    "run_experiment",
    "rwap_gflops_table",
    "write_tables",
]
