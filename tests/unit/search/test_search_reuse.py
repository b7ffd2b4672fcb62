"""An architecture the study holds as COMPLETE is never evaluated again: its stored result is reused, the
reusing trial names the original, and the Pareto front lists the architecture once."""

import optuna

from autopatch.search.architecture import Architecture
from autopatch.search.definition import REUSES_ATTR, StudySettings
from autopatch.search.evaluator import TrialResult
from autopatch.search.pareto import pareto_front, select_trial
from autopatch.search.storage import Heartbeat
from autopatch.search.study import ArchitectureObjective
from autopatch.search.workers import WorkerJob, work

A = Architecture("efficientnet_lite0", {}, (2, 7), (3, 1))
B = Architecture("efficientnet_lite0", {}, (4,), (5,))
METRICS = {"rwap": 0.5, "ap": 0.4, "auroc": 0.9, "pauroc_0.3": 0.8, "aupro_0.3": 0.7}


class Proposals:
    """A space that proposes the given architectures in turn."""

    name = "pretrained"

    def __init__(self, *archs: Architecture) -> None:
        self.archs = list(archs)

    def suggest(self, trial):
        trial.suggest_int("i", 0, 10)
        return self.archs.pop(0)


class CountingEvaluator:
    def __init__(self) -> None:
        self.scored: list[Architecture] = []

    def evaluate(self, arch):
        self.scored.append(arch)
        rwap = 0.5 if arch == A else 0.6
        return TrialResult(metrics={**METRICS, "rwap": rwap}, gflops=0.1 * len(self.scored), timings={"total": 1.0})


def test_a_repeated_architecture_reuses_the_stored_result(tmp_path):
    study = optuna.create_study(directions=["minimize", "maximize"])
    evaluator = CountingEvaluator()
    objective = ArchitectureObjective(Proposals(A, B, A, A), evaluator)
    job = WorkerJob(StudySettings(str(tmp_path), "toy"), "s", "unused", Heartbeat(), None, trials=4)
    assert work(study, objective, job) == 4
    trials = study.get_trials()
    assert evaluator.scored == [A, B]  # A evaluated once
    assert [t.user_attrs.get(REUSES_ATTR) for t in trials] == [None, None, 0, 0]
    assert [t.values for t in trials[2:]] == [trials[0].values] * 2
    assert all(t.user_attrs["architecture"] == str(A) for t in trials[2:])
    # A (0.1 GFLOPs, rwAP 0.5) and B (0.2, 0.6) are the front, A once; the copies never count
    assert [t.number for t in pareto_front(trials)] == [0, 1]
    assert select_trial(trials, "best").number == 1
