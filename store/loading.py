"""What a scheduler reads of a graph: the rows it holds in memory, loaded and claimed.

A scheduler holds an active graph as a :class:`GraphRow` with its :class:`TaskRow` s (only
what dependency resolution needs); :func:`load_tree` reads a graph and every graph nested
below it that the scheduler owns, :func:`claim_and_load` takes an unclaimed graph and reads
it in the same transaction.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import peewee
from peewee import fn

from wgops.store.db import ListStatement, Statement, capabilities, param
from wgops.store.eventlog import log_event
from wgops.store.graphs import tree_ids
from wgops.store.models import (
    GRAPH_ACTIVE,
    GRAPH_OWNER,
    GRAPH_STATE,
    Graph,
    GraphDocument,
    LogEntry,
    Task,
    loads,
)


@dataclass
class TaskRow:
    id: int
    name: str
    kind: str
    spec: str
    deps: list[str]
    pool: str
    state: str
    attempts: int
    not_before: float | None
    map_of: int | None = None           # a copy of a mapped task: that task's id
    map_index: int | None = None
    condition_false: bool = False       # skipped because its ``when`` was false


@dataclass
class GraphRow:
    id: int
    epoch: int
    state: str
    priority: int
    parent_task: int | None
    root: int
    depth: int
    document: dict[str, Any]
    inputs: dict[str, Any]
    tasks: list[TaskRow]
    child_of: dict[int, int]          # task id -> id of the nested graph it spawned


def _graph_columns() -> tuple[Any, ...]:
    return (Graph.id, Graph.epoch, Graph.state, Graph.priority, Graph.parent_task, Graph.root,
            Graph.depth, GraphDocument.document, Graph.inputs)


def _task_columns() -> tuple[Any, ...]:
    return (Task.id, Task.graph, Task.name, Task.kind, Task.spec, Task.deps, Task.pool,
            Task.state, Task.attempts, Task.not_before, Task.map_of, Task.map_index,
            Task.condition_false)


def _graphs() -> Any:
    """The graphs' columns with their documents (a table of their own: models.GraphDocument)."""
    return Graph.select(*_graph_columns()).join(
        GraphDocument, on=(GraphDocument.graph == Graph.id))


# a tree of one graph (the common case) loads with two precompiled statements
_ONE_GRAPH = Statement(lambda: _graphs().where(
    Graph.id == param("id"), GRAPH_OWNER == param("owner"), GRAPH_STATE.in_(GRAPH_ACTIVE)))
_ONE_GRAPH_TASKS = Statement(lambda: Task.select(*_task_columns()).where(
    Task.graph == param("id")).order_by(Task.id))


def _task_row(row: tuple) -> TaskRow:
    """A row of ``_task_columns()`` as the scheduler holds it."""
    tid, _, name, kind, spec, deps, pool, state, attempts, not_before, map_of, index, cond = row
    return TaskRow(tid, name, kind, spec, loads(deps), pool, state, attempts, not_before,
                   map_of, index, bool(cond))


def _graph_row(g: tuple, tasks: list[TaskRow], child_of: dict[int, int]) -> GraphRow:
    """A row of ``_graph_columns()`` with its tasks, as the scheduler holds it."""
    gid, epoch, state, priority, parent_task, root, depth, document, inputs = g
    return GraphRow(gid, epoch, state, priority, parent_task, root or gid, depth,
                    loads(document), loads(inputs), tasks, child_of)


def load_tree(root_id: int, owner: str) -> list[GraphRow]:
    """Every active graph of the tree rooted at ``root_id`` owned by ``owner``, parents first."""
    out = []
    ids = tree_ids(root_id)
    if len(ids) == 1:
        graph_rows = _ONE_GRAPH.execute(id=root_id, owner=owner).fetchall()
        task_rows = _ONE_GRAPH_TASKS.execute(id=root_id).fetchall() if graph_rows else []
    else:
        graph_rows = list(_graphs().where(
            Graph.id.in_(ids), GRAPH_OWNER == owner, GRAPH_STATE.in_(GRAPH_ACTIVE)).tuples())
        task_rows = list(Task.select(*_task_columns()).where(
            Task.graph.in_([g[0] for g in graph_rows])).order_by(Task.id).tuples())
    graphs = {g[0]: g for g in graph_rows}
    tasks: dict[int, list[TaskRow]] = {gid: [] for gid in graphs}
    for row in task_rows:
        tasks[row[1]].append(_task_row(row))
    task_ids = [t.id for rows in tasks.values() for t in rows if t.kind in ("graph", "build")]
    child_of = {g.parent_task_id: g.id for g in Graph.select(Graph.id, Graph.parent_task).where(
        Graph.parent_task.in_(task_ids))} if task_ids else {}
    for gid in ids:
        g = graphs.get(gid)
        if g is None:
            continue
        out.append(_graph_row(g, tasks[gid], {t.id: child_of[t.id] for t in tasks[gid]
                                              if t.id in child_of}))
    return out


def child_state(graph_id: int) -> tuple[str, Any, Any] | None:
    g = Graph.get_or_none(Graph.id == graph_id)
    return None if g is None else (g.state, loads(g.outputs), loads(g.error))


