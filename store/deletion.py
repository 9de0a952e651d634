"""Deleting terminal graphs with everything under them, in bounded batches (delete, prune).

A top-level graph goes in two steps. First one statement **marks** it ``deleting``; the
database checks, inside that statement, that the graph is top-level, finished, failed or
killed, and that no graph nested in it is live. Every other transition (retry, play, pause,
kill, a scheduler's claim) is a compare-and-set on the state, so once marked nothing can bring
the graph back to life, and a graph that is not terminal is never marked. Then its rows are
**purged**: the deepest nested graphs first, for each the rows of :data:`CHILD_TABLES`, then
its tasks, then the graph rows, at most :data:`BATCH` rows per transaction with a short pause
between, so no daemon waits long for the database. A purge cut short (a crash) is finished
by the next delete or prune, which picks up every graph left ``deleting``.

Counts are rows removed: ``graphs`` counts every graph row (nested and built graphs too),
``tasks`` every task row.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

import peewee
from peewee import fn

from wgops.store.db import Store
from wgops.store.errors import Conflict, NotFound
from wgops.store.eventlog import log_event
from wgops.store.models import (
    GRAPH_ACTIVE,
    GRAPH_DELETING,
    GRAPH_TERMINAL,
    Graph,
    GraphDocument,
    LogEntry,
    Task,
    TaskLog,
)

BATCH = 500            # rows per delete transaction
MARK_BATCH = 100       # top-level graphs marked per transaction by prune
PAUSE = 0.002          # seconds between two delete transactions (lets other writers in)

# The tables whose rows belong to a graph or a task, deleted before the tasks and graphs
# they belong to: (model, the column naming the graph or task, "graph" | "task", rows per
# transaction). A new table keyed by graph or task is one more line here.
CHILD_TABLES: list[tuple[type[peewee.Model], peewee.Field, str, int]] = [
    (LogEntry, LogEntry.graph, "graph", BATCH),
    (TaskLog, TaskLog.task, "task", 50),        # up to max_log_bytes each: fewer at a time
    (GraphDocument, GraphDocument.graph, "graph", 100),   # most ~2 kB, up to max_document_bytes
]


def _deletable() -> peewee.Expression:
    """The condition the database checks when it marks a graph: top-level, terminal, and
    nothing nested in it live."""
    nested = Graph.alias()
    live = nested.select(nested.id).where(nested.root == Graph.id,
                                          nested.state.in_(GRAPH_ACTIVE))
    return (Graph.parent_task.is_null() & Graph.state.in_(GRAPH_TERMINAL)
            & ~fn.EXISTS(live))


def _mark(ids: Sequence[int]) -> list[int]:
    """Mark those of ``ids`` that may be deleted; return every one of ``ids`` now marked
    (call inside a write transaction)."""
    if not ids:
        return []
    Graph.update(state=GRAPH_DELETING).where(Graph.id.in_(list(ids)), _deletable()).execute()
    return [g.id for g in Graph.select(Graph.id).where(Graph.id.in_(list(ids)),
                                                        Graph.state == GRAPH_DELETING)]


def check_deletable(ids: Iterable[int]) -> list[Graph]:
    """The graphs of ``ids``, or ``NotFound`` / ``Conflict`` for the first that cannot be
    deleted (unknown, nested, not terminal)."""
    graphs = {g.id: g for g in Graph.select().where(Graph.id.in_(list(ids)))}
    out = []
    for gid in ids:
        graph = graphs.get(gid)
        if graph is None:
            raise NotFound(f"no graph {gid}")
        if graph.parent_task_id is not None:
            raise Conflict(f"graph {gid} is nested; delete its top-level graph {graph.root}")
        if graph.state not in GRAPH_TERMINAL and graph.state != GRAPH_DELETING:
            raise Conflict(f"graph {gid} is {graph.state}; only a finished, failed or killed "
                           "graph can be deleted")
        out.append(graph)
    return out


def delete(store: Store, ids: Sequence[int], actor: str = "cli") -> dict[str, int]:
    """Delete top-level terminal graphs with everything under them: all of ``ids`` or none
    (``NotFound``, ``Conflict``: nothing changed). Returns ``{"graphs", "tasks"}`` removed."""
    ids = list(dict.fromkeys(ids))
    with store.write():
        check_deletable(ids)
        marked = _mark(ids)
        if len(marked) != len(ids):        # one came back to life meanwhile (a retry)
            missing = sorted(set(ids) - set(marked))
            raise Conflict(f"graph {missing[0]} is no longer finished, failed or killed; "
                           "nothing deleted")
    counts = purge(store, ids)
    _record(store, "graphs.deleted", actor, counts)
    return counts


def count_trees(top: peewee.Query) -> dict[str, int]:
    """``{"graphs", "tasks"}`` in the trees of the top-level graphs ``top`` selects."""
    tree = Graph.select(Graph.id).where(Graph.root.in_(top))
    return {"graphs": Graph.select().where(Graph.root.in_(top)).count(),
            "tasks": Task.select().where(Task.graph.in_(tree)).count()}


def candidates(cutoff: float, states: Sequence[str] | None = None) -> peewee.Query:
    """Top-level graphs in ``states`` (default: every terminal state) that ended before
    ``cutoff``, oldest first."""
    states = [s for s in (states or GRAPH_TERMINAL) if s in GRAPH_TERMINAL]
    return (Graph.select(Graph.id)
            .where(Graph.parent_task.is_null(), Graph.state.in_(states),
                   Graph.finished < cutoff)
            .order_by(Graph.finished))


def prune(store: Store, older_than: float, states: Sequence[str] | None = None,
          dry_run: bool = False, now: float | None = None, limit: int | None = None,
          actor: str = "cli") -> dict[str, int]:
    """Delete the top-level graphs in ``states`` (default: finished, failed, killed) that
    ended more than ``older_than`` seconds before ``now``, with everything under them;
    graphs left ``deleting`` by an interrupted delete are finished too. ``dry_run``: count
    what would go, change nothing. ``limit``: at most that many top-level graphs (the
    schedulers' retention takes them a slice at a time). Returns ``{"graphs", "tasks"}``."""
    now = time.time() if now is None else now
    cutoff = now - older_than
    if dry_run:
        store.connect()
        return count_trees(candidates(cutoff, states))
    total = {"graphs": 0, "tasks": 0}
    left = limit
    while left is None or left > 0:
        size = MARK_BATCH if left is None else min(MARK_BATCH, left)
        with store.write():
            ids = [g.id for g in Graph.select(Graph.id).where(
                Graph.parent_task.is_null(), Graph.state == GRAPH_DELETING).limit(size)]
            if len(ids) < size:
                ids += _mark([g.id for g in candidates(cutoff, states).limit(size - len(ids))])
        if not ids:
            break
        counts = purge(store, ids)
        total = {k: total[k] + counts[k] for k in total}
        if left is not None:
            left -= len(ids)
    if total["graphs"]:
        _record(store, "graphs.pruned", actor, total)
    return total


def purge(store: Store, top_ids: Sequence[int]) -> dict[str, int]:
    """Remove the rows of the marked top-level graphs ``top_ids``, in batches."""
    if not top_ids:
        return {"graphs": 0, "tasks": 0}
    roots = list(top_ids)
    store.connect()
    depths = sorted({d for (d,) in Graph.select(Graph.depth).where(
        Graph.root.in_(roots)).distinct().tuples()}, reverse=True)
    counts = {"graphs": 0, "tasks": 0}
    for depth in depths:
        level = Graph.select(Graph.id).where(Graph.root.in_(roots), Graph.depth == depth)
        if depth == 0:                     # only what was marked, whatever its root says
            level = Graph.select(Graph.id).where(Graph.id.in_(roots),
                                                 Graph.state == GRAPH_DELETING)
        tasks = Task.select(Task.id).where(Task.graph.in_(level))
        for model, column, key, batch in CHILD_TABLES:
            _batched(store, model, column.in_(level if key == "graph" else tasks), batch)
        counts["tasks"] += _batched(store, Task, Task.graph.in_(level))
        counts["graphs"] += _batched(store, Graph, Graph.id.in_(level))
    return counts


def _batched(store: Store, model: type[peewee.Model], where: peewee.Expression,
             batch: int | None = None) -> int:
    """Delete the rows of ``model`` matching ``where``, ``batch`` (default ``BATCH``) per
    transaction."""
    batch = BATCH if batch is None else batch
    pk = model._meta.primary_key
    removed = 0
    while True:
        with store.write():
            n = model.delete().where(pk.in_(model.select(pk).where(where).limit(batch))) \
                .execute()
        removed += n
        if n < batch:
            return removed
        time.sleep(PAUSE)


def prune_events(store: Store, cutoff: float) -> int:
    """Delete event-log rows of no graph (daemon and pool events) older than ``cutoff``."""
    return _batched(store, LogEntry, LogEntry.graph.is_null() & (LogEntry.ts < cutoff))


def vacuum(store: Store) -> list[str]:
    """Where the database reuses deleted rows' space only after ``VACUUM`` (PostgreSQL, whose
    autovacuum may be off or late), vacuum the tables deletes touch; plain ``VACUUM`` takes no
    lock that stops reads or writes. Returns the tables vacuumed (none on SQLite)."""
    if not store.caps.vacuum:
        return []
    store.connect()
    tables = [m._meta.table_name for m, *_ in CHILD_TABLES] + [Task._meta.table_name,
                                                               Graph._meta.table_name]
    for table in tables:
        store.db.execute_sql(f'VACUUM "{table}"')
    return tables


def _record(store: Store, kind: str, actor: str, counts: dict[str, Any]) -> None:
    with store.write():
        log_event(kind, actor=actor, **counts)
