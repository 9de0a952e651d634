"""``wgops doctor``, the database half: where the rows say something the daemons no longer do.

Each check is a read; each repair is a compare-and-set in the caller's write transaction, so
running the doctor next to live daemons is safe (a repair that loses a race changes nothing).
The broker half (queue depths, re-publishing) is :mod:`daemon.doctor`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import peewee

from store import transitions as tx
from store.control import log_event
from store.models import GRAPH_ACTIVE, Graph, Scheduler, Task, Worker

ACTOR = "doctor"


@dataclass
class Finding:
    """One inconsistency; ``repaired`` says whether ``--repair`` fixed it."""

    check: str           # dead_owner | dead_worker | queued_without_message | unlaunched_graph
    message: str
    graph: int | None = None
    task: int | None = None
    daemon: str | None = None
    repaired: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _dead(model: Any, dead_after: float, now: float) -> Any:
    """A daemon row that is not a live daemon (no row, not running, or silent)."""
    return (model.id.is_null() | (model.state != "running")
            | (model.heartbeat < now - dead_after))


def dead_owners(dead_after: float, now: float) -> dict[str, list[int]]:
    """{scheduler: [live root graphs]} for schedulers that are gone."""
    out: dict[str, list[int]] = {}
    query = (Graph.select(Graph.id, Graph.scheduler)
             .join(Scheduler, peewee.JOIN.LEFT_OUTER, on=(Graph.scheduler == Scheduler.id))
             .where(Graph.scheduler.is_null(False), Graph.state.in_(GRAPH_ACTIVE),
                    Graph.parent_task.is_null(), _dead(Scheduler, dead_after, now)))
    for gid, owner in query.tuples():
        out.setdefault(owner, []).append(gid)
    return out


def dead_worker_tasks(dead_after: float, now: float) -> list[tuple[int, int, int, str]]:
    """Leaf tasks ``running`` on a worker that is gone: (task, graph, attempts, worker)."""
    return list(Task.select(Task.id, Task.graph, Task.attempts, Task.worker)
                .join(Worker, peewee.JOIN.LEFT_OUTER, on=(Task.worker == Worker.id))
                .where(Task.state == "running", Task.kind != "graph",
                       _dead(Worker, dead_after, now)).tuples())


def queued_tasks(older_than: float, now: float) -> dict[str, list[tuple[int, int]]]:
    """{pool: [(task, graph)]}: tasks queued (not waiting for a retry delay) for a while, in
    graphs that are running. Whether their message exists is the broker's half."""
    out: dict[str, list[tuple[int, int]]] = {}
    query = (Task.select(Task.id, Task.graph, Task.pool).join(Graph)
             .where(Task.state == "queued", Task.kind != "graph", Graph.state == "running",
                    Task.queued_at < older_than,
                    Task.not_before.is_null() | (Task.not_before <= now)))
    for tid, gid, pool in query.tuples():
        out.setdefault(pool, []).append((tid, gid))
    return out


def unclaimed_graphs(older_than: float) -> list[tuple[int, int]]:
    """Root graphs no scheduler owns, submitted a while ago: (graph, priority)."""
    return list(Graph.select(Graph.id, Graph.priority).where(
        Graph.scheduler.is_null(), Graph.parent_task.is_null(),
        Graph.state.in_(("queued", "running")), Graph.created < older_than).tuples())


def owner_of(graph_id: int) -> str | None:
    return tx.current_owner(graph_id)


def live_scheduler(sid: str | None, dead_after: float, now: float) -> bool:
    if not sid:
        return False
    row = Scheduler.get_or_none(Scheduler.id == sid)
    return row is not None and row.state == "running" and row.heartbeat >= now - dead_after


# -- repairs (each inside the caller's write transaction) -------------------------------------

def release_dead_owner(dead: str, now: float) -> list[tuple[int, int]]:
    """Unclaim the live graphs of a dead scheduler (for a launch message): (root, priority)."""
    roots = [(g.id, g.priority) for g in Graph.select(Graph.id, Graph.priority).where(
        Graph.scheduler == dead, Graph.state.in_(GRAPH_ACTIVE), Graph.parent_task.is_null())]
    Graph.update(scheduler=None, epoch=Graph.epoch + 1).where(
        Graph.scheduler == dead, Graph.state.in_(GRAPH_ACTIVE)).execute()
    Scheduler.update(state="dead").where(Scheduler.id == dead,
                                         Scheduler.state != "stopped").execute()
    for gid, _ in roots:
        log_event("graph.released", gid, actor=ACTOR, reason=f"owner {dead} is gone")
    return roots
