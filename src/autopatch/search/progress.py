"""The progress bar of a search run, fed by the calling worker's loop with the study's trials."""

from __future__ import annotations

from collections.abc import Sequence

from optuna.trial import FrozenTrial, TrialState
from tqdm.auto import tqdm

from autopatch.search.pareto import pareto_front


class SearchProgress:
    """tqdm bar over COMPLETE trials with best rwAP so far and Pareto front size. The bar starts at the trials
    a resumed study already holds, so its ETA comes from this run's pace only."""

    def __init__(self, total: int, enabled: bool = True) -> None:
        self.total = total
        self.enabled = enabled
        self.bar: tqdm | None = None

    def update(self, trials: Sequence[FrozenTrial]) -> None:
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        done = min(len(complete), self.total)
        if self.bar is None:
            self.bar = tqdm(total=self.total, initial=done, desc="search", unit="trial", disable=not self.enabled)
        elif done > self.bar.n:
            self.bar.update(done - self.bar.n)
        best = max((t.values[1] for t in complete), default=float("nan"))
        failed = sum(t.state == TrialState.FAIL for t in trials)
        self.bar.set_postfix(best_rwap=f"{best:.4f}", front=len(pareto_front(complete)), failed=failed)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
