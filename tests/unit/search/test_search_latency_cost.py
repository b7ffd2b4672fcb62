"""`--cost latency`: the study minimises each architecture's measured latency instead of its GFLOPs, stores both
for every trial (a reused architecture included), keeps the --max-gflops budget on GFLOPs, and refuses to mix
costs or runtimes on resume."""

import itertools

import optuna
import pytest

from autopatch.errors import AutopatchError
from autopatch.search.architecture import Architecture
from autopatch.search.definition import REUSES_ATTR, Latency, StudySettings, open_study
from autopatch.search.evaluator import TrialResult
from autopatch.search.pareto import candidates, front_table, pareto_front, select_trial, within_budget
from autopatch.search.storage import Heartbeat
from autopatch.search.study import ArchitectureObjective, ArchitectureObjectiveFactory
from autopatch.search.workers import WorkerJob, work

ARCHS = [
    Architecture("efficientnet_lite0", {}, (2, 7), (3, 1)),
    Architecture("efficientnet_lite0", {}, (4,), (5,)),
    Architecture("efficientnet_lite0", {}, (4, 10), (3, 3)),
    Architecture("efficientnet_lite1", {}, (7,), (2,)),
    Architecture("efficientnet_lite0", {}, (2, 7), (3, 1)),  # the first again: reused, never measured again
]
METRICS = {"ap": 0.4, "auroc": 0.9, "pauroc_0.3": 0.8, "aupro_0.3": 0.7}
RWAP = [0.50, 0.55, 0.70, 0.60]
GFLOPS = [0.40, 0.10, 0.20, 0.30]  # by first appearance; latency ranks them otherwise
MS = {(2, 7): (5.0, 40.0), (4,): (3.0, 30.0), (4, 10): (4.0, 6.0), (7,): (4.5, 2.0)}  # blocks -> (encoder, head) ms
SETTINGS = {"data_root": "unused", "category": "toy"}


class Proposals:
    name = "pretrained"

    def __init__(self, archs):
        self.archs = list(archs)

    def suggest(self, trial):
        trial.suggest_int("i", 0, 10)
        return self.archs.pop(0)


class Evaluator:
    image_size = (64, 64)

    def __init__(self):
        self.scored = []

    def evaluate(self, arch):
        self.scored.append(arch)
        i = len(self.scored) - 1
        return TrialResult({**METRICS, "rwap": RWAP[i]}, GFLOPS[i], {"total": 1.0}, bank_rows=100 * (i + 1))


class Meter:
    def __init__(self):
        self.calls = []

    def __call__(self, arch, image_size, bank_rows):
        self.calls.append((arch, image_size, bank_rows))
        return Latency(*MS[arch.block_ids])


def run(tmp_path, settings, meter):
    study = optuna.create_study(directions=["minimize", "maximize"])
    objective = ArchitectureObjective(Proposals(ARCHS), Evaluator(), meter)
    job = WorkerJob(settings, "s", "unused", Heartbeat(), None, trials=len(ARCHS))
    assert work(study, objective, job) == len(ARCHS)
    return study.get_trials()


def test_a_latency_study_minimises_the_measured_latency_and_stores_gflops_too(tmp_path):
    meter = Meter()
    trials = run(tmp_path, StudySettings(**SETTINGS, cost="latency", runtime="onnx"), meter)
    # the meter got each new architecture once, with the evaluator's image size and the rows its bank kept
    assert meter.calls == [(arch, (64, 64), 100 * (i + 1)) for i, arch in enumerate(ARCHS[:4])]
    for trial, arch in zip(trials, ARCHS, strict=True):
        encoder_ms, head_ms = MS[arch.block_ids]
        assert trial.values[0] == encoder_ms + head_ms
        assert trial.user_attrs["latency_ms"] == encoder_ms + head_ms
        assert (trial.user_attrs["latency_encoder_ms"], trial.user_attrs["latency_head_ms"]) == (encoder_ms, head_ms)
    assert [t.user_attrs["gflops"] for t in trials] == [*GFLOPS, GFLOPS[0]]
    assert trials[4].user_attrs[REUSES_ATTR] == 0
    # the front by brute force over (latency, rwAP) of the four distinct trials, not over GFLOPs
    points = {t.number: (t.values[0], t.user_attrs["rwap"]) for t in trials[:4]}
    dominated = {
        a for a, b in itertools.permutations(points, 2)
        if points[b][0] <= points[a][0] and points[b][1] >= points[a][1] and points[a] != points[b]
    }  # fmt: skip
    assert [t.number for t in pareto_front(trials)] == sorted(set(points) - dominated, key=lambda n: points[n][0])
    assert [t.number for t in pareto_front(trials)] == [3, 2]  # GFLOPs would have given [1, 2]
    # the budget is on GFLOPs, whatever the cost: 0.25 GFLOPs keeps trials 1 and 2
    assert [t.number for t in within_budget(trials, max_gflops=0.25)] == [1, 2]
    table = front_table(pareto_front(trials)).splitlines()
    assert table[0].split()[:3] == ["trial", "GFLOPs", "ms"]
    assert table[1].split()[:3] == ["3", "0.3000", "6.5"]


