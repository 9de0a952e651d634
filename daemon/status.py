"""What runs and how it is doing: :func:`collect_status`, for ``wgops daemon status`` and the
console.

It never raises and stays fast: each part (arbiter, database, broker) is looked at on its own,
with short timeouts, and a part that cannot be reached is reported with ``ok: false`` and an
``error`` line. URLs are always masked.

The result holds the DESIGN §6 document (``broker``, ``database``, ``schedulers``, ``workers``,
``queues``) plus extra keys: ``arbiter`` (circus, with its watchers), ``home``, ``namespace``,
``ts``, and per daemon ``host``, ``state`` (running | stopping | stopped | flapping),
``managed`` (run by this installation's arbiter), ``orphan`` (a live daemon of this host that
runs outside any arbiter: ``wgops daemon stop`` or ``start`` stops it), ``heartbeat_age``,
``uptime``,
``cpu_percent``, ``memory`` (resident bytes; the last three only for daemons on this host).
:func:`contract` strips it down to the DESIGN keys.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from typing import Any

import peewee
import psutil
from peewee import fn

from wgops.daemon.broker import Broker
from wgops.daemon.eventloop import run_coroutine
from wgops.daemon.probes import db_session, quiet_amqp
from wgops.daemon.protocol import Names
from wgops.daemon.supervisor import Supervisor
from wgops.store.config import Settings, mask_url
from wgops.store.db import first_line
from wgops.store.liveness import HOST, database_time, is_alive
from wgops.store.models import GRAPH_ACTIVE, Graph, Pool, Scheduler, Worker

logger = logging.getLogger(__name__)

LISTED_FOR = 60.0        # seconds a daemon that stopped heartbeating stays listed (as stopped)
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
        rows, table_pools, db_time = _daemon_rows(settings)
        status["database"]["ok"] = True
        pools |= table_pools
        _fill_daemons(status, settings, rows, db_time)
        for worker in status["workers"]:
            if worker["alive"]:
                pools.update(worker["pools"])
    except Exception as exc:  # noqa: BLE001 - status reports, it never raises
        logger.debug("status: database", exc_info=True)
        status["database"]["error"] = first_line(exc)
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
        status["broker"]["error"] = first_line(exc)
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
        info["error"] = first_line(exc)
    return info


# -- database ------------------------------------------------------------------------------


class NoSchema(Exception):
    """The database answers but holds no wgops tables."""


def _daemon_rows(settings: Settings) -> tuple[dict[str, list[Any]], set[str], float]:
    """The daemon rows worth listing, the pools, and the database's time (liveness's clock)."""
    with db_session(settings):
        try:
            db_time = database_time()
            since = db_time - LISTED_FOR
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
    return rows, pools, db_time


def _fill_daemons(status: dict[str, Any], settings: Settings,
                  rows: dict[str, list[Any]], db_time: float) -> None:
    now = time.time()           # this host's clock: only for its own processes' uptime
    watchers = status["arbiter"]["watchers"]
    for group, kind in (("schedulers", "scheduler"), ("workers", "worker")):
        watcher = watchers.get(kind, {})
        managed = set(watcher.get("pids", ()))
        for row in rows[group]:
            local = row.host == HOST
            proc = _process(row.pid, row.started) if local else None
            alive = is_alive(row.state, row.heartbeat, db_time, settings.stale_after) and (
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
                        orphan=proc is not None and row.pid not in managed,
                        started=row.started, heartbeat_age=round(db_time - row.heartbeat, 3),
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


__all__ = ["collect_status", "contract"]
