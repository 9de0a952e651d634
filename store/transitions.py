"""The daemons' state transitions, each a compare-and-set inside the caller's transaction.

Scheduler writes are fenced: they first "touch" the graph row on (owner, epoch) — a no-op
update that both checks ownership and, on PostgreSQL, locks the row until commit; a scheduler
that lost the graph (reassigned, killed, adopted by another) changes nothing. Worker writes are
compare-and-set on (state, attempts, worker), so a stale, duplicate or late delivery changes
nothing either.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from typing import Any

import peewee

from store.control import log_event, tree_ids
from store.db import Statement, capabilities, database, param
from store.graphs import create_graph
from store.models import (
    GRAPH_ACTIVE,
    DeadLetter,
    Graph,
    Pool,
    Scheduler,
    Task,
    Worker,
    dumps,
    loads,
)

HOST = socket.gethostname().split(".")[0]


# -- loading ---------------------------------------------------------------------------------

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
            Graph.depth, Graph.document, Graph.inputs)


def _task_columns() -> tuple[Any, ...]:
    return (Task.id, Task.graph, Task.name, Task.kind, Task.spec, Task.deps, Task.pool,
            Task.state, Task.attempts, Task.not_before)


# a tree of one graph (the common case) loads with two precompiled statements
_ONE_GRAPH = Statement(lambda: Graph.select(*_graph_columns()).where(
    Graph.id == param("id"), Graph.scheduler == param("owner"), Graph.state.in_(GRAPH_ACTIVE)))
_ONE_GRAPH_TASKS = Statement(lambda: Task.select(*_task_columns()).where(
    Task.graph == param("id")).order_by(Task.id))


def _task_row(row: tuple) -> TaskRow:
    """A row of ``_task_columns()`` as the scheduler holds it."""
    tid, _, name, kind, spec, deps, pool, state, attempts, not_before = row
    return TaskRow(tid, name, kind, spec, loads(deps), pool, state, attempts, not_before)


def load_tree(root_id: int, owner: str) -> list[GraphRow]:
    """Every active graph of the tree rooted at ``root_id`` owned by ``owner``, parents first."""
    out = []
    ids = tree_ids(root_id)
    if len(ids) == 1:
        graph_rows = _ONE_GRAPH.execute(id=root_id, owner=owner).fetchall()
        task_rows = _ONE_GRAPH_TASKS.execute(id=root_id).fetchall() if graph_rows else []
    else:
        graph_rows = list(Graph.select(*_graph_columns()).where(
            Graph.id.in_(ids), Graph.scheduler == owner, Graph.state.in_(GRAPH_ACTIVE)).tuples())
        task_rows = list(Task.select(*_task_columns()).where(
            Task.graph.in_([g[0] for g in graph_rows])).order_by(Task.id).tuples())
    graphs = {g[0]: g for g in graph_rows}
    tasks: dict[int, list[TaskRow]] = {gid: [] for gid in graphs}
    for row in task_rows:
        tasks[row[1]].append(_task_row(row))
    task_ids = [t.id for rows in tasks.values() for t in rows if t.kind == "graph"]
    child_of = {g.parent_task_id: g.id for g in Graph.select(Graph.id, Graph.parent_task).where(
        Graph.parent_task.in_(task_ids))} if task_ids else {}
    for gid in ids:
        g = graphs.get(gid)
        if g is None:
            continue
        _, epoch, state, priority, parent_task, root, depth, document, inputs = g
        out.append(GraphRow(gid, epoch, state, priority, parent_task, root or gid, depth,
                            loads(document), loads(inputs), tasks[gid],
                            {t.id: child_of[t.id] for t in tasks[gid] if t.id in child_of}))
    return out


def child_state(graph_id: int) -> tuple[str, Any, Any] | None:
    g = Graph.get_or_none(Graph.id == graph_id)
    return None if g is None else (g.state, loads(g.outputs), loads(g.error))


_CLAIM = Statement(lambda: Graph.update(
    scheduler=param("owner"), epoch=Graph.epoch + 1,
    state=peewee.Case(None, [(Graph.state == "queued", "running")], Graph.state),
    started=peewee.fn.COALESCE(Graph.started, param("now"))).where(
        Graph.id == param("id"), Graph.parent_task.is_null(), Graph.state.in_(GRAPH_ACTIVE),
        Graph.scheduler.is_null()))


def claim(graph_id: int, owner: str, now: float) -> bool:
    """Take an unowned graph (launch message). Nested graphs follow their root."""
    n = _CLAIM.execute(id=graph_id, owner=owner, now=now).rowcount
    if n:
        log_event("graph.claimed", graph_id, actor=owner)
    return bool(n)


def claim_and_load(graph_id: int, owner: str, now: float) -> list[GraphRow] | None:
    """Claim an unowned graph and load its tree in the same transaction (one trip to the
    database thread); None if another scheduler has it or it is no longer active."""
    if not claim(graph_id, owner, now):
        return None
    return load_tree(graph_id, owner)


def results(graph_id: int, names: list[str]) -> dict[str, Any]:
    return {name: loads(result) for name, result in
            Task.select(Task.name, Task.result).where(Task.graph == graph_id,
                                                      Task.name.in_(names)).tuples()}


def task_states(task_ids: list[int]) -> dict[int, tuple[str, int]]:
    return {tid: (state, attempts) for tid, state, attempts in
            Task.select(Task.id, Task.state, Task.attempts).where(Task.id.in_(task_ids)).tuples()}


# -- scheduler writes (fenced) ----------------------------------------------------------------

_FENCES: dict[tuple[str, ...], Statement] = {}


def fence(graph_id: int, owner: str, epoch: int, states: tuple[str, ...] = ("running",)) -> bool:
    states = tuple(states)
    statement = _FENCES.get(states)
    if statement is None:
        statement = _FENCES[states] = Statement(lambda: Graph.update(epoch=Graph.epoch).where(
            Graph.id == param("id"), Graph.scheduler == param("owner"),
            Graph.epoch == param("epoch"), Graph.state.in_(states)))
    return bool(statement.execute(id=graph_id, owner=owner, epoch=epoch).rowcount)


def _lock_pool() -> Any:
    return Pool.update(max_running=Pool.max_running).where(Pool.name == param("pool"))


_LOCK_POOL = Statement(_lock_pool)
_POOL_CAP = Statement(lambda: Pool.select(Pool.max_running).where(Pool.name == param("pool")))
# lock and read in one statement where the database returns rows from an update
_LOCK_POOL_CAP = Statement(lambda: _lock_pool().returning(Pool.max_running))


def pool_room(pool: str) -> tuple[int | None, int]:
    """(cap, active) of a pool, the pool row locked for the rest of the transaction."""
    if capabilities().returning:
        row = _LOCK_POOL_CAP.execute(pool=pool).fetchone()
    else:
        _LOCK_POOL.execute(pool=pool)
        row = _POOL_CAP.execute(pool=pool).fetchone()
    cap = None if row is None else row[0]
    if cap is None:
        return None, 0
    active = Task.select().where(Task.pool == pool, Task.state.in_(("queued", "running"))).count()
    return cap, active


_QUEUE = Statement(lambda: Task.update(
    state="queued", queued_at=param("now"), args=param("args"), waiting_for=None).where(
        Task.id == param("id"), Task.state == "waiting"))
QUEUE_CHUNK = 250           # tasks per batched update (two parameters each at most)


def queue_tasks(items: list[tuple[int, str]], now: float) -> list[int]:
    """Move tasks ``(id, args_json)`` waiting -> queued; return the ids that moved.

    Where the database returns rows from an update, a chunk of tasks is one statement (on
    PostgreSQL every statement is a round trip): the same compare-and-set as ``_QUEUE``, with
    each task's arguments picked by a ``CASE`` (or one value when they are all the same).
    """
    if not capabilities().returning:
        return [task_id for task_id, args in items
                if _QUEUE.execute(id=task_id, now=now, args=args).rowcount]
    db = database.obj
    p = db.param
    queued: list[int] = []
    for start in range(0, len(items), QUEUE_CHUNK):
        chunk = items[start:start + QUEUE_CHUNK]
        distinct = {args for _, args in chunk}
        params: list[Any] = [now]
        if len(distinct) == 1:
            args_sql = p
            params.append(chunk[0][1])
        else:
            args_sql = "CASE \"id\"" + f" WHEN {p} THEN {p}" * len(chunk) + " END"
            for task_id, args in chunk:
                params += [task_id, args]
        params += [task_id for task_id, _ in chunk]
        sql = (f'UPDATE "task" SET "state" = \'queued\', "queued_at" = {p}, '
               f'"args" = {args_sql}, "waiting_for" = NULL '
               f'WHERE "id" IN ({", ".join([p] * len(chunk))}) AND "state" = \'waiting\' '
               'RETURNING "id"')
        queued.extend(row[0] for row in db.execute_sql(sql, params).fetchall())
    return queued


def dispatch(graph_id: int, owner: str, epoch: int, items: list[tuple[int, str, str]],
             now: float) -> tuple[bool, list[int], dict[int, str]]:
    """Move ready tasks ``(id, pool, args_json)`` waiting -> queued within pool caps.

    Returns (still owned, ids queued, {id: reason} of the tasks held back by a pool cap).
    """
    if not fence(graph_id, owner, epoch):
        return False, [], {}
    queued: list[int] = []
    held: dict[int, str] = {}
    by_pool: dict[str, list[tuple[int, str]]] = {}
    for task_id, pool, args in items:
        by_pool.setdefault(pool, []).append((task_id, args))
    for pool, pool_items in by_pool.items():
        cap, active = pool_room(pool)
        if cap is not None:
            room = max(0, cap - active)
            for task_id, _ in pool_items[room:]:
                held[task_id] = f"pool {pool} at its cap ({cap}/{cap} running or queued)"
            pool_items = pool_items[:room]
        queued.extend(queue_tasks(pool_items, now))
    for task_id, reason in held.items():
        Task.update(waiting_for=reason).where(Task.id == task_id, Task.state == "waiting",
                                              (Task.waiting_for.is_null()) |
                                              (Task.waiting_for != reason)).execute()
    return True, queued, held


def note_reason(task_ids: list[int], reason: str | None) -> None:
    Task.update(waiting_for=reason).where(Task.id.in_(task_ids),
                                          Task.state.in_(("waiting", "queued"))).execute()


UNSERVED = "no live worker serves pool "


def clear_unserved(pools: list[str]) -> None:
    """A worker for these pools came up: their queued tasks now wait for a slot, not a worker."""
    Task.update(waiting_for=None).where(Task.pool.in_(pools), Task.state == "queued",
                                        Task.waiting_for.startswith(UNSERVED)).execute()


def skip(graph_id: int, owner: str, epoch: int, task_ids: list[int], because: str,
         now: float) -> bool:
    if not fence(graph_id, owner, epoch, ("running", "paused")):
        return False
    Task.update(state="skipped", finished=now, waiting_for=None,
                error=dumps({"type": "Skipped", "message": f"skipped: {because} did not finish",
                             "traceback": None})).where(
        Task.id.in_(task_ids), Task.state.in_(("waiting",))).execute()
    return True


def fail_in_scheduler(graph_id: int, owner: str, epoch: int, task_id: int, error: dict,
                      now: float) -> bool:
    """A task the scheduler cannot dispatch (a reference to a missing key): failed."""
    if not fence(graph_id, owner, epoch):
        return False
    Task.update(state="failed", finished=now, error=dumps(error)).where(
        Task.id == task_id, Task.state.in_(("waiting", "queued", "running"))).execute()
    log_event("task.failed", graph_id, task_id, actor=owner)
    return True


def spawn_child(graph_id: int, owner: str, epoch: int, task_id: int, doc: dict[str, Any],
                inputs: dict[str, Any], priority: int, root: int, depth: int,
                now: float) -> GraphRow | None:
    """Start a nested-graph task: its row -> running, a child graph owned by ``owner``;
    returns the child as :func:`load_tree` would load it (None: the graph is not ours)."""
    if not fence(graph_id, owner, epoch):
        return None
    n = Task.update(state="running", started=now, attempts=Task.attempts + 1, worker=None,
                    args=dumps(inputs), waiting_for=None).where(
        Task.id == task_id, Task.state.in_(("waiting", "queued"))).execute()
    if not n:
        return None
    child = create_graph(doc, priority=priority, parent_task=task_id, root=root,
                         depth=depth + 1, owner=owner, inputs=inputs, state="running")
    # what load_tree would read back, without reading the graph row we just wrote
    tasks = [_task_row(row) for row in _ONE_GRAPH_TASKS.execute(id=child.id).fetchall()]
    return GraphRow(child.id, child.epoch, child.state, child.priority, task_id, root,
                    depth + 1, doc, loads(child.inputs), tasks, {})


def _complete() -> Any:
    return Graph.update(
        state=param("state"), outputs=param("outputs"), error=param("error"),
        finished=param("now")).where(
            Graph.id == param("id"), Graph.scheduler == param("owner"),
            Graph.epoch == param("epoch"), Graph.state.in_(("running", "paused")))


_COMPLETE = Statement(_complete)
_COMPLETE_RETURNING = Statement(lambda: _complete().returning(Graph.parent_task))
_PARENT_TASK = Statement(lambda: Graph.select(Graph.parent_task).where(Graph.id == param("id")))


def complete_graph(graph_id: int, owner: str, epoch: int, state: str, outputs: Any,
                   error: dict | None, now: float) -> bool:
    """Close a graph; a nested graph also closes the task that spawned it."""
    values = dict(id=graph_id, owner=owner, epoch=epoch, state=state,
                  outputs=None if outputs is None else dumps(outputs),
                  error=None if error is None else dumps(error), now=now)
    if capabilities().returning:
        row = _COMPLETE_RETURNING.execute(**values).fetchone()
        if row is None:
            return False
        parent_task = row[0]
    else:
        if not _COMPLETE.execute(**values).rowcount:
            return False
        parent_task = _PARENT_TASK.execute(id=graph_id).fetchone()[0]
    if parent_task is not None:
        task_state = "finished" if state == "finished" else "failed"
        Task.update(state=task_state, finished=now,
                    result=dumps(outputs) if state == "finished" else None,
                    error=None if state == "finished" else dumps(
                        error or {"type": "GraphFailed", "message": f"nested graph {graph_id} "
                                  f"{state}", "traceback": None})).where(
            Task.id == parent_task, Task.state == "running").execute()
    log_event(f"graph.{state}", graph_id, actor=owner)
    return True


def heartbeat_scheduler(sid: str, pid: int, graphs: int, now: float, state: str = "running") \
        -> None:
    n = Scheduler.update(heartbeat=now, graphs=graphs, state=state).where(
        Scheduler.id == sid).execute()
    if not n:
        row = {"id": sid, "host": HOST, "pid": pid, "state": state, "started": now,
               "heartbeat": now, "graphs": graphs}
        Scheduler.insert(row).on_conflict(conflict_target=[Scheduler.id],
                                          update=row).execute()


def dead_schedulers(me: str, stale_after: float, now: float) -> list[str]:
    return [s.id for s in Scheduler.select(Scheduler.id).where(
        Scheduler.id != me, Scheduler.state.in_(("running", "stopping")),
        Scheduler.heartbeat < now - stale_after)]


def adopt(dead: str, me: str, now: float) -> list[int]:
    """Take every live graph of scheduler ``dead``; return the root ids."""
    roots = [g.id for g in Graph.select(Graph.id).where(
        Graph.scheduler == dead, Graph.state.in_(GRAPH_ACTIVE), Graph.parent_task.is_null())]
    Graph.update(scheduler=me, epoch=Graph.epoch + 1).where(
        Graph.scheduler == dead, Graph.state.in_(GRAPH_ACTIVE)).execute()
    Scheduler.update(state="dead").where(Scheduler.id == dead).execute()
    for gid in roots:
        log_event("graph.adopted", gid, actor=me, **{"from": dead})
    return roots


def orphans(older_than: float) -> list[int]:
    """Unclaimed root graphs whose launch message may be lost."""
    return [g.id for g in Graph.select(Graph.id).where(
        Graph.scheduler.is_null(), Graph.state.in_(("queued", "running")),
        Graph.parent_task.is_null(), Graph.created < older_than)]


def release(owner: str, now: float) -> list[tuple[int, int]]:
    """A stopping scheduler hands its graphs back: (root id, priority) to relaunch."""
    roots = [(g.id, g.priority) for g in Graph.select(Graph.id, Graph.priority).where(
        Graph.scheduler == owner, Graph.state.in_(GRAPH_ACTIVE), Graph.parent_task.is_null())]
    Graph.update(scheduler=None, epoch=Graph.epoch + 1).where(
        Graph.scheduler == owner, Graph.state.in_(GRAPH_ACTIVE)).execute()
    Scheduler.update(state="stopped", heartbeat=now, graphs=0).where(
        Scheduler.id == owner).execute()
    for gid, _ in roots:
        log_event("graph.released", gid, actor=owner)
    return roots


def current_owner(graph_id: int) -> str | None:
    row = Graph.select(Graph.scheduler).where(Graph.id == graph_id).first()
    return row.scheduler if row else None


def live_pools(stale_after: float, now: float) -> tuple[dict[str, int | None], set[str]]:
    """({pool: cap}, pools served by a live worker)."""
    caps = {p.name: p.max_running for p in Pool.select()}
    served: set[str] = set()
    for w in Worker.select(Worker.pools).where(Worker.state == "running",
                                              Worker.heartbeat >= now - stale_after):
        served.update(loads(w.pools))
    return caps, served


# -- worker writes ----------------------------------------------------------------------------

def start(task_id: int, attempt: int, worker: str, redelivered: bool, max_lost: int,
          stale_after: float, now: float) -> tuple[str, Any]:
    """Begin attempt ``attempt + 1``. Returns one of:

    ``("run", attempts)``, ``("wait", None)`` (the previous worker may still be alive),
    ``("drop", state)`` (stale or duplicate), ``("quarantined", owner)``.
    """
    # the common case first: one compare-and-set, no read
    if _START.execute(id=task_id, attempt=attempt, next=attempt + 1, worker=worker,
                      now=now).rowcount:
        return "run", attempt + 1
    row = Task.select(Task.state, Task.attempts, Task.worker, Task.lost, Task.graph).where(
        Task.id == task_id).first()
    if row is None:
        return "drop", None
    if row.state == "queued" and row.attempts == attempt:
        n = Task.update(state="running", attempts=attempt + 1, worker=worker, started=now,
                        finished=None, waiting_for=None, detached=None).where(
            Task.id == task_id, Task.state == "queued", Task.attempts == attempt).execute()
        return ("run", attempt + 1) if n else ("drop", "raced")
    if row.state == "running" and row.worker == worker and row.attempts == attempt + 1:
        # our own start, committed though its reply was lost (the write was retried); the
        # worker checked that it is not executing this task
        return "run", attempt + 1
    if row.state != "running" or not redelivered or row.attempts < attempt + 1:
        return "drop", row.state
    if row.worker and row.worker != worker:
        prev = Worker.get_or_none(Worker.id == row.worker)
        if prev is not None and prev.state == "running" and prev.heartbeat >= now - stale_after:
            return "wait", None
    if row.lost + 1 >= max_lost:
        if not quarantine(task_id, row.graph_id, row.attempts, row.lost + 1, row.worker,
                          worker, now):
            return "drop", "raced"
        return "quarantined", current_owner(row.graph_id)
    n = Task.update(state="running", attempts=row.attempts + 1, lost=row.lost + 1, worker=worker,
                    started=now, detached=None).where(Task.id == task_id,
                                                      Task.state == "running",
                                                      Task.attempts == row.attempts).execute()
    return ("run", row.attempts + 1) if n else ("drop", "raced")


def quarantine(task_id: int, graph_id: int, attempts: int, lost: int, last_worker: str | None,
               actor: str, now: float) -> bool:
    """A task that lost its worker ``lost`` times: failed, with a dead letter and an event."""
    error = {"type": "Quarantined", "message": f"lost its worker {lost} times "
             f"(last: {last_worker}); quarantined", "traceback": None}
    n = Task.update(state="failed", finished=now, lost=lost, detached=None,
                    error=dumps(error)).where(Task.id == task_id, Task.state == "running",
                                              Task.attempts == attempts).execute()
    if not n:
        return False
    DeadLetter.insert(ts=now, queue="quarantine", reason=error["message"], daemon=actor,
                      body=dumps({"task": task_id, "graph": graph_id})).execute()
    log_event("task.quarantined", graph_id, task_id, actor=actor)
    return True


def detach(task_id: int, attempts: int, worker: str, now: float) -> bool:
    """A long task's message is about to be acked before the broker's consumer_timeout: from
    now on only the database knows it runs (the scheduler's liveness check watches it)."""
    return bool(Task.update(detached=now).where(
        Task.id == task_id, Task.state == "running", Task.attempts == attempts,
        Task.worker == worker).execute())


def lost_detached(owner: str, dead_after: float, now: float) -> list[tuple[int, int, int, str]]:
    """Detached tasks of ``owner``'s graphs whose worker is dead or gone:
    ``(task, graph, attempts, worker)``. No message of theirs is in flight."""
    return list(Task.select(Task.id, Task.graph, Task.attempts, Task.worker)
                .join(Graph, on=(Task.graph == Graph.id))
                .switch(Task).join(Worker, peewee.JOIN.LEFT_OUTER, on=(Task.worker == Worker.id))
                .where(Task.state == "running", Task.detached.is_null(False),
                       Graph.scheduler == owner,
                       Worker.id.is_null() | (Worker.state != "running")
                       | (Worker.heartbeat < now - dead_after)).tuples())


def requeue_lost(task_id: int, attempts: int, worker: str, max_lost: int, now: float,
                 actor: str = "liveness-check", detached_only: bool = True) -> str:
    """A task running on a dead worker (by default: a detached one, which no redelivery will
    bring back): ``queued`` again (lost + 1), or quarantined at ``max_lost``.
    Returns ``queued``, ``quarantined`` or ``raced`` (it moved on meanwhile)."""
    where = [Task.id == task_id, Task.state == "running", Task.attempts == attempts,
             Task.worker == worker]
    if detached_only:
        where.append(Task.detached.is_null(False))
    row = Task.select(Task.lost, Task.graph).where(*where).first()
    if row is None:
        return "raced"
    if row.lost + 1 >= max_lost:
        return "quarantined" if quarantine(task_id, row.graph_id, attempts, row.lost + 1,
                                           worker, actor, now) else "raced"
    n = Task.update(state="queued", lost=row.lost + 1, worker=None, detached=None,
                    queued_at=now).where(*where).execute()
    if n:
        log_event("task.requeued", row.graph_id, task_id, actor=actor,
                  reason=f"lost its worker {worker}")
    return "queued" if n else "raced"


_START = Statement(lambda: Task.update(
    state="running", attempts=param("next"), worker=param("worker"), started=param("now"),
    finished=None, waiting_for=None, detached=None).where(
        Task.id == param("id"), Task.state == "queued", Task.attempts == param("attempt")))
_ATTEMPT = (Task.id == param("id")) & (Task.state == "running") & \
    (Task.attempts == param("attempts")) & (Task.worker == param("worker"))
_FINISH = Statement(lambda: Task.update(
    state=param("state"), error=param("error"), finished=param("now"),
    result=param("result")).where(_ATTEMPT))
_RETRY = Statement(lambda: Task.update(
    state=param("state"), error=param("error"), not_before=param("not_before"),
    queued_at=param("now"), detached=None).where(_ATTEMPT))
_GRAPH_OWNER = Statement(lambda: Graph.select(Graph.id, Graph.scheduler).join(
    Task, on=(Task.graph == Graph.id)).where(Task.id == param("id")))


def finish(task_id: int, attempts: int, worker: str, state: str, result: str | None,
           error: dict | None, not_before: float | None, now: float) -> str | None | bool:
    """Commit the outcome of an attempt; returns the graph's current owner (None if unowned)
    or False when the attempt was superseded (killed, re-run elsewhere)."""
    if state != "queued" and capabilities().writable_cte:
        return _finish_in_one_trip(task_id, attempts, worker, state, result, error, now)
    statement = _RETRY if state == "queued" else _FINISH
    if not statement.execute(id=task_id, attempts=attempts, worker=worker, state=state,
                             error=None if error is None else dumps(error), result=result,
                             not_before=not_before, now=now).rowcount:
        return False
    graph_id, owner = _GRAPH_OWNER.execute(id=task_id).fetchone()
    if state in ("finished", "failed"):
        log_event(f"task.{state}", graph_id, task_id, actor=worker)
    return owner


# finish + event log + owner read as one statement: on PostgreSQL each statement is a round trip
# to the server, and these are the worker's hottest (same columns as _FINISH, _ATTEMPT,
# _GRAPH_OWNER and log_event)
_FINISH_CTE = (
    'WITH done AS (UPDATE "task" SET "state" = {p}, "error" = {p}, "finished" = {p}, '
    '"result" = {p} WHERE "id" = {p} AND "state" = \'running\' AND "attempts" = {p} '
    'AND "worker" = {p} RETURNING "graph_id"), '
    'logged AS (INSERT INTO "event" ("ts", "graph", "task", "kind", "actor") '
    'SELECT {p}, "graph_id", {p}, {p}, {p} FROM done) '
    'SELECT "graph"."scheduler" FROM "graph" JOIN done ON "graph"."id" = done."graph_id"')


def _finish_in_one_trip(task_id: int, attempts: int, worker: str, state: str,
                        result: str | None, error: dict | None, now: float) -> str | None | bool:
    db = database.obj
    row = db.execute_sql(_FINISH_CTE.format(p=db.param), [
        state, None if error is None else dumps(error), now, result, task_id, attempts, worker,
        time.time(), task_id, f"task.{state}", worker]).fetchone()
    return False if row is None else row[0]


def heartbeat_worker(wid: str, pid: int, slots: int, pools: list[str], executing: list[int],
                     now: float, state: str = "running") -> None:
    n = Worker.update(heartbeat=now, busy=len(executing), executing=dumps(executing),
                      state=state).where(Worker.id == wid).execute()
    if not n:
        row = {"id": wid, "host": HOST, "pid": pid, "state": state, "slots": slots,
               "pools": dumps(pools), "busy": len(executing), "executing": dumps(executing),
               "started": now, "heartbeat": now}
        Worker.insert(row).on_conflict(conflict_target=[Worker.id], update=row).execute()


def record_dead_letter(queue: str, reason: str, body: str, daemon: str, now: float) -> None:
    DeadLetter.insert(ts=now, queue=queue, reason=reason, body=body[:20_000],
                      daemon=daemon).execute()
