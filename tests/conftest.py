"""Shared fixtures: every test gets its own WGOPS_HOME and namespace, and stops what it starts.

Real components only: RabbitMQ at 127.0.0.1:5672, SQLite in the test's home, PostgreSQL at
127.0.0.1:5432 (database ``test``; each test gets its own schema-free database copy by name).
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.cluster import Cluster
    from wgops.store.db import Store

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = os.environ.get("WGOPS_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def _pg_available() -> bool:
    try:
        import psycopg2

        psycopg2.connect(PG_ADMIN_URL, connect_timeout=3).close()
        return True
    except Exception:  # noqa: BLE001 - reported as a skip reason below
        return False


@pytest.fixture
def namespace() -> str:
    from tests.broker_cleanup import USED

    ns = "t" + uuid.uuid4().hex[:10]
    USED.add(ns)
    return ns


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Delete the broker queues of every namespace this session used."""
    from tests.broker_cleanup import USED, purge, remember

    purge(USED)
    remember(USED)


@pytest.fixture
def wgops_env(tmp_path: Path, namespace: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """An isolated installation: environment variables for subprocesses and this process."""
    home = tmp_path / "home"
    env = {
        "WGOPS_HOME": str(home),
        "WGOPS_NAMESPACE": namespace,
        "WGOPS_BROKER_URL": "amqp://guest:guest@127.0.0.1:5672/",
        "WGOPS_ALLOW": "wgops.examples.tasks:*,tests.tasks:*",
        "WGOPS_SHELL": "on",
        "WGOPS_HEARTBEAT": "0.5",
        "WGOPS_STALE_AFTER": "2.5",
        "WGOPS_GRACE": "5",
    }
    for key in [k for k in os.environ if k.startswith("WGOPS_")]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("PYTHONPATH", str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return {**os.environ, **env}


def _fresh_pg_database() -> str:
    import psycopg2

    name = "wgops_" + uuid.uuid4().hex[:12]
    conn = psycopg2.connect(PG_ADMIN_URL)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    return name


def _drop_pg_database(name: str) -> None:
    import psycopg2

    conn = psycopg2.connect(PG_ADMIN_URL)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    conn.close()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test, dropped afterwards."""
    if not _pg_available():
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not reachable at 127.0.0.1:5432")
        pytest.skip("PostgreSQL is not reachable at 127.0.0.1:5432")
    name = _fresh_pg_database()
    yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    _drop_pg_database(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Runs a test once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
    else:
        yield request.getfixturevalue("pg_url")


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    """A migrated store on ``db_url`` (both databases), connected on this thread."""
    from wgops.store.db import Store
    from wgops.store.migrations import migrate

    s = Store(db_url).connect()
    migrate(s)
    yield s
    s.close()


def wgops(*args: str, env: dict[str, str] | None = None, input: str | None = None,
          timeout: float = 60, check: bool = False) -> subprocess.CompletedProcess[str]:
    """Run the real ``wgops`` command line in a subprocess."""
    proc = subprocess.run([sys.executable, "-m", "wgops", *args], env=env, input=input,
                          capture_output=True, text=True, timeout=timeout, cwd=str(ROOT))
    if check and proc.returncode != 0:
        raise AssertionError(f"wgops {' '.join(args)} exited {proc.returncode}:\n"
                             f"{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture
def cluster(wgops_env: dict[str, str], tmp_path: Path) -> Iterator["Cluster"]:
    """An initialised installation; start daemons with ``cluster.scheduler()`` /
    ``cluster.worker()``; every process is stopped by PID at the end."""
    from tests.cluster import Cluster

    c = Cluster(wgops_env, tmp_path)
    c.cli("init")
    try:
        yield c
    finally:
        c.close()
