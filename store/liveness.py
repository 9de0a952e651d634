"""Is this daemon alive? The one rule, the heartbeats it reads, and what follows from a death.

A daemon is **alive** while its row says ``running`` or ``stopping`` and its heartbeat is at
most ``stale_after`` seconds old; otherwise it is dead. :func:`alive` (a SQL condition) and
:func:`is_alive` (for a row already read) are that rule; adoption, the doctor, ``daemon
status``, the console and the CLI all ask it, with the installation's ``stale_after``.

What a death leads to lives here too: a live scheduler adopts a dead one's graphs, a stopping
scheduler releases its own, detached tasks of dead workers are found.
"""

from __future__ import annotations

import socket
from typing import Any

import peewee

from wgops.store.errors import Conflict, NotFound
from wgops.store.eventlog import log_event
from wgops.store.models import GRAPH_ACTIVE, Graph, Pool, Scheduler, Task, Worker, dumps, loads

HOST = socket.gethostname().split(".")[0]      # the host name daemons record in their rows
ALIVE_STATES = ("running", "stopping")


def alive(model: Any, now: float, stale_after: float) -> peewee.Expression:
    """The liveness rule as a condition on a Scheduler or Worker query."""
    return model.state.in_(ALIVE_STATES) & (model.heartbeat >= now - stale_after)


def dead(model: Any, now: float, stale_after: float) -> peewee.Expression:
    """Not alive, or no row at all (for a LEFT OUTER JOIN from the rows naming a daemon)."""
    return model.id.is_null() | ~alive(model, now, stale_after)


def is_alive(state: str | None, heartbeat: float | None, now: float, stale_after: float) -> bool:
    """The liveness rule for a row already read."""
    return state in ALIVE_STATES and heartbeat is not None and heartbeat >= now - stale_after


def accepts_work(model: Any, now: float, stale_after: float) -> peewee.Expression:
    """Alive and not stopping: may be given new work (a reassigned graph, a pool's tasks)."""
    return alive(model, now, stale_after) & (model.state == "running")


# -- heartbeats ---------------------------------------------------------------------------------

def heartbeat_scheduler(sid: str, pid: int, graphs: int, now: float, state: str = "running") \
        -> None:
    n = Scheduler.update(heartbeat=now, graphs=graphs, state=state).where(
        Scheduler.id == sid).execute()
    if not n:
        row = {"id": sid, "host": HOST, "pid": pid, "state": state, "started": now,
               "heartbeat": now, "graphs": graphs}
        Scheduler.insert(row).on_conflict(conflict_target=[Scheduler.id],
                                          update=row).execute()


def heartbeat_worker(wid: str, pid: int, slots: int, pools: list[str], executing: list[int],
                     now: float, state: str = "running") -> None:
    n = Worker.update(heartbeat=now, busy=len(executing), executing=dumps(executing),
                      state=state).where(Worker.id == wid).execute()
    if not n:
        row = {"id": wid, "host": HOST, "pid": pid, "state": state, "slots": slots,
               "pools": dumps(pools), "busy": len(executing), "executing": dumps(executing),
               "started": now, "heartbeat": now}
        Worker.insert(row).on_conflict(conflict_target=[Worker.id], update=row).execute()


def scheduler_alive(sid: str | None, now: float, stale_after: float) -> bool:
    if not sid:
        return False
    row = Scheduler.select(Scheduler.state, Scheduler.heartbeat).where(
        Scheduler.id == sid).first()
    return row is not None and is_alive(row.state, row.heartbeat, now, stale_after)


def accepting_scheduler(sid: str, now: float, stale_after: float) -> Scheduler:
    """The row of scheduler ``sid`` if it may be given a graph (alive and not stopping), for
    an operator's choice of scheduler (reassign, submit to one scheduler): ``NotFound`` if
    there is no such scheduler, ``Conflict`` if it is dead or stopping."""
    row = Scheduler.get_or_none(Scheduler.id == sid)
    if row is None:
        raise NotFound(f"no scheduler {sid!r} (see wgops daemon status)")
    if not is_alive(row.state, row.heartbeat, now, stale_after):
        raise Conflict(f"scheduler {sid} is not alive")
    if row.state != "running":
        raise Conflict(f"scheduler {sid} is {row.state} and takes no new graphs")
    return row


def worker_alive(wid: str | None, now: float, stale_after: float) -> bool:
    if not wid:
        return False
    row = Worker.select(Worker.state, Worker.heartbeat).where(Worker.id == wid).first()
    return row is not None and is_alive(row.state, row.heartbeat, now, stale_after)


