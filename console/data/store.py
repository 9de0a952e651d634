"""Database reads for the console, in bounded pages, on one dedicated thread.

peewee connections are per thread; the console keeps one connection on one thread so a read
never waits for a connect, and the event loop never waits for the database. A read that fails
with a database error raises :class:`~store.errors.Unreachable` (the app shows it and keeps the
last picture); the next read reconnects.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Callable
from typing import Any, TypeVar

import peewee
from peewee import fn

from wgops.console.data.model import GraphQuery, GraphRow, GraphsPage, PoolRow
from wgops.store.config import mask_url
from wgops.store.db import Store
from wgops.store.errors import NotFound, Unreachable
from wgops.store.graphs import progress, show_graph
from wgops.store.liveness import database_time
from wgops.store.models import GRAPH_STATES, Graph, Scheduler, Task, Worker, loads
from wgops.store.refs import task_refs
from wgops.store.tasklogs import task_log

T = TypeVar("T")
MAX_TREE_ROWS = 400          # nested graphs are expanded inline up to this many rows
MAX_TREE_DEPTH = 4
MAX_COPY_ROWS = 200          # copies of one mapped task shown when it is expanded
LOG_VIEW_CHARS = 64_000      # the tail of a task's log the task screen shows


class StoreReader:
    """Read-only access to the store for the console."""

    def __init__(self, store: Store):
        self.url = store.url
        self._store = store
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="console-db")

    async def call(self, func: Callable[..., T], *args: Any) -> T:
        """Run ``func(*args)`` on the database thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._guarded, func, args)

    def _guarded(self, func: Callable[..., T], args: tuple) -> T:
        try:
            self._store.connect()
            return func(*args)
        except peewee.DatabaseError as exc:
            self._store.close()
            raise Unreachable(f"database {mask_url(self.url)}: {exc}") from None

    def close(self) -> None:
        def shut() -> None:
            self._store.close()
        self._pool.submit(shut)
        self._pool.shutdown(wait=True)

    async def ping(self) -> bool:
        try:
            await self.call(lambda: Graph.select(Graph.id).limit(1).count())
            return True
        except Unreachable:
            return False

    async def graphs_page(self, query: GraphQuery) -> GraphsPage:
        return await self.call(graphs_page, query)

    async def graph_detail(self, graph_id: int, now: float | None = None,
                           expanded: frozenset[str] = frozenset()) -> dict[str, Any]:
        return await self.call(graph_detail, graph_id, now, expanded)

    async def task_detail(self, graph_id: int, name: str) -> dict[str, Any]:
        return await self.call(task_detail, graph_id, name)

    async def pools(self) -> list[PoolRow]:
        return await self.call(pool_rows)

    async def daemons(self) -> dict[str, Any]:
        return await self.call(daemon_rows)


# -- the queries (run on the database thread) ------------------------------------------------

_SORT = {"id": Graph.id, "name": Graph.name, "state": Graph.state, "priority": Graph.priority,
         "scheduler": Graph.scheduler, "age": Graph.created}


def _filtered(query: GraphQuery) -> Any:
    """Top-level graphs matching the filter text.

    Tokens: a state name or ``state:S``; ``#N`` or a number (id); ``sched:ID``; ``prio:N``;
    anything else matches the name (substring, case-insensitive). Tokens are AND-ed.
    """
    select = Graph.select().where(Graph.parent_task.is_null())
    for token in query.text.split():
        key, _, value = token.partition(":")
        low = token.lower()
        if low in GRAPH_STATES:
            select = select.where(Graph.state == low)
        elif key == "state" and value:
            select = select.where(Graph.state == value.lower())
        elif key in ("sched", "scheduler") and value:
            select = select.where(Graph.scheduler.contains(value))
        elif key in ("prio", "priority") and value.isdigit():
            select = select.where(Graph.priority == int(value))
        elif token.lstrip("#").isdigit():
            select = select.where(Graph.id == int(token.lstrip("#")))
        else:
            select = select.where(Graph.name.contains(token))
    return select


def graphs_page(query: GraphQuery) -> GraphsPage:
    """One bounded page of the graphs table plus the per-state counts: four small queries."""
    base = _filtered(query)
    column = _SORT.get(query.sort, Graph.id)
    order = [column.desc() if query.descending else column.asc(), Graph.id.desc()]
    graphs = list(base.select(Graph.id, Graph.name, Graph.state, Graph.priority,
                              Graph.scheduler, Graph.created)
                  .order_by(*order).limit(query.limit))
    matched = len(graphs) if len(graphs) < query.limit else base.count()
    counts = {state: n for state, n in Graph.select(Graph.state, fn.COUNT(Graph.id))
              .where(Graph.parent_task.is_null()).group_by(Graph.state).tuples()}
    done = progress(g.id for g in graphs)
    rows = tuple(GraphRow(g.id, g.name, g.state, done[g.id][1], done[g.id][0], g.scheduler,
                          g.priority, g.created) for g in graphs)
    return GraphsPage(rows, matched, counts, query)


