"""Where a study lives: resolve the user's storage choice to an Optuna storage that is safe for the worker count.

One SQLite file per study is the embedded default; parallel workers on one machine need Optuna's journal file
(SQLite locks under concurrent writers); many machines share one PostgreSQL (or MySQL) database. Every storage
gets a heartbeat, so a worker killed mid-trial leaves no trial RUNNING forever: the stale trial is failed and
retried. Any URL problem surfaces as one `AutopatchError` line with the password masked.
"""

from __future__ import annotations

import functools
import importlib.util
import inspect
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy.exc
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.storages.journal import JournalFileBackend

from autopatch.errors import AutopatchError, check_positive
from autopatch.search._interrupts import interrupts_held
from autopatch.search._optuna import HeartbeatJournalStorage, HeartbeatRDBStorage

JOURNAL_PREFIX = "journal:///"
# scheme -> the driver autopatch installs for it; driver -> (module it imports, pip package that provides it)
DEFAULT_DRIVERS = {"postgresql": "psycopg2"}
SQLALCHEMY_DEFAULT_DRIVERS = {"postgresql": "psycopg", "mysql": "mysqldb", "sqlite": "pysqlite"}
DRIVERS = {
    "psycopg2": ("psycopg2", "psycopg2-binary"),
    "psycopg": ("psycopg", "psycopg[binary]"),
    "pg8000": ("pg8000", "pg8000"),
    "mysqldb": ("MySQLdb", "mysqlclient"),
    "pymysql": ("pymysql", "PyMySQL"),
    "pysqlite": ("sqlite3", "pysqlite3"),
}
RDB_CREATE_ATTEMPTS = 5
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
    check_positive("--workers", workers)
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
        except AutopatchError:
            raise
        except Exception as error:  # driver, network, auth, not-a-study-file: each is one user problem
            raise AutopatchError(f"cannot open storage {mask_password(url)}: {_first_line(error)}") from error


def with_driver(url: str) -> str:
    """`url` with the database driver autopatch installs made explicit: `postgresql://` means psycopg2
    (SQLAlchemy 2.1 would pick psycopg 3, which is not a dependency). Other URLs are returned unchanged."""
    head, sep, rest = url.partition("://")
    if sep and head.lower() in DEFAULT_DRIVERS:
        return f"{head}+{DEFAULT_DRIVERS[head.lower()]}://{rest}"
    return url


def check_driver(url: str) -> None:
    """One line naming the pip package when the URL's driver is not installed (SQLAlchemy's own error names
    none)."""
    head = url.partition("://")[0].lower()
    scheme, _, driver = head.partition("+")
    driver = driver or SQLALCHEMY_DEFAULT_DRIVERS.get(scheme, "")
    module, package = DRIVERS.get(driver, (driver, driver))
    if module and importlib.util.find_spec(module) is None:
        raise AutopatchError(
            f"storage {mask_password(url)} needs the {driver} driver, which is not installed; "
            f"run `pip install {package}`"
        )


def _open(url: str, scheme: str, heartbeat: Heartbeat) -> optuna.storages.BaseStorage:
    retry = RetryHeartbeatStaleTrialCallback(max_retry=heartbeat.max_retry)
    if scheme == "journal":
        backend = _WholeAppendsBackend(url.partition(":///")[2])
        return HeartbeatJournalStorage(backend, heartbeat.interval_s, heartbeat.grace_period_s, retry)
    url = with_driver(url)
    check_driver(url)
    engine_kwargs: dict[str, Any] = {}
    if scheme == "postgresql":
        engine_kwargs["connect_args"] = {"connect_timeout": 10}
    for attempt in range(RDB_CREATE_ATTEMPTS):
        try:
            return _WholeCallsRDBStorage(
                url,
                engine_kwargs=engine_kwargs,
                heartbeat_interval=heartbeat.interval_s,
                grace_period=heartbeat.grace_period_s,
                heartbeat_stale_trial_callback=retry,
            )
        except sqlalchemy.exc.DatabaseError as error:
            # processes starting at once on a fresh database race to create Optuna's tables (PostgreSQL:
            # UniqueViolation on pg_type; SQLite: "table ... already exists" or "database is locked"); the
            # loser finds them made when it tries again. Anything else (a refused connection) fails at once.
            if attempt == RDB_CREATE_ATTEMPTS - 1 or not _creation_race(error):
                raise
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")


class _WholeAppendsBackend(JournalFileBackend):
    """The journal file, whose appends a Ctrl-C never cuts: Optuna's file lock, interrupted between its rename
    and unlink, fails with FileNotFoundError instead of KeyboardInterrupt and leaves the lock behind. A Ctrl-C
    that arrives during an append acts when the append has finished."""

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        with interrupts_held():
            super().append_logs(logs)


class _WholeCallsRDBStorage(HeartbeatRDBStorage):
    """The database storage (SQLite, PostgreSQL), whose calls a Ctrl-C never cuts: a call interrupted inside its
    session loses its write, or holds the write lock until the session is cleaned up (CI once saw the write that
    records the stopped trial fail with SQLite's "database is locked" instead of the search stopping with its one
    line). A Ctrl-C that arrives during a call acts when the call has finished. Every public method is wrapped
    below."""


def _held(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        with interrupts_held():
            return method(*args, **kwargs)

    return call


for _name, _method in inspect.getmembers(HeartbeatRDBStorage, inspect.isfunction):
    if not _name.startswith("_"):
        setattr(_WholeCallsRDBStorage, _name, _held(_method))


def _creation_race(error: sqlalchemy.exc.DatabaseError) -> bool:
    if isinstance(error, (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError)):
        return True
    text = str(error)
    return "already exists" in text or "database is locked" in text


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
