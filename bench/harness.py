"""A throw-away wgops installation for one scenario: its own namespace, home and database,
real scheduler and worker daemons as subprocesses, and fast in-process submission.

Everything started here is stopped here by PID (SIGTERM, then SIGKILL); the namespace's
queues and the PostgreSQL database are deleted at the end. Waits poll a condition with a
deadline, never a fixed sleep.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = os.environ.get("WGOPS_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
BROKER_URL = os.environ.get("WGOPS_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/")


class BenchError(Exception):
    """A scenario could not run (a daemon died, a deadline passed)."""


def _service_errors() -> tuple[type[BaseException], ...]:
    import aiormq
    import peewee

    from wgops.store.errors import Unreachable

    return (ConnectionError, OSError, aiormq.exceptions.AMQPError, Unreachable,
            peewee.OperationalError, peewee.InterfaceError)


# the broker or the database went away under a scenario (another user restarting them)
SERVICE_ERRORS = _service_errors()


def wait_broker(timeout: float) -> bool:
    """Wait until the broker's port accepts connections again."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(BROKER_URL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 5672),
                                     2).close()
            time.sleep(2)          # the port opens a moment before the broker serves
            return True
        except OSError:
            time.sleep(1)
    return False


def wait_for(condition: Callable[[], Any], timeout: float, what: str,
             interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def pg_available() -> str | None:
    """None when PostgreSQL answers, else the reason it cannot be used."""
    try:
        import psycopg2

        psycopg2.connect(PG_ADMIN_URL, connect_timeout=3).close()
        return None
    except Exception as exc:  # noqa: BLE001 - reported as the reason
        return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _pg_admin(sql: str) -> None:
    import psycopg2

    conn = psycopg2.connect(PG_ADMIN_URL)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
    finally:
        conn.close()


def _listed_queues() -> list[str]:
    """Every queue on the broker (``rabbitmqctl``; none where it is not installed): the
    daemons' own inboxes, ``{ns}.scheduler.{id}`` and ``{ns}.worker.{id}``, have names of
    their processes, which a daemon killed at the end cannot delete itself."""
    if shutil.which("rabbitmqctl") is None:
        return []
    try:
        out = subprocess.run(["rabbitmqctl", "list_queues", "name", "-q", "--no-table-headers"],
                             capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [n.strip() for n in out.stdout.splitlines() if n.strip()] \
        if out.returncode == 0 else []


class Installation:
    """One isolated wgops installation on ``db`` ("sqlite" or "postgres")."""

    def __init__(self, db: str, heartbeat: float = 1.0):
        self.kind = db
        self.namespace = "bench" + uuid.uuid4().hex[:8]
        self.tmp = Path(tempfile.mkdtemp(prefix="wgops-bench-"))
        self.home = self.tmp / "home"
        self.home.mkdir()
        self.pg_name: str | None = None
        if db == "postgres":
            self.pg_name = "wgops_bench_" + uuid.uuid4().hex[:10]
            _pg_admin(f'CREATE DATABASE "{self.pg_name}"')
            base = PG_ADMIN_URL.rsplit("/", 1)[0]
            self.db_url = f"{base}/{self.pg_name}"
        else:
            self.db_url = f"sqlite:///{self.home / 'wgops.db'}"
        self.env = {
            **{k: v for k, v in os.environ.items()
               if not k.startswith("WGOPS_") or k == "WGOPS_EVENT_LOOP"},
            "WGOPS_HOME": str(self.home),
            "WGOPS_NAMESPACE": self.namespace,
            "WGOPS_DB_URL": self.db_url,
            "WGOPS_BROKER_URL": BROKER_URL,
            "WGOPS_ALLOW": "wgops.examples.tasks:*,bench.tasks:*",
            "WGOPS_SHELL": "off",
            "WGOPS_HEARTBEAT": str(heartbeat),
            "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        }
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logs: dict[int, Path] = {}
        self._store: Any = None
        self._pools: set[str] = set()
        self.exporter_port = 0

    # -- settings and the store (in this process) ---------------------------------------------

    def settings(self) -> Any:
        from wgops.store.config import Settings

        return Settings.load(env=self.env)

    def store(self) -> Any:
        """This process's connection to the installation's database (migrated)."""
        if self._store is None:
            from wgops.store.db import Store
            from wgops.store.migrations import migrate

            self._store = Store(self.db_url).connect()
            migrate(self._store)
        return self._store

    def db(self, fn: Callable[[], Any]) -> Any:
        store = self.store()
        store.connect()
        return fn()

    # -- daemons ---------------------------------------------------------------------------------

    def _spawn(self, args: list[str]) -> subprocess.Popen[bytes]:
        log = self.tmp / f"daemon-{len(self.procs)}.log"
        with open(log, "wb") as fh:
            proc = subprocess.Popen([sys.executable, "-m", "wgops", *args], env=self.env,
                                    stdout=fh, stderr=subprocess.STDOUT, cwd=str(ROOT))
        self.procs.append(proc)
        self.logs[proc.pid] = log
        return proc

    def spawn(self, args: list[str]) -> subprocess.Popen[bytes]:
        """Any ``wgops`` command as a process of this installation (stopped with it)."""
        return self._spawn(args)

    def cli(self, *args: str) -> str:
        """A ``wgops`` command of this installation, to its end (its output; failure raises)."""
        proc = subprocess.run([sys.executable, "-m", "wgops", *args], env=self.env,
                              capture_output=True, text=True, timeout=120, cwd=str(ROOT))
        if proc.returncode != 0:
            raise BenchError(f"wgops {' '.join(args)}: {proc.stderr.strip()[-500:]}")
        return proc.stdout

    def scheduler(self) -> subprocess.Popen[bytes]:
        return self._spawn(["daemon", "run", "scheduler"])

    def worker(self, slots: int, pools: tuple[str, ...] = ()) -> subprocess.Popen[bytes]:
        args = ["daemon", "run", "worker", "--slots", str(slots)]
        for pool in pools:
            args += ["--pool", pool]
        return self._spawn(args)

    def wait_up(self, timeout: float = 60) -> None:
        """Every daemon started so far has announced itself in the database."""
        from wgops.store.models import Scheduler, Worker

        def up() -> bool:
            for proc in self.procs:
                if proc.poll() is not None:
                    raise BenchError(f"daemon {proc.pid} exited {proc.returncode}:\n"
                                     f"{self.log(proc.pid)}")
            pids = {p.pid for p in self.procs}
            seen = self.db(lambda: {r.pid for r in Scheduler.select(Scheduler.pid).where(
                Scheduler.state == "running")} | {r.pid for r in Worker.select(Worker.pid).where(
                    Worker.state == "running")})
            return pids <= seen
        wait_for(up, timeout, "daemons to start", 0.1)

    def check_alive(self) -> None:
        for proc in self.procs:
            if proc.poll() is not None:
                raise BenchError(f"daemon {proc.pid} exited {proc.returncode}:\n"
                                 f"{self.log(proc.pid)}")

    def log(self, pid: int) -> str:
        return self.logs[pid].read_text(errors="replace")[-3000:]

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                try:
                    for child in psutil.Process(proc.pid).children(recursive=True):
                        child.kill()
                except psutil.NoSuchProcess:
                    pass
                proc.kill()
                proc.wait(10)
        if self._store is not None:
            self._store.close()
            self._store = None
        try:
            asyncio.run(self._delete_topology())
        except Exception:  # noqa: BLE001 - best effort: leftovers only cost broker memory
            pass
        if self.pg_name:
            try:
                _pg_admin(f'DROP DATABASE IF EXISTS "{self.pg_name}" WITH (FORCE)')
            except Exception:  # noqa: BLE001 - best effort
                pass
        shutil.rmtree(self.tmp, ignore_errors=True)

    async def _delete_topology(self) -> None:
        import aio_pika

        ns = self.namespace
        names = [f"{ns}.graphs", f"{ns}.dead", f"{ns}.tasks.default"] + \
            [f"{ns}.tasks.{p}" for p in self._pools]
        names += [q for q in _listed_queues() if q.startswith(f"{ns}.") and q not in names]
        conn = await aio_pika.connect(BROKER_URL)
        try:
            for name in names:
                channel = await conn.channel()
                try:
                    await channel.queue_delete(name)
                except Exception:  # noqa: BLE001 - it may not exist
                    pass
                if not channel.is_closed:
                    await channel.close()
            channel = await conn.channel()
            try:
                await channel.exchange_delete(f"{ns}.events")
            except Exception:  # noqa: BLE001
                pass
        finally:
            await conn.close()

    def use_pool(self, name: str) -> None:
        self._pools.add(name)

    # -- submission ---------------------------------------------------------------------------

    def submit(self, docs: list[dict[str, Any]]) -> tuple[list[int], float]:
        """Store every document in one transaction, then publish their launches pipelined.

        Returns (graph ids, time.time() just before the insert)."""
        return asyncio.run(self._submit(docs))

    async def _submit(self, docs: list[dict[str, Any]]) -> tuple[list[int], float]:
        from wgops.daemon.broker import Broker
        from wgops.daemon.protocol import LaunchGraph
        from wgops.store.document import normalise
        from wgops.store.graphs import create_graph

        normal = [normalise(doc, doc["name"]) for doc in docs]
        broker = await Broker(self.settings(), "wgops-bench-submit").connect()
        try:
            await broker.ensure(broker.names.graphs)
            store = self.store()
            t0 = time.time()

            def insert() -> list[tuple[int, int]]:
                store.connect()
                with store.write():
                    return [(g.id, g.priority) for g in (create_graph(d) for d in normal)]
            rows = await asyncio.to_thread(insert)
            await broker.publish_many([(broker.names.graphs, LaunchGraph(graph=gid), prio, None)
                                       for gid, prio in rows])
        finally:
            await broker.close()
        return [gid for gid, _ in rows], t0

    # -- waiting and reading --------------------------------------------------------------------

    def wait_graphs(self, ids: list[int], timeout: float) -> None:
        """Every graph in ``ids`` is finished (a failed or killed one is an error)."""
        from wgops.store.models import Graph

        wanted = set(ids)

        def done() -> bool:
            self.check_alive()
            rows = self.db(lambda: list(Graph.select(Graph.id, Graph.state).where(
                Graph.id.in_(list(wanted)), Graph.state.in_(("finished", "failed", "killed")))
                .tuples()))
            bad = [(gid, state) for gid, state in rows if state != "finished"]
            if bad:
                raise BenchError(f"graph {bad[0][0]} ended {bad[0][1]}")
            return len(rows) == len(wanted)
        wait_for(done, timeout, f"{len(ids)} graphs to finish", 0.05)

    def graph_times(self, ids: list[int]) -> list[tuple[float | None, float | None]]:
        from wgops.store.models import Graph

        return self.db(lambda: list(Graph.select(Graph.started, Graph.finished).where(
            Graph.id.in_(ids)).tuples()))

    def task_times(self, graph_id: int) -> dict[str, tuple[float, float]]:
        from wgops.store.models import Task

        return {name: (started, finished) for name, started, finished in self.db(
            lambda: list(Task.select(Task.name, Task.started, Task.finished).where(
                Task.graph == graph_id).tuples()))}

    def pid_of(self, kind: str) -> int:
        for proc in self.procs:
            if isinstance(proc.args, list) and proc.args[5:6] == [kind]:
                return proc.pid
        raise BenchError(f"no {kind} started")
