"""``wgops doctor``, the database half: where the rows say something the daemons no longer do.

Each check is a read; each repair is a compare-and-set in the caller's write transaction, so
running the doctor next to live daemons is safe (a repair that loses a race changes nothing).
Dead owners and tasks on dead workers are found by the one liveness rule
(:mod:`wgops.store.liveness`); the broker half (queue depths, re-publishing) is
:mod:`wgops.daemon.doctor`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import peewee

from wgops.store.models import GRAPH_TERMINAL, TASK_ACTIVE, Graph, LogEntry, Task

ACTOR = "doctor"


@dataclass
class Finding:
    """One inconsistency; ``repaired`` says whether ``--repair`` fixed it."""

    check: str           # dead_owner | dead_worker | queued_without_message |
                         # unlaunched_graph | unsettled_task
    message: str
    graph: int | None = None
    task: int | None = None
    daemon: str | None = None
    repaired: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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


def unsettled_tasks(older_than: float) -> list[tuple[int, int, str]]:
    """[(task, graph, why)]: tasks of running graphs whose own work is over while their
    scheduler has not moved them on for a while — a mapped task whose copies all ended, a
    build task whose builder committed a graph that was never spawned, a graph or build task
    whose nested graph ended. A scheduler that missed the message settles them when it
    reloads the graph (the watchdog would, later)."""
    out: list[tuple[int, int, str]] = []
    Copy = Task.alias("copy")
    running = (Task.state == "running") & (Graph.state == "running")
    mapped = (Task.select(Task.id, Task.graph, peewee.fn.COUNT(Copy.id))
              .join(Graph, on=(Task.graph == Graph.id))
              .switch(Task).join(Copy, on=(Copy.map_of == Task.id))
              .where(running, Task.started < older_than)
              .group_by(Task.id, Task.graph)
              .having((peewee.fn.SUM(peewee.Case(None, [(Copy.state.in_(TASK_ACTIVE), 1)], 0))
                       == 0)
                      & (peewee.fn.COALESCE(peewee.fn.MAX(Copy.finished), 0) < older_than)))
    for tid, gid, copies in mapped.tuples():
        out.append((tid, gid, f"all {copies} of its copies ended"))
    Child = Graph.alias("child")
    ended = (Task.select(Task.id, Task.graph, Child.id, Child.state)
             .join(Graph, on=(Task.graph == Graph.id))
             .switch(Task).join(Child, on=(Child.parent_task == Task.id))
             .where(running, Task.kind.in_(("graph", "build")), Child.state.in_(GRAPH_TERMINAL),
                    Child.finished < older_than))
    for tid, gid, child, state in ended.tuples():
        out.append((tid, gid, f"its nested graph {child} is {state}"))
    spawned = Graph.select(Graph.id).where(Graph.parent_task == Task.id)
    recently = LogEntry.select(LogEntry.id).where(
        LogEntry.task == Task.id, LogEntry.kind == "task.built", LogEntry.ts >= older_than)
    built = (Task.select(Task.id, Task.graph).join(Graph, on=(Task.graph == Graph.id))
             .where(running, Task.kind == "build", Task.worker.is_null(),
                    Task.result.is_null(False), ~peewee.fn.EXISTS(spawned),
                    ~peewee.fn.EXISTS(recently)))
    for tid, gid in built.tuples():
        out.append((tid, gid, "its builder returned a graph that was never started"))
    return out
