"""Operator actions at the database level: pause, play, kill, retry, reassign, priority, pools.

Each is a compare-and-set inside one write transaction, recorded in the event log, and works
whether or not the owning scheduler is alive (kill bumps the graph's ``epoch``: the fence that
makes a late result from the old owner or a worker change nothing). The daemon layer then
sends the wake-ups (``daemon.control``).
"""

from __future__ import annotations

import time
from typing import Any

from wgops.store.db import Store
from wgops.store.errors import Conflict
from wgops.store.eventlog import log_event
from wgops.store.graphs import get_graph, tree_ids
from wgops.store.liveness import accepting_scheduler
from wgops.store.models import (
    GRAPH_ACTIVE,
    GRAPH_DELETING,
    GRAPH_STATE,
    GRAPH_TERMINAL,
    TASK_ACTIVE,
    TASK_STATE,
    Graph,
    Pool,
    Task,
)


def pause(store: Store, graph_id: int, actor: str = "cli") -> Graph:
    with store.write():
        graph = get_graph(graph_id)
        ids = tree_ids(graph.id)
        n = Graph.update(state="paused").where(Graph.id.in_(ids),
                                               GRAPH_STATE.in_(("queued", "running"))).execute()
        if not n and graph.state != "paused":
            raise Conflict(f"graph {graph_id} is {graph.state}; only a queued or running graph "
                           "can be paused")
        log_event("graph.paused", graph.id, actor=actor)
    return get_graph(graph_id)


def play(store: Store, graph_id: int, actor: str = "cli") -> Graph:
    with store.write():
        graph = get_graph(graph_id)
        if graph.state != "paused":
            raise Conflict(f"graph {graph_id} is {graph.state}, not paused")
        ids = tree_ids(graph.id)
        Graph.update(state="running").where(Graph.id.in_(ids), GRAPH_STATE == "paused",
                                            Graph.scheduler.is_null(False)).execute()
        Graph.update(state="queued").where(Graph.id.in_(ids), GRAPH_STATE == "paused",
                                           Graph.scheduler.is_null()).execute()
        log_event("graph.played", graph.id, actor=actor)
    return get_graph(graph_id)


def kill(store: Store, graph_id: int, actor: str = "cli") -> tuple[Graph, list[tuple[int, str]]]:
    """Kill a graph and its nested graphs; return the running (task, worker) pairs to cancel."""
    now = time.time()
    with store.write():
        graph = get_graph(graph_id)
        if graph.state in GRAPH_TERMINAL or graph.state == GRAPH_DELETING:
            raise Conflict(f"graph {graph_id} is already {graph.state}")
        ids = tree_ids(graph.id)
        running = [(t.id, t.worker) for t in Task.select(Task.id, Task.worker).where(
            Task.graph.in_(ids), TASK_STATE == "running", Task.worker.is_null(False))]
        Task.update(state="killed", finished=now).where(
            Task.graph.in_(ids), TASK_STATE.in_(TASK_ACTIVE)).execute()
        Graph.update(state="killed", finished=now, epoch=Graph.epoch + 1).where(
            Graph.id.in_(ids), GRAPH_STATE.in_(GRAPH_ACTIVE)).execute()
        log_event("graph.killed", graph.id, actor=actor)
    return get_graph(graph_id), running


def retry(store: Store, graph_id: int, actor: str = "cli") -> Graph:
    """Re-queue failed, skipped and killed tasks; the graph goes back to the graphs queue."""
    with store.write():
        graph = get_graph(graph_id)
        if graph.parent_task_id is not None:
            raise Conflict(f"graph {graph_id} is nested; retry its top-level graph {graph.root}")
        if graph.state not in ("failed", "killed"):
            raise Conflict(f"graph {graph_id} is {graph.state}; only a failed or killed graph "
                           "can be retried")
        # the graph first, compare-and-set on its state: a graph a concurrent delete or prune
        # marked meanwhile (PostgreSQL reads outside the write lock) is not brought back
        if not Graph.update(state="queued", scheduler=None, error=None, finished=None,
                            epoch=Graph.epoch + 1).where(
                Graph.id == graph.id, GRAPH_STATE.in_(("failed", "killed"))).execute():
            raise Conflict(f"graph {graph_id} is {get_graph(graph_id).state}; only a failed "
                           "or killed graph can be retried")
        ids = tree_ids(graph.id)
        # nested graphs that did not finish are dropped: their parent task runs them anew
        stale = [g.id for g in Graph.select(Graph.id).where(
            Graph.id.in_(ids[1:]), GRAPH_STATE != "finished")]
        if stale:
            Graph.delete().where(Graph.id.in_(stale)).execute()
        Task.update(state="waiting", error=None, waiting_for=None, worker=None, lost=0,
                    not_before=None, started=None, finished=None).where(
            Task.graph == graph.id, TASK_STATE.in_(("failed", "skipped", "killed"))).execute()
        log_event("graph.retried", graph.id, actor=actor)
    return get_graph(graph_id)


def reassign(store: Store, graph_id: int, to: str, stale_after: float,
             actor: str = "cli") -> tuple[Graph, str | None]:
    """Move a live graph (and its nested graphs) to scheduler ``to``; return the old owner."""
    with store.write():
        graph = get_graph(graph_id)
        if graph.parent_task_id is not None:
            raise Conflict(f"graph {graph_id} is nested; reassign its top-level graph "
                           f"{graph.root}")
        if graph.state not in GRAPH_ACTIVE:
            raise Conflict(f"graph {graph_id} is {graph.state}; only a live graph can be "
                           "reassigned")
        accepting_scheduler(to, stale_after)
        old = graph.scheduler
        if old == to:
            raise Conflict(f"graph {graph_id} already belongs to {to}")
        ids = tree_ids(graph.id)
        Graph.update(scheduler=to, epoch=Graph.epoch + 1).where(
            Graph.id.in_(ids), GRAPH_STATE.in_(GRAPH_ACTIVE)).execute()
        log_event("graph.reassigned", graph.id, actor=actor, **{"from": old, "to": to})
    return get_graph(graph_id), old


def set_priority(store: Store, graph_id: int, priority: int, actor: str = "cli") -> Graph:
    if not 0 <= priority <= 9:
        raise Conflict(f"priority must be 0..9, not {priority}")
    with store.write():
        graph = get_graph(graph_id)
        Graph.update(priority=priority).where(Graph.id.in_(tree_ids(graph.id))).execute()
        log_event("graph.priority", graph.id, actor=actor, priority=priority)
    return get_graph(graph_id)


def set_pool(store: Store, name: str, max_running: int | None, actor: str = "cli") -> Pool:
    if max_running is not None and max_running < 0:
        raise Conflict("max_running must be 0 or more")
    with store.write():
        Pool.insert(name=name, max_running=max_running).on_conflict(
            conflict_target=[Pool.name], update={Pool.max_running: max_running}).execute()
        log_event("pool.changed", actor=actor, pool=name, max_running=max_running)
    return Pool.get(Pool.name == name)


def pools() -> list[dict[str, Any]]:
    from peewee import fn
    counts: dict[tuple[str, str], int] = {}
    for pool, state, n in (Task.select(Task.pool, Task.state, fn.COUNT(Task.id))
                           .where(Task.state.in_(("queued", "running")))
                           .group_by(Task.pool, Task.state).tuples()):
        counts[(pool, state)] = n
    return [{"name": p.name, "max_running": p.max_running,
             "running": counts.get((p.name, "running"), 0),
             "queued": counts.get((p.name, "queued"), 0)}
            for p in Pool.select().order_by(Pool.name)]
