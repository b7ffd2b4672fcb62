"""Where a study lives: resolve the user's storage choice to an Optuna storage that is safe for the worker count.

One SQLite file per study is the embedded default; parallel workers on one machine need Optuna's journal file
(SQLite locks under concurrent writers); many machines share one PostgreSQL (or MySQL) database. Every storage
gets a heartbeat, so a worker killed mid-trial leaves no trial RUNNING forever: the stale trial is failed and
retried. Any URL problem surfaces as one `AutopatchError` line with the password masked.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages.journal import JournalFileBackend

from autopatch.errors import AutopatchError
from autopatch.search._optuna import HeartbeatJournalStorage

JOURNAL_PREFIX = "journal:///"
RDB_SCHEMES = ("sqlite", "postgresql", "mysql")
URL_HELP = "use sqlite:///runs/NAME.db, journal:///runs/NAME.journal or postgresql://USER:PASSWORD@HOST:PORT/DB"


@dataclass(frozen=True)
class Heartbeat:
    """How often a running trial proves it is alive, how long silence is tolerated, how often it is retried."""

    interval_s: int = 20
    grace_period_s: int = 60
    max_retry: int = 2


def default_storage_url(out_dir: str | Path, study_name: str, workers: int = 1) -> str:
    """SQLite file per study for one worker; the journal file when several processes write at once."""
    out = Path(out_dir)
    if workers > 1:
        return f"{JOURNAL_PREFIX}{out / f'{study_name}.journal'}"
    return f"sqlite:///{out / f'{study_name}.db'}"


def existing_default_storage_url(out_dir: str | Path, study_name: str) -> str:
    """The default file a search with this study name wrote (SQLite or journal); error when there is none."""
    out = Path(out_dir)
    for workers, suffix in ((1, ".db"), (2, ".journal")):
        if (out / f"{study_name}{suffix}").is_file():
            return default_storage_url(out, study_name, workers)
    raise AutopatchError(
        f"no study file {out / study_name}.db or .journal; run `autopatch search` first or pass --storage/--out"
    )


def mask_password(url: str) -> str:
    """The URL fit for an error message: `user:***@host` instead of the password."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    credentials, at, host = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***{at}{host}" if ":" in credentials else url


def url_scheme(url: str) -> str:
    """'sqlite', 'postgresql', 'mysql' or 'journal' (driver suffixes like +psycopg2 dropped); error otherwise."""
    if url.startswith(JOURNAL_PREFIX):
        return "journal"
    head, sep, _ = url.partition("://")
    scheme = head.split("+", 1)[0].lower()
    if not sep or scheme not in RDB_SCHEMES:
        raise AutopatchError(f"storage URL {mask_password(url)!r} is not one autopatch knows; {URL_HELP}")
    return scheme


def check_storage_for_workers(url: str, workers: int) -> None:
    """Refuse parallel SQLite: concurrent writers hit 'database is locked' and can lose finished trials."""
    if workers < 1:
        raise AutopatchError(f"--workers {workers} must be at least 1")
    if workers > 1 and url_scheme(url) == "sqlite":
        raise AutopatchError(
            f"--workers {workers} cannot share the SQLite storage {url!r}; drop --storage (a journal file is used) "
            "or pass a postgresql:// URL"
        )


def open_storage(url: str, heartbeat: Heartbeat = Heartbeat(), *, create: bool = True) -> optuna.storages.BaseStorage:
    """An Optuna storage for `url` with heartbeat and retry of stale trials; `create=False` never makes a file."""
    scheme = url_scheme(url)
    if scheme in ("journal", "sqlite"):
        _local_file(url.partition(":///")[2], url, create)
    with warnings.catch_warnings():  # heartbeat and retry are 'experimental' in Optuna: that is known here
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        try:
            return _open(url, scheme, heartbeat)
        except Exception as error:  # driver, network, auth, not-a-study-file: each is one user problem
            raise AutopatchError(f"cannot open storage {mask_password(url)}: {_first_line(error)}") from error


def _open(url: str, scheme: str, heartbeat: Heartbeat) -> optuna.storages.BaseStorage:
    retry = RetryHeartbeatStaleTrialCallback(max_retry=heartbeat.max_retry)
    if scheme == "journal":
        backend = JournalFileBackend(url.partition(":///")[2])
        return HeartbeatJournalStorage(backend, heartbeat.interval_s, heartbeat.grace_period_s, retry)
    engine_kwargs: dict[str, Any] = {}
    if scheme == "postgresql":
        engine_kwargs["connect_args"] = {"connect_timeout": 10}
    return RDBStorage(
        url,
        engine_kwargs=engine_kwargs,
        heartbeat_interval=heartbeat.interval_s,
        grace_period=heartbeat.grace_period_s,
        heartbeat_stale_trial_callback=retry,
    )


def _local_file(path_text: str, url: str, create: bool) -> None:
    """Storage file check: its folder must exist; without `create` the file itself must exist."""
    if not path_text or path_text == ":memory:":
        raise AutopatchError(f"storage URL {url!r} names no file; {URL_HELP}")
    path = Path(path_text)
    if not create and not path.is_file():
        raise AutopatchError(f"storage file {path} does not exist; check --storage or --out")
    if not path.parent.is_dir():
        raise AutopatchError(f"folder {path.parent} for storage {url!r} does not exist; create it or fix the URL")


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]
