"""The search never repeats work and never mixes data, run as users run it: the CLI on the bundled toy data.

Each test is one of the repro commands of the search-integrity issue: a run resumed after SIGKILL with more
trials, three processes started at once on one fresh PostgreSQL database (the README's `postgresql://` URL),
and a resume on another copy of the data.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import sqlalchemy.exc
from optuna.trial import TrialState
from PIL import Image

from autopatch.cli.main import main
from autopatch.errors import AutopatchError
from autopatch.search.definition import REUSES_ATTR
from autopatch.search.storage import open_storage

TOY = Path(__file__).resolve().parents[2] / "examples" / "data" / "hazelnut_toy"
SEARCH = ["--category", "hazelnut_toy", "--image-size", "64", "--bank-fraction", "0.5", "--device", "cpu"]
pytestmark = pytest.mark.slow


def open_storage_study(url: str, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=open_storage(url, create=False))


def complete_trials(url: str, name: str) -> list[optuna.trial.FrozenTrial]:
    return [t for t in open_storage_study(url, name).get_trials() if t.state == TrialState.COMPLETE]


def complete_so_far(url: str, name: str) -> list[optuna.trial.FrozenTrial]:
    """Like complete_trials while another process may still be creating the tables or the study in the file."""
    try:
        return complete_trials(url, name)
    except (KeyError, sqlalchemy.exc.OperationalError, AutopatchError):
        return []


def architectures(trials: list[optuna.trial.FrozenTrial]) -> list[str]:
    return [t.user_attrs["architecture"] for t in trials]


def autopatch_process(*args: str, new_session: bool = False) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "autopatch.cli.main", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
                            start_new_session=new_session)  # fmt: skip


def test_a_search_killed_and_resumed_with_more_trials_repeats_no_architecture(tmp_path):
    out, name = tmp_path / "s1", "hazelnut_toy-pretrained-k1-s0-syn16"
    url = f"sqlite:///{out / f'{name}.db'}"
    killed = autopatch_process("search", str(TOY), *SEARCH, "--trials", "40", "--out", str(out))  # never finishes
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and killed.poll() is None:
        if (out / f"{name}.db").is_file() and len(complete_so_far(url, name)) >= 3:
            break
        time.sleep(0.1)
    killed.send_signal(signal.SIGKILL)
    assert killed.wait() == -signal.SIGKILL, killed.stderr.read()[-2000:]
    before = complete_trials(url, name)
    assert 3 <= len(before) < 9

    assert main(["search", str(TOY), *SEARCH, "--trials", "9", "--out", str(out)]) == 0
    trials = complete_trials(url, name)
    assert len(trials) == 9
    # all nine are random start-up trials (TPE starts after 10): each a new architecture, none a copy
    assert len(set(architectures(trials))) == 9
    assert not [t.number for t in trials if REUSES_ATTR in t.user_attrs]


@pytest.mark.postgres
def test_three_processes_started_at_once_on_a_fresh_postgres_database_share_the_work(fresh_postgres_url, tmp_path):
    args = ["search", str(TOY), *SEARCH, "--trials", "9", "--study", "shared", "--storage", fresh_postgres_url]
    processes = [autopatch_process(*args) for _ in range(3)]
    results = [process.communicate(timeout=300) for process in processes]
    for process, (_, stderr) in zip(processes, results, strict=True):
        assert process.returncode == 0, stderr[-2000:]
    trials = complete_trials(fresh_postgres_url.replace("postgresql://", "postgresql+psycopg2://"), "shared")
    assert len(trials) == 9
    assert len(set(architectures(trials))) == 9  # three processes, one seed, no start-up trial evaluated twice


def test_a_resume_on_other_data_is_refused_and_a_moved_copy_is_accepted(tmp_path, capsys):
    first, moved, other = tmp_path / "first", tmp_path / "moved", tmp_path / "other"
    shutil.copytree(TOY, first)
    out = tmp_path / "runs"
    assert main(["search", str(first), *SEARCH, "--trials", "2", "--out", str(out)]) == 0

    shutil.copytree(first, moved)  # the same files elsewhere: the same study may go on there
    shutil.rmtree(first)
    assert main(["search", str(moved), *SEARCH, "--trials", "3", "--out", str(out)]) == 0

    shutil.copytree(moved, other)  # one training image re-encoded: other data
    image = other / "hazelnut_toy" / "train" / "good" / "020.png"
    Image.open(image).convert("RGB").save(image, format="PNG", compress_level=0)
    capsys.readouterr()
    assert main(["search", str(other), *SEARCH, "--trials", "4", "--out", str(out)]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("autopatch search: error:")]
    assert len(errors) == 1
    error = errors[0]
    assert str(first) in error and str(other) in error and "other files" in error
    name = "hazelnut_toy-pretrained-k1-s0-syn16"
    assert len(complete_trials(f"sqlite:///{out / f'{name}.db'}", name)) == 3  # nothing was added


@pytest.mark.parametrize("workers", [1, 2])
def test_ctrl_c_in_a_search_is_one_line_exit_130_and_leaves_no_trial_running(tmp_path, workers):
    out, name = tmp_path / "s", "hazelnut_toy-pretrained-k1-s0-syn16"
    suffix = "db" if workers == 1 else "journal"
    url = f"sqlite:///{out / f'{name}.db'}" if workers == 1 else f"journal:///{out / f'{name}.journal'}"
    args = ["search", str(TOY), *SEARCH, "--trials", "400", "--workers", str(workers), "--out", str(out)]
    search = autopatch_process(*args, new_session=True)  # its own process group, like a terminal's job
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not ((out / f"{name}.{suffix}").is_file() and
                                               len(complete_so_far(url, name)) >= 2):  # fmt: skip
        time.sleep(0.1)
    os.killpg(search.pid, signal.SIGINT)  # Ctrl-C reaches the caller and every worker
    _, stderr = search.communicate(timeout=120)
    assert search.returncode == 130 and "Traceback" not in stderr, stderr[-2000:]
    lines = [line for line in stderr.splitlines() if line.startswith("autopatch search:") and "warning:" not in line]
    kept = len(complete_trials(url, name))
    assert lines == [f"autopatch search: stopped: study '{name}' keeps its {kept} complete trials; "
                     "rerun the same command to resume"]  # fmt: skip
    states = [t.state for t in open_storage_study(url, name).get_trials()]
    assert TrialState.RUNNING not in states
