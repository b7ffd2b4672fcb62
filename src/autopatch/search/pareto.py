"""Pareto-optimal trials of a (cost ↓, rwAP ↑) study and the choice of which one to export. The cost is GFLOPs,
or the measured latency of a `--cost latency` study; the `--max-gflops` budget is on GFLOPs either way.

Computed here from trial values rather than with `Study.best_trials`, so a `--max-gflops` budget given at
`pareto`/`export` time (not only the one the search ran with) can restrict the front.
"""

from __future__ import annotations

from collections.abc import Sequence

from optuna.trial import FrozenTrial, TrialState

from autopatch.errors import AutopatchError
from autopatch.metrics import SE_SUFFIX
from autopatch.search.definition import DEFAULT_ATTR, REUSES_ATTR


def objectives(trial: FrozenTrial) -> tuple[float, float]:
    """(cost, rwap) of a COMPLETE trial: its two Optuna values in study direction order."""
    cost, rwap = trial.values
    return float(cost), float(rwap)


def trial_gflops(trial: FrozenTrial) -> float:
    """A COMPLETE trial's GFLOPs, whatever its study's cost."""
    return float(trial.user_attrs.get("gflops", trial.values[0]))


def within_budget(
    trials: Sequence[FrozenTrial], max_gflops: float | None = None, max_ms: float | None = None
) -> list[FrozenTrial]:
    """COMPLETE trials, those above `max_gflops` or above `max_ms` of measured latency (a `--cost latency` study's)
    and copies of an earlier trial's result left out."""
    complete = [t for t in trials if t.state == TrialState.COMPLETE and REUSES_ATTR not in t.user_attrs]
    if max_ms is not None and complete and not any("latency_ms" in t.user_attrs for t in complete):
        raise AutopatchError("--max-ms needs trials with a measured latency: search with --cost latency")
    return [
        t for t in complete
        if (max_gflops is None or trial_gflops(t) <= max_gflops)
        and (max_ms is None or t.user_attrs.get("latency_ms", float("inf")) <= max_ms)
    ]  # fmt: skip


