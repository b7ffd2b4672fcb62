"""Fixtures of the end-to-end tests: a throw-away PostgreSQL cluster on 127.0.0.1 and fresh databases in it.

initdb/pg_ctl run as an unprivileged user (PostgreSQL refuses to run as root, which is how CI runs).
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy


def postgres_tool(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None)
    if found is None:
        pytest.fail(f"{name} not found: install the Debian package 'postgresql' (.ci/run does) to run these tests")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """URL of a fresh cluster owned by an unprivileged user, stopped and deleted after the session."""
    run_as: list[str] = []
    base = Path(tempfile.mkdtemp(prefix="autopatch-pg-"))
    if os.geteuid() == 0:
        user = next((u for u in ("postgres", "nobody") if _user_exists(u)), None)
        if user is None:
            pytest.fail("running as root needs a 'postgres' or 'nobody' user to start PostgreSQL")
        entry = pwd.getpwnam(user)
        os.chown(base, entry.pw_uid, entry.pw_gid)
        run_as = ["runuser", "-u", user, "--"]
    data, socket_dir, port = base / "data", base / "socket", free_port()
    subprocess.run([*run_as, "mkdir", str(socket_dir)], check=True)
    subprocess.run(
        [*run_as, postgres_tool("initdb"), "-D", str(data), "-U", "autopatch", "-A", "trust", "--no-sync", "-E", "UTF8",
         "--locale=C"],
        check=True, capture_output=True,
    )
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {socket_dir} -c fsync=off -c max_connections=50"
    pg_ctl = postgres_tool("pg_ctl")
    subprocess.run([*run_as, pg_ctl, "-D", str(data), "-o", options, "-l", str(base / "log"), "-w", "start"],
                   check=True, capture_output=True)
    try:
        yield f"postgresql+psycopg2://autopatch@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*run_as, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


_databases = itertools.count()


@pytest.fixture
def fresh_postgres_url(postgres_url: str) -> str:
    """A new, empty database in the session's cluster, as the README's `postgresql://` URL (no driver)."""
    name = f"fresh{next(_databases)}"
    engine = sqlalchemy.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(sqlalchemy.text(f"CREATE DATABASE {name}"))
    engine.dispose()
    return postgres_url.replace("postgresql+psycopg2://", "postgresql://").rsplit("/", 1)[0] + f"/{name}"
