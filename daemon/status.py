"""What runs and how it is doing: :func:`collect_status`, for ``wgops daemon status`` and the
console.

It never raises and stays fast: each part (arbiter, database, broker) is looked at on its own,
with short timeouts, and a part that cannot be reached is reported with ``ok: false`` and an
``error`` line. URLs are always masked.

The result holds the DESIGN §6 document (``broker``, ``database``, ``schedulers``, ``workers``,
``queues``) plus extra keys: ``arbiter`` (circus, with its watchers), ``home``, ``namespace``,
``ts``, and per daemon ``host``, ``state`` (running | stopping | stopped | flapping),
``managed`` (run by this installation's arbiter), ``heartbeat_age``, ``uptime``,
``cpu_percent``, ``memory`` (resident bytes; the last three only for daemons on this host).
:func:`contract` strips it down to the DESIGN keys.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import psutil

from store.config import Settings, mask_url

logger = logging.getLogger(__name__)
T = TypeVar("T")

RECENT = 60.0            # a daemon that stopped heartbeating stays listed this long
BROKER_TIMEOUT = 2.0
DAEMON_KEYS = {"schedulers": ("id", "pid", "alive", "graphs"),
               "workers": ("id", "pid", "alive", "slots", "busy", "pools")}
_procs: dict[int, psutil.Process] = {}       # kept so cpu_percent measures between two calls
_procs_lock = threading.Lock()


def collect_status(settings: Settings, broker_timeout: float = BROKER_TIMEOUT,
                   queues: bool = True) -> dict[str, Any]:
    """The status of an installation; never raises.

    ``queues=False`` skips the broker (no connection is opened: ``broker.ok`` is None and
    ``queues`` empty), for a caller that reads queue depths its own way (the console)."""
    from daemon.supervisor import HOST

    status: dict[str, Any] = {
        "broker": {"url": mask_url(settings.broker_url), "ok": False, "error": None},
        "database": {"url": mask_url(settings.db_url), "ok": False, "error": None},
        "schedulers": [], "workers": [], "queues": [],
        "arbiter": _arbiter(settings),
        "home": str(settings.home), "namespace": settings.namespace, "host": HOST,
        "ts": time.time(),
    }
    pools = {"default"}
    try:
        rows, table_pools = _daemon_rows(settings)
        status["database"]["ok"] = True
        pools |= table_pools
        _fill_daemons(status, settings, rows)
        for worker in status["workers"]:
            if worker["alive"]:
                pools.update(worker["pools"])
    except Exception as exc:  # noqa: BLE001 - status reports, it never raises
        logger.debug("status: database", exc_info=True)
        status["database"]["error"] = _one_line(exc)
        status["database"]["ok"] = isinstance(exc, NoSchema)
    if not queues:
        status["broker"].update(ok=None, error="not checked")
        return status
    try:
        with quiet_amqp():
            status["queues"] = run_coroutine(_queues(settings, sorted(pools), broker_timeout))
        status["broker"]["ok"] = True
    except Exception as exc:  # noqa: BLE001 - status reports, it never raises
        logger.debug("status: broker", exc_info=True)
        status["broker"]["error"] = _one_line(exc)
    return status


def contract(status: dict[str, Any]) -> dict[str, Any]:
    """Only the keys DESIGN §6 fixes for ``wgops daemon status --json``."""
    out: dict[str, Any] = {
        "broker": {k: status["broker"][k] for k in ("url", "ok")},
        "database": {k: status["database"][k] for k in ("url", "ok")},
    }
    for group, keys in DAEMON_KEYS.items():
        out[group] = [{k: d[k] for k in keys} for d in status[group]]
    out["queues"] = [{k: q[k] for k in ("name", "messages", "consumers")}
                     for q in status["queues"]]
    return out


# -- arbiter -------------------------------------------------------------------------------


def _arbiter(settings: Settings) -> dict[str, Any]:
    from daemon.supervisor import Supervisor

    sup = Supervisor(settings)
    info: dict[str, Any] = {"running": False, "pid": None, "endpoint": None, "watchers": {},
                            "error": None}
    try:
        proc = sup.process()
        if proc is None:
            info["error"] = f"no arbiter running for {settings.home}"
            return info
        info.update(running=True, pid=proc.pid, endpoint=sup.layout.endpoint())
        for name, w in sup.watchers(timeout=1.0).items():
            info["watchers"][name] = {"status": w.status, "state": w.state,
                                      "numprocesses": w.numprocesses, "pids": w.pids}
    except Exception as exc:  # noqa: BLE001 - status reports, it never raises
        logger.debug("status: arbiter", exc_info=True)
        info["error"] = _one_line(exc)
    return info


# -- database ------------------------------------------------------------------------------


class NoSchema(Exception):
    """The database answers but holds no wgops tables."""


@contextlib.contextmanager
def db_session(settings: Settings) -> Iterator[None]:
    """A connection to the installation's database for the current thread.

    Reuses the process's database when one is already set up (the console, a command that
    opened the store), so the global proxy is never switched under another thread; otherwise
    opens the store. An SQLite file that does not exist is not created."""
    import peewee

    from store.db import Store, database
    from store.errors import Unreachable

    parts = urlsplit(settings.db_url)
    if parts.scheme == "sqlite":
        path = unquote(parts.path)
        path = path[1:] if path.startswith("//") else path
        if not Path(path).exists():
            raise Unreachable(f"no database at {path} (run wgops init)")
    db = database.obj
    if db is None:
        db = Store(settings.db_url).db
    was_closed = db.is_closed()
    try:
        db.connect(reuse_if_open=True)
    except peewee.OperationalError as exc:
        raise Unreachable(f"database {mask_url(settings.db_url)} unreachable: "
                          f"{_one_line(exc)}") from None
    try:
        yield
    finally:
        if was_closed and not db.is_closed():
            db.close()


def _daemon_rows(settings: Settings) -> tuple[dict[str, list[Any]], set[str]]:
    import peewee
    from peewee import fn

    from store.models import GRAPH_ACTIVE, Graph, Pool, Scheduler, Worker

    since = time.time() - RECENT
    with db_session(settings):
        try:
            rows: dict[str, list[Any]] = {}
            for group, model in (("schedulers", Scheduler), ("workers", Worker)):
                rows[group] = list(model.select().where(
                    model.state.not_in(("stopped", "dead")), model.heartbeat >= since)
                    .order_by(model.started))
            ids = [r.id for r in rows["schedulers"]]
            counts = dict(Graph.select(Graph.scheduler, fn.COUNT(Graph.id)).where(
                Graph.scheduler.in_(ids), Graph.state.in_(GRAPH_ACTIVE))
                .group_by(Graph.scheduler).tuples()) if ids else {}
            for row in rows["schedulers"]:
                row.active_graphs = counts.get(row.id, 0)
            pools = {p.name for p in Pool.select(Pool.name)}
        except (peewee.OperationalError, peewee.ProgrammingError) as exc:
            if "no such table" in str(exc) or "does not exist" in str(exc):
                raise NoSchema("no wgops tables in the database (run wgops init)") from None
            raise
    return rows, pools


def _fill_daemons(status: dict[str, Any], settings: Settings,
                  rows: dict[str, list[Any]]) -> None:
    from daemon.supervisor import HOST

    now = time.time()
    watchers = status["arbiter"]["watchers"]
    for group, kind in (("schedulers", "scheduler"), ("workers", "worker")):
        watcher = watchers.get(kind, {})
        managed = set(watcher.get("pids", ()))
        for row in rows[group]:
            local = row.host == HOST
            proc = _process(row.pid, row.started) if local else None
            fresh = now - row.heartbeat <= settings.stale_after
            alive = fresh and row.state in ("running", "stopping") and (
                proc is not None or not local)
            if alive:
                state = row.state
            else:
                state = "flapping" if watcher.get("state") == "flapping" else "stopped"
            item: dict[str, Any] = {"id": row.id, "pid": row.pid, "alive": alive}
            if kind == "scheduler":
                item["graphs"] = row.active_graphs
            else:
                item.update(slots=row.slots, busy=row.busy, pools=_pools(row.pools))
            item.update(host=row.host, state=state, managed=local and row.pid in managed,
                        started=row.started, heartbeat_age=round(now - row.heartbeat, 3),
                        **_usage(proc, now))
            status[group].append(item)


def _pools(text: str | None) -> list[str]:
    try:
        value = json.loads(text or "[]")
        return [str(p) for p in value] if isinstance(value, list) else []
    except ValueError:
        return []


def _process(pid: int, started: float) -> psutil.Process | None:
    """The live process ``pid`` if it is the daemon that started at ``started``."""
    with _procs_lock:
        proc = _procs.get(pid)
        try:
            if proc is None or not proc.is_running():
                proc = psutil.Process(pid)
                _procs[pid] = proc
            if proc.status() == psutil.STATUS_ZOMBIE or proc.create_time() > started + 5:
                return None
            return proc
        except psutil.Error:
            _procs.pop(pid, None)
            return None


def _usage(proc: psutil.Process | None, now: float) -> dict[str, Any]:
    if proc is None:
        return {"uptime": None, "cpu_percent": None, "memory": None}
    try:
        with proc.oneshot():
            return {"uptime": round(now - proc.create_time(), 3),
                    "cpu_percent": proc.cpu_percent(interval=None),
                    "memory": proc.memory_info().rss}
    except psutil.Error:
        return {"uptime": None, "cpu_percent": None, "memory": None}


# -- broker --------------------------------------------------------------------------------


async def _queues(settings: Settings, pools: list[str], timeout: float) -> list[dict[str, Any]]:
    from daemon.broker import Broker
    from daemon.protocol import Names
    from daemon.supervisor import HOST

    names = Names(settings.namespace)
    broker = Broker(settings, name=f"wgops-status@{HOST}")
    await asyncio.wait_for(broker.connect(timeout=timeout), timeout + 1)
    try:
        wanted = [names.graphs, names.dead, *(names.tasks(p) for p in pools)]
        depths = await asyncio.wait_for(
            asyncio.gather(*(broker.depth(n) for n in wanted)), timeout + 1)
    finally:
        await broker.close()
    return [{"name": n, "messages": d[0], "consumers": d[1]}
            for n, d in zip(wanted, depths) if d is not None]


@contextlib.contextmanager
def quiet_amqp() -> Iterator[None]:
    """Silence aiormq/aio-pika while probing: an unreachable broker is reported once, by us."""
    loggers = [logging.getLogger(name) for name in ("aiormq", "aio_pika")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def run_coroutine(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to the end from synchronous code, even on a thread whose loop runs."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    result: list[T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(coro))
        except BaseException as exc:  # noqa: BLE001 - handed back to the caller
            error.append(exc)

    thread = threading.Thread(target=target, name="wgops-status")
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


__all__ = ["collect_status", "contract", "db_session", "quiet_amqp", "run_coroutine"]