def test_a_latency_budget_keeps_the_trials_measured_within_it(tmp_path):
    trials = run(tmp_path, StudySettings(**SETTINGS, cost="latency", runtime="onnx"), Meter())
    latency = {t.number: t.user_attrs["latency_ms"] for t in trials[:4]}  # 45, 33, 10, 6.5 ms
    assert [t.number for t in within_budget(trials, max_ms=20)] == [n for n in range(4) if latency[n] <= 20]
    assert select_trial(trials, "best").number == 2  # rwAP 0.70 at 10 ms
    assert select_trial(trials, "best", max_ms=8).number == 3  # the only trial within 8 ms
    assert [t.number for t in candidates(trials, max_ms=8)] == [3]
    assert select_trial(trials, 3, max_ms=8).number == 3
    with pytest.raises(AutopatchError, match="trial 2 is above --max-ms 8"):
        select_trial(trials, 2, max_ms=8)
    with pytest.raises(AutopatchError, match="no completed trial with at most 5 ms"):
        select_trial(trials, "best", max_ms=5)


def test_a_gflops_study_stores_no_latency_and_shows_no_latency_column(tmp_path):
    trials = run(tmp_path, StudySettings(**SETTINGS), None)
    assert [t.values[0] for t in trials] == [*GFLOPS, GFLOPS[0]]
    assert not any("latency_ms" in t.user_attrs for t in trials)
    assert front_table(pareto_front(trials)).splitlines()[0].split()[:3] == ["trial", "GFLOPs", "rwAP"]
    with pytest.raises(AutopatchError, match="--max-ms needs trials with a measured latency: search with --cost"):
        select_trial(trials, "best", max_ms=10)


def test_resuming_with_another_cost_or_runtime_is_refused(tmp_path):
    storage = optuna.storages.InMemoryStorage()
    latency = StudySettings(**SETTINGS, cost="latency", runtime="onnx")
    open_study(latency, "s", storage)
    with pytest.raises(AutopatchError, match="cost='latency', not 'gflops'.*--cost"):
        open_study(StudySettings(**SETTINGS), "s", storage)
    with pytest.raises(AutopatchError, match="runtime='onnx', not 'openvino'.*--runtime"):
        open_study(StudySettings(**SETTINGS, cost="latency", runtime="openvino"), "s", storage)
    open_study(latency, "s", storage)  # the same settings resume


def test_latency_settings_default_to_torch_and_name_the_study():
    settings = StudySettings(**SETTINGS, cost="latency")
    assert settings.runtime == "torch"
    assert settings.default_study_name() == "toy-pretrained-k1-s0-latency-torch"
    assert StudySettings(**SETTINGS).default_study_name() == "toy-pretrained-k1-s0"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"runtime": "onnx"}, "--runtime onnx applies to --cost latency only"),
        ({"cost": "latency", "runtime": "tflite"}, "--runtime 'tflite' is unknown"),
        ({"cost": "ms"}, "--cost 'ms' is unknown"),
    ],
)
def test_bad_cost_settings_fail_in_one_line(options, message):
    with pytest.raises(AutopatchError, match=message):
        StudySettings(**SETTINGS, **options)


def test_a_latency_study_without_a_meter_fails_before_any_data_is_read(tmp_path):
    factory = ArchitectureObjectiveFactory(StudySettings(str(tmp_path / "missing"), "toy", cost="latency"))
    with pytest.raises(AutopatchError, match="--cost latency needs a latency meter"):
        factory()
