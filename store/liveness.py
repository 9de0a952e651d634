"""Is this daemon alive? The one rule, the heartbeats it reads, and what follows from a death.

A daemon is **alive** while its row says ``running`` or ``stopping`` and its heartbeat is at
most ``stale_after`` seconds old; otherwise it is dead. :func:`alive` (a SQL condition) and
:func:`is_alive` (for a row already read) are that rule; adoption, the doctor, ``daemon
status``, the console, the CLI, pools and ``submit --scheduler`` all ask it, with the
installation's ``stale_after``.

**One clock** (DESIGN §13, invariant 7): heartbeats are written with the database's time
(:func:`db_now`, the capability ``clock_sql``: ``clock_timestamp()`` on PostgreSQL,
``julianday('now')`` on SQLite) and their age is measured against the same clock, in the same
statement, so no host's clock takes part: a host whose clock is off neither loses its graphs
nor hides a dead daemon. Nothing here takes a caller's ``now``; a row already read is judged
against :func:`database_time`. A daemon row's ``started`` is its process's start time as the
host's kernel records it (so that a pid can be matched with the process that wrote the row);
event-log and task times are the local clock's.

What a death leads to lives here too: a live scheduler adopts a dead one's graphs, a stopping
scheduler releases its own, detached tasks of dead workers are found.
"""

from __future__ import annotations

import socket
import time
from typing import Any

import peewee
import psutil

from wgops.store.db import capabilities, database
from wgops.store.errors import Conflict, NotFound
from wgops.store.eventlog import log_event
from wgops.store.models import GRAPH_ACTIVE, Graph, Pool, Scheduler, Task, Worker, dumps, loads

HOST = socket.gethostname().split(".")[0]      # the host name daemons record in their rows
ALIVE_STATES = ("running", "stopping")


def process_started(pid: int) -> float:
    """When process ``pid`` started, by the host's kernel (a daemon row's ``started``)."""
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return time.time()


def db_now() -> peewee.Node:
    """The database's time in epoch seconds, as an SQL expression (the clock of liveness)."""
    return peewee.SQL(capabilities().clock_sql)


def database_time() -> float:
    """The database's time now, in epoch seconds (run inside a connection)."""
    row = database.execute_sql(f"SELECT {capabilities().clock_sql}").fetchone()
    return float(row[0])


def alive(model: Any, stale_after: float) -> peewee.Expression:
    """The liveness rule as a condition on a Scheduler or Worker query."""
    return model.state.in_(ALIVE_STATES) & (model.heartbeat >= db_now() - stale_after)


def dead(model: Any, stale_after: float) -> peewee.Expression:
    """Not alive, or no row at all (for a LEFT OUTER JOIN from the rows naming a daemon)."""
    return model.id.is_null() | ~alive(model, stale_after)


def is_alive(state: str | None, heartbeat: float | None, db_time: float, stale_after: float) \
        -> bool:
    """The liveness rule for a row already read; ``db_time`` is :func:`database_time`."""
    return state in ALIVE_STATES and heartbeat is not None and heartbeat >= db_time - stale_after


def accepts_work(model: Any, stale_after: float) -> peewee.Expression:
    """Alive and not stopping: may be given new work (a reassigned graph, a pool's tasks)."""
    return alive(model, stale_after) & (model.state == "running")


# -- heartbeats ---------------------------------------------------------------------------------

def heartbeat_scheduler(sid: str, pid: int, graphs: int, state: str = "running") -> None:
    """Beat (the database's time); the first beat inserts the row."""
    n = Scheduler.update(heartbeat=db_now(), graphs=graphs, state=state).where(
        Scheduler.id == sid).execute()
    if not n:
        row = {"id": sid, "host": HOST, "pid": pid, "state": state, "started": process_started(pid),
               "heartbeat": db_now(), "graphs": graphs}
        Scheduler.insert(row).on_conflict(conflict_target=[Scheduler.id],
                                          update=row).execute()


def heartbeat_worker(wid: str, pid: int, slots: int, pools: list[str], executing: list[int],
                     state: str = "running") -> None:
    """Beat (the database's time) with what the worker executes; the first beat inserts."""
    n = Worker.update(heartbeat=db_now(), busy=len(executing), executing=dumps(executing),
                      state=state).where(Worker.id == wid).execute()
    if not n:
        row = {"id": wid, "host": HOST, "pid": pid, "state": state, "slots": slots,
               "pools": dumps(pools), "busy": len(executing), "executing": dumps(executing),
               "started": process_started(pid), "heartbeat": db_now()}
        Worker.insert(row).on_conflict(conflict_target=[Worker.id], update=row).execute()


def scheduler_alive(sid: str | None, stale_after: float) -> bool:
    if not sid:
        return False
    return Scheduler.select(Scheduler.id).where(
        Scheduler.id == sid, alive(Scheduler, stale_after)).exists()


def accepting_scheduler(sid: str, stale_after: float) -> Scheduler:
    """The row of scheduler ``sid`` if it may be given a graph (alive and not stopping), for
    an operator's choice of scheduler (reassign, submit to one scheduler): ``NotFound`` if
    there is no such scheduler, ``Conflict`` if it is dead or stopping."""
    row = Scheduler.get_or_none(Scheduler.id == sid)
    if row is None:
        raise NotFound(f"no scheduler {sid!r} (see wgops daemon status)")
    if not is_alive(row.state, row.heartbeat, database_time(), stale_after):
        raise Conflict(f"scheduler {sid} is not alive")
    if row.state != "running":
        raise Conflict(f"scheduler {sid} is {row.state} and takes no new graphs")
    return row