def dominates(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """a is no worse on both objectives (lower cost, higher rwAP) and better on one."""
    return a[0] <= b[0] and a[1] >= b[1] and a != b


def pareto_front(
    trials: Sequence[FrozenTrial], max_gflops: float | None = None, max_ms: float | None = None
) -> list[FrozenTrial]:
    """Non-dominated COMPLETE trials within the budget, cheapest first (ties keep every trial).

    One pass over trials sorted by (cost ↑, rwAP ↓): a trial is on the front iff its rwAP beats every
    cheaper trial's, or equals the front's best at the same cost.
    """
    within = within_budget(trials, max_gflops, max_ms)
    ranked = sorted(within, key=lambda t: (objectives(t)[0], -objectives(t)[1], t.number))
    front: list[FrozenTrial] = []
    for trial in ranked:
        cost, rwap = objectives(trial)
        if not front:
            front.append(trial)
            continue
        last_cost, last_rwap = objectives(front[-1])
        if rwap > last_rwap or (rwap == last_rwap and cost == last_cost):
            front.append(trial)
    return front


def select_trial(
    trials: Sequence[FrozenTrial], choice: str | int, max_gflops: float | None = None, max_ms: float | None = None
) -> FrozenTrial:
    """The trial to export: its number, or 'best' = highest rwAP within the budget (lowest cost on ties)."""
    if str(choice) != "best":
        number = _trial_number(choice)
        match = [t for t in trials if t.number == number]
        if not match:
            raise AutopatchError(f"trial {number} does not exist; `autopatch pareto` lists the trials to choose from")
        if match[0].state != TrialState.COMPLETE:
            raise AutopatchError(f"trial {number} is {match[0].state.name}, not COMPLETE; choose a completed trial")
        if max_gflops is not None and trial_gflops(match[0]) > max_gflops:
            raise AutopatchError(
                f"trial {number} needs {trial_gflops(match[0]):.4f} GFLOPs, above --max-gflops {max_gflops}; "
                "drop one of the two options"
            )
        if max_ms is not None and not within_budget(match, max_ms=max_ms):
            raise AutopatchError(f"trial {number} is above --max-ms {max_ms} (or was not timed); drop one of the two")
        return match[0]
    candidates = within_budget(trials, max_gflops, max_ms)
    if not candidates:
        budget = "".join(f" with at most {value} {unit}" for value, unit in ((max_gflops, "GFLOPs"), (max_ms, "ms"))
                         if value is not None)  # fmt: skip
        raise AutopatchError(f"the study has no completed trial{budget}; run more trials or raise the budget")
    return min(candidates, key=lambda t: (-objectives(t)[1], objectives(t)[0], t.number))


def select_lower_bound(
    trials: Sequence[FrozenTrial], values: dict[int, float], errors: dict[int, float | None] | None = None
) -> FrozenTrial:
    """The pick with the noise in view: the trial whose validation objective minus its bootstrap standard error
    (a lower confidence bound) is highest, lowest cost on ties. `values` maps trial number -> its validation
    objective as re-scored exactly (whatever fidelity the search ran at, so the search's own values only decide
    the candidates), `errors` -> that value's standard error (None or missing: 0, as for studies made before
    autopatch stored them, where the rule is the highest value)."""
    if not trials:
        raise AutopatchError("no trial to choose from; run more trials")
    known = errors or {}
    return min(trials, key=lambda t: (-(values[t.number] - (known.get(t.number) or 0.0)), objectives(t)[0], t.number))


def candidates(
    trials: Sequence[FrozenTrial], max_gflops: float | None = None, max_ms: float | None = None
) -> list[FrozenTrial]:
    """What a pick chooses from: the Pareto front and the default-architecture trials, within the budget,
    cheapest first."""
    front = pareto_front(trials, max_gflops, max_ms)
    numbers = {t.number for t in front}
    within = within_budget(trials, max_gflops, max_ms)
    extra = [t for t in within if t.user_attrs.get(DEFAULT_ATTR) and t.number not in numbers]
    return sorted([*front, *extra], key=lambda t: (objectives(t)[0], -objectives(t)[1], t.number))


def noise_summary(front: Sequence[FrozenTrial], metric: str, label: str) -> str | None:
    """One line on how far the validation can be trusted to rank `front` on `metric` (printed as `label`):
    the best value with its bootstrap standard error, how many front trials lie within one standard error of
    it, and a plain warning when that is all of them or when the best is below 1 %. None when the best trial
    has no standard error (a study from before they were stored)."""
    if not front:
        return None
    best = max(front, key=lambda t: objectives(t)[1])
    error = best.user_attrs.get(metric + SE_SUFFIX)
    if error is None:
        return None
    value = objectives(best)[1]
    close = sum(objectives(t)[1] >= value - error for t in front)
    line = (f"validation {label} of the best trial {value:.4f} ± {error:.4f} (bootstrap standard error); "
            f"{close} of {len(front)} front trials lie within one standard error of it")  # fmt: skip
    if value < 0.01:
        return line + "; every trial scores below 1 %: the search is ranking noise, add validation anomalies (--k)"
    if close == len(front) and len(front) > 1:
        return line + "; the validation cannot separate the front: a cheaper trial is as good a choice"
    return line


def _trial_number(choice: str | int) -> int:
    try:
        number = int(choice)
    except ValueError:
        raise AutopatchError(f"--trial {choice!r} is neither a trial number nor 'best'") from None
    if number < 0:
        raise AutopatchError(f"--trial {number} must be a trial number >= 0 or 'best'")
    return number


def front_table(front: Sequence[FrozenTrial], label: str = "rwAP", metric: str = "rwap") -> str:
    """Plain-text table of trials (trial, GFLOPs, the measured batch-1 latency in ms when the trials have one, the
    objective `metric` under `label` with its bootstrap standard error, validation image AUROC, architecture;
    `*` marks a default architecture) for the terminal; '-' for what a trial from before autopatch stored it
    lacks."""
    width = max(6, len(label))
    timed = any("latency_ms" in t.user_attrs for t in front)
    latency_head = f"  {'ms':>8}" if timed else ""
    lines = [f"{'trial':>5}  {'GFLOPs':>8}{latency_head}  {label:>{width}}  {'±SE':>6}  {'imgAUROC':>8}  architecture"]
    for trial in front:
        value = objectives(trial)[1]
        error, image = trial.user_attrs.get(metric + SE_SUFFIX), trial.user_attrs.get("image_auroc")
        latency = trial.user_attrs.get("latency_ms")
        error_text = "-" if error is None else f"{error:.4f}"
        image_text = "-" if image is None else f"{image:.4f}"
        latency_text = (f"  {'-' if latency is None else f'{latency:.1f}':>8}") if timed else ""
        architecture = trial.user_attrs.get("architecture", "?") + (" *" if trial.user_attrs.get(DEFAULT_ATTR) else "")
        lines.append(
            f"{trial.number:>5}  {trial_gflops(trial):>8.4f}{latency_text}  {value:>{width}.4f}  {error_text:>6}  "
            f"{image_text:>8}  {architecture}"
        )
    return "\n".join(lines)
