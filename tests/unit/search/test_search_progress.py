"""What a search shows while it runs, into a log file: a line per tenth of the trials or per minute, and a
notice when the last slots wait for running trials (one may be a stopped worker's, retried after its grace)."""

import io

from optuna.trial import TrialState, create_trial

from autopatch.search.progress import SearchProgress


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def trials(complete: int, running: int = 0) -> list:
    done = [create_trial(values=[0.1 * i, 0.5 + 0.01 * i], state=TrialState.COMPLETE) for i in range(complete)]
    return done + [create_trial(state=TrialState.RUNNING) for _ in range(running)]


def test_a_log_file_gets_a_line_per_tenth_of_the_trials_or_per_minute():
    log, clock = io.StringIO(), Clock()
    progress = SearchProgress(20, stream=log, clock=clock)
    for complete in range(0, 7):
        progress.update(trials(complete))
        clock.now += 1.0
    progress.update(trials(6))
    clock.now += 61.0
    progress.update(trials(6))  # a minute without news: one more line
    lines = log.getvalue().splitlines()
    assert lines == [
        "search: 0/20 complete, best rwAP nan, front 0, failed 0",
        "search: 2/20 complete, best rwAP 0.5100, front 2, failed 0",
        "search: 4/20 complete, best rwAP 0.5300, front 4, failed 0",
        "search: 6/20 complete, best rwAP 0.5500, front 6, failed 0",
        "search: 6/20 complete, best rwAP 0.5500, front 6, failed 0",
    ]
    assert "\r" not in log.getvalue()


def test_waiting_for_the_last_running_trial_is_said_once_with_the_grace_period():
    log = io.StringIO()
    progress = SearchProgress(5, grace_s=60, stream=log, clock=Clock())
    progress.update(trials(4, running=1))
    progress.update(trials(4, running=1))
    notices = [line for line in log.getvalue().splitlines() if "waiting" in line]
    assert notices == ["search: waiting for 1 running trial; one whose worker was stopped is retried 60 s after "
                       "its last heartbeat"]  # fmt: skip


def test_disabled_progress_prints_nothing():
    log = io.StringIO()
    SearchProgress(5, enabled=False, stream=log).update(trials(5))
    assert log.getvalue() == ""
