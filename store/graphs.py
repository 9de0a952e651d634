"""Creating graph rows from a normalised document, and reading graphs back (list, show)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import peewee
from peewee import fn

from wgops.store.db import Statement, capabilities, param
from wgops.store.errors import NotFound
from wgops.store.models import (
    GRAPH_TERMINAL,
    TASK_TERMINAL,
    Graph,
    GraphDocument,
    Pool,
    Task,
    dumps,
    loads,
)

_DOCUMENT = Statement(lambda: GraphDocument.insert(graph=param("graph"),
                                                  document=param("document")))


def merged_inputs(doc: dict[str, Any], inputs: dict[str, Any] | None) -> dict[str, Any]:
    """A graph's inputs: its document's, overridden by those it is given."""
    return {**doc.get("inputs", {}), **(inputs or {})}


def task_values(doc: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """``(name, kind, spec, deps, pool)`` of each task of a normalised document, in its order,
    as the task rows hold them."""
    return [(name, spec["kind"], dumps(spec), dumps(spec["deps"]), spec.get("pool", "default"))
            for name, spec in doc["tasks"].items()]


def create_graph(doc: dict[str, Any], *, priority: int | None = None,
                 parent_task: Task | int | None = None, root: int | None = None, depth: int = 0,
                 owner: str | None = None, inputs: dict[str, Any] | None = None,
                 state: str = "queued") -> Graph:
    """Insert a graph and its tasks (call inside a write transaction)."""
    now = time.time()
    fields = dict(
        name=doc["name"], state=state,
        priority=doc.get("priority", 0) if priority is None else priority,
        scheduler=owner, parent_task=parent_task, depth=depth,
        source=doc.get("source"), inputs=dumps(merged_inputs(doc, inputs)),
        created=now, started=now if state == "running" else None)
    if root is not None:
        graph = Graph.create(root=root, **fields)
    elif capabilities().id_sequence:
        # a top-level graph is its own root: its id drawn in the insert that writes it (an
        # update after the insert would leave a dead copy of the row, document and all)
        drawn = peewee.Select(columns=[fn.nextval(fn.pg_get_serial_sequence(
            Graph._meta.table_name, "id")).alias("id")]).cte("drawn")
        new_id = peewee.Select((drawn,), [drawn.c.id])
        graph_id = Graph.insert(id=new_id, root=new_id, **fields).with_cte(drawn).execute()
        graph = Graph(id=graph_id, root=graph_id, **fields)
    else:
        graph = Graph.create(**fields)
        graph.root = graph.id
        Graph.update(root=graph.id).where(Graph.id == graph.id).execute()
    _DOCUMENT.execute(graph=graph.id, document=dumps(doc))
    rows = [{"graph": graph.id, "name": name, "kind": kind, "spec": spec, "deps": deps,
             "pool": pool, "state": "waiting"} for name, kind, spec, deps, pool in task_values(doc)]
    for start in range(0, len(rows), 500):
        Task.insert_many(rows[start:start + 500]).execute()
    for pool in {row["pool"] for row in rows}:
        _POOL.execute(pool=pool)
    return graph


_POOL = Statement(lambda: Pool.insert(name=param("pool"), max_running=None).on_conflict_ignore())


_CHILDREN = Statement(lambda: Graph.select(Graph.id).join(
    Task, on=(Graph.parent_task == Task.id)).where(Task.graph == param("graph")))


def tree_ids(root_id: int) -> list[int]:
    """The graph and every graph nested below it."""
    ids, frontier = [root_id], [root_id]
    while frontier:
        if len(frontier) == 1:
            children = [row[0] for row in _CHILDREN.execute(graph=frontier[0]).fetchall()]
        else:
            children = [g.id for g in Graph.select(Graph.id).join(
                Task, on=(Graph.parent_task == Task.id)).where(Task.graph.in_(frontier))]
        ids.extend(children)
        frontier = children
    return ids


def get_graph(graph_id: int) -> Graph:
    graph = Graph.get_or_none(Graph.id == graph_id)
    if graph is None:
        raise NotFound(f"no graph {graph_id}")
    return graph


def progress(graph_ids: Iterable[int]) -> dict[int, tuple[int, int]]:
    """``{graph_id: (tasks_total, tasks_done)}`` in one query."""
    ids = list(graph_ids)
    out: dict[int, tuple[int, int]] = {gid: (0, 0) for gid in ids}
    if not ids:
        return out
    done = fn.SUM(peewee.Case(None, [(Task.state.in_(TASK_TERMINAL), 1)], 0))
    query = (Task.select(Task.graph, fn.COUNT(Task.id).alias("total"), done.alias("done"))
             .where(Task.graph.in_(ids)).group_by(Task.graph).tuples())
    for gid, total, ndone in query:
        out[gid] = (int(total), int(ndone or 0))
    return out


def list_graphs(state: str | None = None, limit: int | None = None,
                include_nested: bool = False) -> list[dict[str, Any]]:
    """Rows for ``wgops graph list`` (DESIGN §6), newest first."""
    query = Graph.select().order_by(Graph.id.desc())
    if state:
        query = query.where(Graph.state == state)
    if not include_nested:
        query = query.where(Graph.parent_task.is_null())
    if limit:
        query = query.limit(limit)
    graphs = list(query)
    counts = progress(g.id for g in graphs)
    return [{"id": g.id, "name": g.name, "state": g.state, "priority": g.priority,
             "scheduler": g.scheduler, "tasks_total": counts[g.id][0],
             "tasks_done": counts[g.id][1]} for g in graphs]


def task_json(task: Task) -> dict[str, Any]:
    return {"name": task.name, "state": task.state, "attempts": task.attempts,
            "worker": task.worker, "started": task.started, "finished": task.finished,
            "result": loads(task.result), "error": loads(task.error)}


def show_graph(graph_id: int) -> dict[str, Any]:
    """The document of ``wgops graph show --json`` (DESIGN §6), with reasons and children."""
    graph = get_graph(graph_id)
    tasks = list(Task.select().where(Task.graph == graph.id).order_by(Task.id))
    reasons = waiting_reasons(graph, tasks)
    children = {g.parent_task_id: g.id for g in
                Graph.select(Graph.id, Graph.parent_task)
                .where(Graph.parent_task.in_([t.id for t in tasks
                                              if t.kind in ("graph", "build")]))}
    names = {t.id: t.name for t in tasks}
    copies: dict[int, dict[str, int]] = {}
    for task in tasks:
        if task.map_of is not None:
            count = copies.setdefault(task.map_of, {"total": 0, "done": 0, "failed": 0})
            count["total"] += 1
            count["done"] += task.state in TASK_TERMINAL
            count["failed"] += task.state in ("failed", "killed")
    out_tasks = []
    for task in tasks:
        row = task_json(task)
        row.update({"kind": task.kind, "pool": task.pool, "deps": loads(task.deps),
                    "waiting_for": reasons.get(task.id), "child": children.get(task.id)})
        if task.map_of is not None:              # a copy of a mapped task
            row.update(copy_of=names.get(task.map_of), index=task.map_index)
        elif task.id in copies:                  # a mapped task, expanded
            row["copies"] = copies[task.id]
        if task.condition_false:
            row["condition_false"] = True
        out_tasks.append(row)
    return {"id": graph.id, "name": graph.name, "state": graph.state,
            "priority": graph.priority, "scheduler": graph.scheduler,
            "parent": parent_graph_id(graph), "outputs": loads(graph.outputs),
            "error": loads(graph.error), "created": graph.created, "started": graph.started,
            "finished": graph.finished, "inputs": loads(graph.inputs), "tasks": out_tasks}


def parent_graph_id(graph: Graph) -> int | None:
    if graph.parent_task_id is None:
        return None
    row = Task.select(Task.graph).where(Task.id == graph.parent_task_id).first()
    return row.graph_id if row else None


def waiting_reasons(graph: Graph, tasks: list[Task], now: float | None = None) \
        -> dict[int, str]:
    """Why each non-running, non-terminal task is not running.

    Dependencies and pause are derived from the rows; pool caps and missing workers come from
    the scheduler's stored reason; a queued task waits for a free slot in its pool.
    """
    now = time.time() if now is None else now
    state_of = {t.name: t.state for t in tasks}
    out: dict[int, str] = {}
    for task in tasks:
        if task.state not in ("waiting", "queued"):
            continue
        if graph.state in GRAPH_TERMINAL:
            continue
        pending = [d for d in loads(task.deps) if state_of.get(d) != "finished"]
        if task.state == "waiting" and pending:
            out[task.id] = "waiting for " + ", ".join(pending)
        elif graph.state == "paused":
            out[task.id] = "graph paused"
        elif task.waiting_for:
            out[task.id] = task.waiting_for
        elif task.state == "queued" and task.not_before and task.not_before > now:
            out[task.id] = f"retry in {task.not_before - now:.1f}s"
        elif task.state == "queued":
            out[task.id] = f"queued for a free slot in pool {task.pool}"
        elif graph.state == "queued":
            out[task.id] = "graph not yet claimed by a scheduler"
        else:
            out[task.id] = "ready, about to be queued"
    return out