def worker_alive(wid: str | None, stale_after: float) -> bool:
    if not wid:
        return False
    return Worker.select(Worker.id).where(Worker.id == wid, alive(Worker, stale_after)).exists()


def live_pools(stale_after: float) -> tuple[dict[str, int | None], set[str]]:
    """({pool: cap}, pools served by a worker that accepts work)."""
    caps = {p.name: p.max_running for p in Pool.select()}
    served: set[str] = set()
    for w in Worker.select(Worker.pools).where(accepts_work(Worker, stale_after)):
        served.update(loads(w.pools))
    return caps, served


# -- what a death leads to ----------------------------------------------------------------------

def dead_schedulers(me: str, stale_after: float) -> list[str]:
    """Schedulers whose rows say they drive graphs but that are not alive."""
    return [s.id for s in Scheduler.select(Scheduler.id).where(
        Scheduler.id != me, Scheduler.state.in_(ALIVE_STATES),
        ~alive(Scheduler, stale_after))]


def dead_owners(stale_after: float) -> dict[str, list[int]]:
    """{scheduler: [its live root graphs]} for owners that are not alive (or have no row)."""
    out: dict[str, list[int]] = {}
    query = (Graph.select(Graph.id, Graph.scheduler)
             .join(Scheduler, peewee.JOIN.LEFT_OUTER, on=(Graph.scheduler == Scheduler.id))
             .where(Graph.scheduler.is_null(False), Graph.state.in_(GRAPH_ACTIVE),
                    Graph.parent_task.is_null(), dead(Scheduler, stale_after)))
    for gid, owner in query.tuples():
        out.setdefault(owner, []).append(gid)
    return out


def adopt(dead_id: str, me: str) -> list[int]:
    """Take every live graph of scheduler ``dead_id``; return the root ids."""
    roots = [g.id for g in Graph.select(Graph.id).where(
        Graph.scheduler == dead_id, Graph.state.in_(GRAPH_ACTIVE), Graph.parent_task.is_null())]
    Graph.update(scheduler=me, epoch=Graph.epoch + 1).where(
        Graph.scheduler == dead_id, Graph.state.in_(GRAPH_ACTIVE)).execute()
    Scheduler.update(state="dead").where(Scheduler.id == dead_id).execute()
    for gid in roots:
        log_event("graph.adopted", gid, actor=me, **{"from": dead_id})
    return roots


def release(owner: str, actor: str | None = None, reason: str | None = None) \
        -> list[tuple[int, int]]:
    """Unclaim every live graph of ``owner``, to be launched again: (root id, priority).

    By the owner itself as it stops (its row becomes ``stopped``), or by another on its
    behalf, with a ``reason`` (its row becomes ``dead`` unless it stopped meanwhile)."""
    roots = [(g.id, g.priority) for g in Graph.select(Graph.id, Graph.priority).where(
        Graph.scheduler == owner, Graph.state.in_(GRAPH_ACTIVE), Graph.parent_task.is_null())]
    Graph.update(scheduler=None, epoch=Graph.epoch + 1).where(
        Graph.scheduler == owner, Graph.state.in_(GRAPH_ACTIVE)).execute()
    if actor is None:
        Scheduler.update(state="stopped", heartbeat=db_now(), graphs=0).where(
            Scheduler.id == owner).execute()
    else:
        Scheduler.update(state="dead").where(Scheduler.id == owner,
                                             Scheduler.state != "stopped").execute()
    extra = {"reason": reason} if reason else {}
    for gid, _ in roots:
        log_event("graph.released", gid, actor=actor or owner, **extra)
    return roots


def orphans(min_age: float) -> list[tuple[int, int]]:
    """Unclaimed root graphs submitted at least ``min_age`` seconds ago by the database's
    clock (their launch message may be lost): (graph, priority). ``created`` is the
    submitter's time: only the sweeping scheduler's clock is kept out."""
    return list(Graph.select(Graph.id, Graph.priority).where(
        Graph.scheduler.is_null(), Graph.state.in_(("queued", "running")),
        Graph.parent_task.is_null(), Graph.created < db_now() - min_age).tuples())


def dead_worker_tasks(stale_after: float, owner: str | None = None,
                      detached_only: bool = False) -> list[tuple[int, int, int, str]]:
    """Leaf tasks ``running`` on a worker that is not alive: (task, graph, attempts, worker).

    ``owner``: only in that scheduler's graphs. ``detached_only``: only tasks whose message was
    acked early (no redelivery will bring them back)."""
    query = (Task.select(Task.id, Task.graph, Task.attempts, Task.worker)
             .join(Worker, peewee.JOIN.LEFT_OUTER, on=(Task.worker == Worker.id))
             .where(Task.state == "running", Task.kind != "graph",
                    Task.worker.is_null(False),     # a mapped or built task holds no worker
                    dead(Worker, stale_after)))
    if detached_only:
        query = query.where(Task.detached.is_null(False))
    if owner is not None:
        query = query.switch(Task).join(Graph, on=(Task.graph == Graph.id)).where(
            Graph.scheduler == owner)
    return list(query.tuples())