def _claim() -> Any:
    return Graph.update(
        scheduler=param("owner"), epoch=Graph.epoch + 1,
        state=peewee.Case(None, [(Graph.state == "queued", "running")], Graph.state),
        started=peewee.fn.COALESCE(Graph.started, param("now"))).where(
            Graph.id == param("id"), Graph.parent_task.is_null(), GRAPH_STATE.in_(GRAPH_ACTIVE),
            Graph.scheduler.is_null())


def _claim_in_one_statement() -> Any:
    """The claim, its event-log row and the graph's row as :func:`load_tree` reads it, with
    whether any graph is nested below it (then the tree is read as load_tree reads it)."""
    claimed = _claim().returning(Graph.id, Graph.epoch, Graph.state, Graph.priority,
                                 Graph.parent_task, Graph.root, Graph.depth,
                                 Graph.inputs).cte("claimed")
    logged = LogEntry.insert_from(
        peewee.Select((claimed,), [param("ts"), claimed.c.id, param("kind"), param("owner")]),
        [LogEntry.ts, LogEntry.graph, LogEntry.kind, LogEntry.actor]).returning(
            LogEntry.id).cte("logged")
    document = GraphDocument.select(GraphDocument.document).where(
        GraphDocument.graph == claimed.c.id)
    nested = Graph.select(Graph.id).join(Task, on=(Graph.parent_task == Task.id)).where(
        Task.graph == claimed.c.id)
    return peewee.Select((claimed,), [
        claimed.c.id, claimed.c.epoch, claimed.c.state, claimed.c.priority,
        claimed.c.parent_task_id, claimed.c.root, claimed.c.depth, document, claimed.c.inputs,
        fn.EXISTS(nested)]).with_cte(claimed, logged).bind(Graph._meta.database)


_CLAIM = Statement(_claim)
_CLAIM_AT_ONCE = Statement(_claim_in_one_statement)


def claim(graph_id: int, owner: str, now: float) -> bool:
    """Take an unowned graph (launch message). Nested graphs follow their root."""
    n = _CLAIM.execute(id=graph_id, owner=owner, now=now).rowcount
    if n:
        log_event("graph.claimed", graph_id, actor=owner)
    return bool(n)


def claim_and_load(graph_id: int, owner: str, now: float) -> list[GraphRow] | None:
    """Claim an unowned graph and load its tree in the same transaction (one trip to the
    database thread); None if another scheduler has it or it is no longer active. Where
    the database has writable CTEs, a graph with nothing nested below it yet (a graph just
    submitted) is two statements: the claim with its log row and graph row, its tasks."""
    if capabilities().writable_cte:
        row = _CLAIM_AT_ONCE.execute(owner=owner, now=now, id=graph_id, ts=time.time(),
                                     kind="graph.claimed").fetchone()
        if row is None:
            return None
        if row[-1]:                 # graphs nested below it (held before by a scheduler)
            return load_tree(graph_id, owner)
        tasks = [_task_row(r) for r in _ONE_GRAPH_TASKS.execute(id=graph_id).fetchall()]
        return [_graph_row(row[:-1], tasks, {})]
    if not claim(graph_id, owner, now):
        return None
    return load_tree(graph_id, owner)


def results(graph_id: int, names: list[str]) -> dict[str, Any]:
    return {name: loads(result) for name, result in
            Task.select(Task.name, Task.result).where(Task.graph == graph_id,
                                                      Task.name.in_(names)).tuples()}


_TASK_STATES = ListStatement(lambda ids: Task.select(
    Task.id, Task.state, Task.attempts, Task.not_before).where(Task.id.in_(ids)))


def task_states(task_ids: list[int]) -> dict[int, tuple[str, int, float | None]]:
    """{task: (state, attempts, not_before)} as committed (read on every batch of task ends:
    compiled once, see :class:`~wgops.store.db.ListStatement`)."""
    return {tid: (state, attempts, not_before)
            for tid, state, attempts, not_before in _TASK_STATES.execute(task_ids)}


def current_owner(graph_id: int) -> str | None:
    row = Graph.select(Graph.scheduler).where(Graph.id == graph_id).first()
    return row.scheduler if row else None


def lost_roots(owner: str, held: dict[int, int]) -> list[tuple[int, str | None, int, str]]:
    """Of the root graphs a scheduler holds (id -> the epoch it holds), those the database no
    longer gives it: another owner, none, a newer epoch, or ended. ``(id, owner, epoch,
    state)`` each; a deleted graph has owner None, epoch -1, state "gone"."""
    if not held:
        return []
    rows = {g: (o, e, s) for g, o, e, s in Graph.select(
        Graph.id, Graph.scheduler, Graph.epoch, Graph.state).where(
        Graph.id.in_(list(held))).tuples()}
    out = []
    for gid, epoch in held.items():
        now_owner, now_epoch, state = rows.get(gid, (None, -1, "gone"))
        if now_owner != owner or now_epoch != epoch or state not in GRAPH_ACTIVE:
            out.append((gid, now_owner, now_epoch, state))
    return out