def lineage(specs: dict[str, dict[str, Any]]) -> dict[str, dict[str, list[str]]]:
    """Which task's result fed which argument: ``{task: {"from": [...], "to": [...]}}``."""
    out: dict[str, dict[str, list[str]]] = {name: {"from": [], "to": []} for name in specs}
    for name, spec in specs.items():
        for where, ref in task_refs(spec):
            out[name]["from"].append(f"{where} ← {str(ref)[2:-1]}")
            if ref.head in out:
                out[ref.head]["to"].append(f"{name} {where}" if where.startswith("(")
                                           else f"{name}.{where}")
        for dep in spec.get("after") or []:
            out[name]["from"].append(f"(after) ← {dep}")
    for links in out.values():                 # a task referenced twice is listed once
        links["from"] = list(dict.fromkeys(links["from"]))
        links["to"] = list(dict.fromkeys(links["to"]))
    return out


def graph_detail(graph_id: int, now: float | None = None,
                 expanded: frozenset[str] = frozenset()) -> dict[str, Any]:
    """``show_graph`` of the graph, its nested graphs flattened into a tree, and lineage. A
    mapped task is one row with its copies' progress; its copies follow it only when its
    key (``graph:name``) is in ``expanded`` (at most ``MAX_COPY_ROWS`` of them)."""
    now = time.time() if now is None else now
    data = show_graph(graph_id)
    specs = {t.name: loads(t.spec) for t in Task.select(Task.name, Task.spec).where(
        Task.graph == graph_id, Task.map_of.is_null())}
    data["lineage"] = lineage(specs)
    rows: list[dict[str, Any]] = []
    _flatten(data, 0, rows, now, expanded)
    data["rows"] = rows
    return data


def _flatten(data: dict[str, Any], depth: int, rows: list[dict[str, Any]], now: float,
             expanded: frozenset[str]) -> None:
    copies: dict[str, list[dict[str, Any]]] = {}
    for task in data["tasks"]:
        if task.get("copy_of") is not None:
            copies.setdefault(task["copy_of"], []).append(task)
    for task in data["tasks"]:
        if len(rows) >= MAX_TREE_ROWS:
            return
        if task.get("copy_of") is not None:
            continue
        rows.append(_row(task, data["id"], depth, now))
        if f"{data['id']}:{task['name']}" in expanded:
            for copy in copies.get(task["name"], [])[:MAX_COPY_ROWS]:
                rows.append(_row(copy, data["id"], depth + 1, now))
        if task.get("child") and depth + 1 < MAX_TREE_DEPTH:
            try:
                child = show_graph(task["child"])
            except NotFound:
                continue
            _flatten(child, depth + 1, rows, now, expanded)


def _row(task: dict[str, Any], graph: int, depth: int, now: float) -> dict[str, Any]:
    started, finished = task["started"], task["finished"]
    took = None if started is None else (finished or now) - started
    return {**task, "graph": graph, "depth": depth, "took": took}


def task_detail(graph_id: int, name: str) -> dict[str, Any]:
    task = Task.get_or_none(Task.graph == graph_id, Task.name == name)
    if task is None:
        raise NotFound(f"no task {name!r} in graph {graph_id}")
    spec = loads(task.spec) or {}
    result = loads(task.result)
    return {"graph": graph_id, "name": task.name, "kind": task.kind, "state": task.state,
            "attempts": task.attempts, "lost": task.lost, "worker": task.worker,
            "pool": task.pool, "spec": spec, "args": loads(task.args),
            "declared_args": spec.get("args"), "result": result, "error": loads(task.error),
            "waiting_for": task.waiting_for, "started": task.started,
            "finished": task.finished, "queued_at": task.queued_at,
            "target": spec.get("run") or spec.get("shell") or (
                f"build: {spec['build']}" if spec.get("build") else "(nested graph)"),
            "copy_of": task.map_of, "index": task.map_index,
            "item": spec.get("item") if task.map_of is not None else None,
            "log": task_log(graph_id, name, tail=LOG_VIEW_CHARS)}


def pool_rows() -> list[PoolRow]:
    from wgops.store.control import pools

    return [PoolRow(p["name"], p["running"], p["queued"], p["max_running"]) for p in pools()]


def daemon_rows() -> dict[str, Any]:
    """Schedulers and workers as the store knows them (heartbeats), for the status fallback,
    with ``db_time``: the database's time, which their heartbeats are judged by."""
    scheds = [{"id": s.id, "pid": s.pid, "host": s.host, "state": s.state, "started": s.started,
               "heartbeat": s.heartbeat, "graphs": s.graphs}
              for s in Scheduler.select().order_by(Scheduler.id)]
    workers = [{"id": w.id, "pid": w.pid, "host": w.host, "state": w.state, "slots": w.slots,
                "busy": w.busy, "pools": loads(w.pools), "started": w.started,
                "heartbeat": w.heartbeat} for w in Worker.select().order_by(Worker.id)]
    return {"schedulers": scheds, "workers": workers, "db_time": database_time()}