def live_pools(now: float, stale_after: float) -> tuple[dict[str, int | None], set[str]]:
    """({pool: cap}, pools served by a worker that accepts work)."""
    caps = {p.name: p.max_running for p in Pool.select()}
    served: set[str] = set()
    for w in Worker.select(Worker.pools).where(accepts_work(Worker, now, stale_after)):
        served.update(loads(w.pools))
    return caps, served


# -- what a death leads to ----------------------------------------------------------------------

def dead_schedulers(me: str, now: float, stale_after: float) -> list[str]:
    """Schedulers whose rows say they drive graphs but that are not alive."""
    return [s.id for s in Scheduler.select(Scheduler.id).where(
        Scheduler.id != me, Scheduler.state.in_(ALIVE_STATES),
        ~alive(Scheduler, now, stale_after))]


def dead_owners(now: float, stale_after: float) -> dict[str, list[int]]:
    """{scheduler: [its live root graphs]} for owners that are not alive (or have no row)."""
    out: dict[str, list[int]] = {}
    query = (Graph.select(Graph.id, Graph.scheduler)
             .join(Scheduler, peewee.JOIN.LEFT_OUTER, on=(Graph.scheduler == Scheduler.id))
             .where(Graph.scheduler.is_null(False), Graph.state.in_(GRAPH_ACTIVE),
                    Graph.parent_task.is_null(), dead(Scheduler, now, stale_after)))
    for gid, owner in query.tuples():
        out.setdefault(owner, []).append(gid)
    return out


def adopt(dead_id: str, me: str, now: float) -> list[int]:
    """Take every live graph of scheduler ``dead_id``; return the root ids."""
    roots = [g.id for g in Graph.select(Graph.id).where(
        Graph.scheduler == dead_id, Graph.state.in_(GRAPH_ACTIVE), Graph.parent_task.is_null())]
    Graph.update(scheduler=me, epoch=Graph.epoch + 1).where(
        Graph.scheduler == dead_id, Graph.state.in_(GRAPH_ACTIVE)).execute()
    Scheduler.update(state="dead").where(Scheduler.id == dead_id).execute()
    for gid in roots:
        log_event("graph.adopted", gid, actor=me, **{"from": dead_id})
    return roots


def release(owner: str, now: float, actor: str | None = None, reason: str | None = None) \
        -> list[tuple[int, int]]:
    """Unclaim every live graph of ``owner``, to be launched again: (root id, priority).

    By the owner itself as it stops (its row becomes ``stopped``), or by another on its
    behalf, with a ``reason`` (its row becomes ``dead`` unless it stopped meanwhile)."""
    roots = [(g.id, g.priority) for g in Graph.select(Graph.id, Graph.priority).where(
        Graph.scheduler == owner, Graph.state.in_(GRAPH_ACTIVE), Graph.parent_task.is_null())]
    Graph.update(scheduler=None, epoch=Graph.epoch + 1).where(
        Graph.scheduler == owner, Graph.state.in_(GRAPH_ACTIVE)).execute()
    if actor is None:
        Scheduler.update(state="stopped", heartbeat=now, graphs=0).where(
            Scheduler.id == owner).execute()
    else:
        Scheduler.update(state="dead").where(Scheduler.id == owner,
                                             Scheduler.state != "stopped").execute()
    extra = {"reason": reason} if reason else {}
    for gid, _ in roots:
        log_event("graph.released", gid, actor=actor or owner, **extra)
    return roots


def orphans(older_than: float) -> list[tuple[int, int]]:
    """Unclaimed root graphs submitted before ``older_than`` (their launch message may be
    lost): (graph, priority)."""
    return list(Graph.select(Graph.id, Graph.priority).where(
        Graph.scheduler.is_null(), Graph.state.in_(("queued", "running")),
        Graph.parent_task.is_null(), Graph.created < older_than).tuples())


def dead_worker_tasks(now: float, stale_after: float, owner: str | None = None,
                      detached_only: bool = False) -> list[tuple[int, int, int, str]]:
    """Leaf tasks ``running`` on a worker that is not alive: (task, graph, attempts, worker).

    ``owner``: only in that scheduler's graphs. ``detached_only``: only tasks whose message was
    acked early (no redelivery will bring them back)."""
    query = (Task.select(Task.id, Task.graph, Task.attempts, Task.worker)
             .join(Worker, peewee.JOIN.LEFT_OUTER, on=(Task.worker == Worker.id))
             .where(Task.state == "running", Task.kind != "graph",
                    Task.worker.is_null(False),     # a mapped or built task holds no worker
                    dead(Worker, now, stale_after)))
    if detached_only:
        query = query.where(Task.detached.is_null(False))
    if owner is not None:
        query = query.switch(Task).join(Graph, on=(Task.graph == Graph.id)).where(
            Graph.scheduler == owner)
    return list(query.tuples())
