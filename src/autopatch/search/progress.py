"""The progress of a search run, fed by the calling worker's loop with the study's trials.

On a terminal: a tqdm bar over COMPLETE trials with best rwAP so far and Pareto front size; the bar starts at
the trials a resumed study already holds, so its ETA comes from this run's pace only. Into a log file (stderr
not a terminal): one plain line per tenth of the trials or per minute, whichever comes first. In both, a run
whose last slots are taken by running trials says so: one of them may belong to a stopped worker, and
is retried only once its heartbeat has been silent for the grace period.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from typing import TextIO

from optuna.trial import FrozenTrial, TrialState
from tqdm.auto import tqdm

from autopatch.search.pareto import pareto_front

LOG_EVERY_S = 60.0


class SearchProgress:
    """What a search run shows while it runs (see the module docstring); `update` gets the study's trials."""

    def __init__(
        self,
        total: int,
        enabled: bool = True,
        grace_s: float = 60.0,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
        label: str = "rwAP",
    ) -> None:
        self.total = total
        self.label = label
        self.enabled = enabled
        self.grace_s = grace_s
        self.stream = stream if stream is not None else sys.stderr
        self.clock = clock
        self.bar: tqdm | None = None
        self._logged: tuple[int, float] | None = None  # (complete, time) of the last plain line
        self._waiting_said = False

    @property
    def _terminal(self) -> bool:
        return bool(getattr(self.stream, "isatty", lambda: False)())

    def update(self, trials: Sequence[FrozenTrial]) -> None:
        if not self.enabled:
            return
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        done = min(len(complete), self.total)
        best = max((t.values[1] for t in complete), default=float("nan"))
        failed = sum(t.state == TrialState.FAIL for t in trials)
        running = sum(t.state == TrialState.RUNNING for t in trials)
        front = len(pareto_front(complete))
        waiting = done < self.total and done + running >= self.total and running > 0
        if self._terminal:
            self._draw(done, best, front, failed, waiting, running)
        else:
            self._log(done, best, front, failed)
        if waiting and not self._waiting_said and not self._terminal:
            print(f"search: {self._waiting(running)}", file=self.stream, flush=True)
        self._waiting_said = waiting

    def _draw(self, done: int, best: float, front: int, failed: int, waiting: bool, running: int) -> None:
        if self.bar is None:
            self.bar = tqdm(total=self.total, initial=done, desc="search", unit="trial", file=self.stream)
        elif done > self.bar.n:
            self.bar.update(done - self.bar.n)
        self.bar.set_description(f"search ({self._waiting(running)})" if waiting else "search")
        self.bar.set_postfix({f"best {self.label}": f"{best:.4f}", "front": front, "failed": failed})

    def _log(self, done: int, best: float, front: int, failed: int) -> None:
        now = self.clock()
        if self._logged is not None:
            last_done, last_time = self._logged
            due = done != last_done and (done - last_done >= max(1, self.total // 10) or done == self.total)
            if not due and now - last_time < LOG_EVERY_S:
                return
        self._logged = (done, now)
        print(f"search: {done}/{self.total} complete, best {self.label} {best:.4f}, front {front}, failed {failed}",
              file=self.stream, flush=True)  # fmt: skip

    def _waiting(self, running: int) -> str:
        return (
            f"waiting for {running} running trial{'s' if running > 1 else ''}; one whose worker was stopped is "
            f"retried {self.grace_s:g} s after its last heartbeat"
        )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
