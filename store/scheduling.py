"""The scheduler's writes, each fenced by the graph's owner and epoch.

Every write first checks the graph row on (owner, epoch) and locks it until commit — so a
scheduler that lost the graph (reassigned, killed, adopted by another) changes nothing. On
PostgreSQL the lock is ``SELECT ... FOR NO KEY UPDATE``, the lock an update of the row takes
(every change of owner is one, so it waits for the fence's commit, and a fence waiting for it
re-reads the row it changed), without the new version of the row a no-op update writes: a
graph row carries its document, and a version per dispatch filled the table with dead ones
that every scan of it read. On SQLite, whose write transactions exclude each other, the fence
is a no-op update. Each runs inside the caller's write transaction.
"""

from __future__ import annotations

import time
from typing import Any

import peewee
from peewee import fn

from wgops.store import spawning
from wgops.store.db import Statement, capabilities, lead_alone, lead_in_transaction, param
from wgops.store.eventlog import log_event
from wgops.store.graphs import create_graph
from wgops.store.loading import _ONE_GRAPH_TASKS, GraphRow, _task_row
from wgops.store.models import (
    GRAPH_OWNER,
    GRAPH_STATE,
    TASK_ACTIVE,
    TASK_STATE,
    Graph,
    LogEntry,
    Pool,
    Task,
    dumps,
    loads,
)

_FENCES: dict[tuple[tuple[str, ...], str | None], Statement] = {}


def fence(graph_id: int, owner: str, epoch: int, states: tuple[str, ...] = ("running",)) -> bool:
    """Is the graph still ``owner``'s at ``epoch`` (in one of ``states``)? If so its row is
    locked until the transaction ends."""
    lock = capabilities().row_lock
    key = (tuple(states), lock)
    statement = _FENCES.get(key)
    if statement is None:
        def build() -> Any:
            where = (Graph.id == param("id"), GRAPH_OWNER == param("owner"),
                     Graph.epoch == param("epoch"), GRAPH_STATE.in_(key[0]))
            if lock:
                return Graph.select(Graph.id).where(*where).for_update(lock)
            return Graph.update(epoch=Graph.epoch).where(*where)
        statement = _FENCES[key] = Statement(build)
    cursor = statement.execute(id=graph_id, owner=owner, epoch=epoch)
    return cursor.fetchone() is not None if lock else bool(cursor.rowcount)


def _lock_pool() -> Any:
    return Pool.update(max_running=Pool.max_running).where(Pool.name == param("pool"))


_LOCK_POOL = Statement(_lock_pool)
_POOL_CAP = Statement(lambda: Pool.select(Pool.max_running).where(Pool.name == param("pool")))
# lock and read in one statement: a locking read, or an update that returns rows
_LOCK_POOL_CAP = Statement(lambda: _lock_pool().returning(Pool.max_running))
_POOL_CAP_LOCKED: dict[str, Statement] = {}


def pool_room(pool: str) -> tuple[int | None, int]:
    """(cap, active) of a pool, the pool row locked for the rest of the transaction."""
    lock = capabilities().row_lock
    if lock:
        statement = _POOL_CAP_LOCKED.get(lock)
        if statement is None:
            statement = _POOL_CAP_LOCKED[lock] = Statement(lambda: Pool.select(
                Pool.max_running).where(Pool.name == param("pool")).for_update(lock))
        row = statement.execute(pool=pool).fetchone()
    elif capabilities().returning:
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
        Task.id == param("id"), TASK_STATE == "waiting"))
QUEUE_CHUNK = 250           # tasks per batched update (two parameters each at most)


def _queue_chunk(size: int, one_args: bool) -> Statement:
    """``size`` tasks waiting -> queued in one ``UPDATE ... RETURNING``: the compare-and-set
    of ``_QUEUE`` for many rows, each task's arguments picked by a ``CASE`` (or one value when
    the chunk's arguments are all the same). Compiled once per shape."""
    key = (size, one_args)
    statement = _QUEUE_CHUNKS.get(key)
    if statement is None:
        statement = _QUEUE_CHUNKS[key] = Statement(
            lambda: _queueing(size, one_args).returning(Task.id))
    return statement


_QUEUE_CHUNKS: dict[tuple[int, bool], Statement] = {}


def _queueing(size: int, one_args: bool, *conditions: Any) -> Any:
    """The update of a chunk: tasks ``id0``.. waiting -> queued at ``now`` with their
    arguments (``args``, or ``args0``.. by a ``CASE``), where ``conditions`` hold too."""
    ids = [param(f"id{i}") for i in range(size)]
    args = param("args") if one_args else peewee.Case(
        Task.id, [(ids[i], param(f"args{i}")) for i in range(size)])
    return Task.update(state="queued", queued_at=param("now"), args=args,
                       waiting_for=None).where(Task.id.in_(ids), TASK_STATE == "waiting",
                                               *conditions)


def _chunk_values(chunk: list[tuple[int, str]]) -> tuple[bool, dict[str, Any]]:
    """Whether a chunk's tasks ``(id, args_json)`` share their arguments, and the
    parameters of :func:`_queueing` for it."""
    one_args = len({args for _, args in chunk}) == 1
    values: dict[str, Any] = {f"id{i}": task_id for i, (task_id, _) in enumerate(chunk)}
    if one_args:
        values["args"] = chunk[0][1]
    else:
        values.update((f"args{i}", args) for i, (_, args) in enumerate(chunk))
    return one_args, values


def queue_tasks(items: list[tuple[int, str]], now: float) -> list[int]:
    """Move tasks ``(id, args_json)`` waiting -> queued; return the ids that moved.

    Where the database returns rows from an update, a chunk of tasks is one statement (on
    PostgreSQL every statement is a round trip); otherwise one statement per task.
    """
    if not capabilities().returning:
        return [task_id for task_id, args in items
                if _QUEUE.execute(id=task_id, now=now, args=args).rowcount]
    queued: list[int] = []
    for start in range(0, len(items), QUEUE_CHUNK):
        chunk = items[start:start + QUEUE_CHUNK]
        one_args, values = _chunk_values(chunk)
        cursor = _queue_chunk(len(chunk), one_args).execute(now=now, **values)
        queued.extend(row[0] for row in cursor.fetchall())
    return queued


def _one_trip(size: int, one_args: bool, pools: int) -> Statement:
    """The fence, the pools' caps and ``size`` tasks waiting -> queued, as one statement: the
    graph row locked as :func:`fence` locks it; the pool rows ``FOR SHARE`` (a change of a
    cap, or a dispatch that counts a capped pool's room, waits for this one's commit;
    dispatches to pools without a cap do not wait for each other); the tasks queued only if
    the graph is still the owner's and none of the pools has a cap. One row per task queued
    (or one with a NULL id), each with the fence's verdict and the count of capped pools."""
    key = (size, one_args, pools)
    statement = _ONE_TRIPS.get(key)
    if statement is None:
        def build() -> Any:
            owned = Graph.select(Graph.id).where(
                Graph.id == param("graph"), GRAPH_OWNER == param("owner"),
                Graph.epoch == param("epoch"), GRAPH_STATE == "running").for_update(
                    capabilities().row_lock).cte("owned")
            caps = Pool.select(Pool.max_running).where(Pool.name.in_(
                [param(f"pool{i}") for i in range(pools)])).for_update("FOR SHARE").cte("caps")
            capped = 'FROM "caps" WHERE "max_running" IS NOT NULL'
            queued = _queueing(size, one_args, fn.EXISTS(peewee.SQL('SELECT 1 FROM "owned"')),
                               ~fn.EXISTS(peewee.SQL(f"SELECT 1 {capped}"))).returning(
                                   Task.id).cte("queued")
            return peewee.Select(columns=[
                peewee.SQL('(SELECT count(*) FROM "owned")'),
                peewee.SQL(f"(SELECT count(*) {capped})"), queued.c.id]).from_(
                    peewee.SQL("(SELECT 1) AS one")).join(
                        queued, peewee.JOIN.LEFT_OUTER, on=peewee.SQL("true")).with_cte(
                            owned, caps, queued).bind(Task._meta.database)
        statement = _ONE_TRIPS[key] = Statement(build)
    return statement


_ONE_TRIPS: dict[tuple[int, bool, int], Statement] = {}


def _dispatch_in_one_trip(graph_id: int, owner: str, epoch: int,
                          items: list[tuple[int, str, str]],
                          now: float) -> tuple[bool, list[int], dict[int, str]] | None:
    """:func:`dispatch` as one statement, or None (having changed nothing) when a pool of
    the tasks has a cap: its room is counted the long way."""
    pools = sorted({pool for _, pool, _ in items})
    one_args, values = _chunk_values([(task_id, args) for task_id, _, args in items])
    values.update((f"pool{i}", pool) for i, pool in enumerate(pools))
    rows = _one_trip(len(items), one_args, len(pools)).execute(
        graph=graph_id, owner=owner, epoch=epoch, now=now, **values).fetchall()
    owned, capped = rows[0][0], rows[0][1]
    if not owned:
        return False, [], {}
    if capped:
        return None
    return True, [row[2] for row in rows if row[2] is not None], {}


@lead_alone
def dispatch(graph_id: int, owner: str, epoch: int, items: list[tuple[int, str, str]],
             now: float) -> tuple[bool, list[int], dict[int, str]]:
    """Move ready tasks ``(id, pool, args_json)`` waiting -> queued within pool caps.

    Returns (still owned, ids queued, {id: reason} of the tasks held back by a pool cap).
    Where the database has writable CTEs and locking reads, a dispatch of up to
    ``QUEUE_CHUNK`` tasks to pools without a cap is one statement (on PostgreSQL, one round
    trip where the write is a transaction of its own); otherwise the fence, each pool's room
    and the chunked updates, in the caller's transaction.
    """
    caps = capabilities()
    if caps.writable_cte and caps.row_lock and 0 < len(items) <= QUEUE_CHUNK:
        done = _dispatch_in_one_trip(graph_id, owner, epoch, items, now)
        if done is not None:
            return done
        # a pool with a cap: that statement changed nothing; what follows is a transaction
    else:
        lead_in_transaction()       # the fence's lock must hold until the writes are done
    if not fence(graph_id, owner, epoch):
        return False, [], {}
    queued: list[int] = []
    capped: dict[int, str] = {}
    by_pool: dict[str, list[tuple[int, str]]] = {}
    for task_id, pool, args in items:
        by_pool.setdefault(pool, []).append((task_id, args))
    for pool, pool_items in by_pool.items():
        cap, active = pool_room(pool)
        if cap is not None:
            room = max(0, cap - active)
            for task_id, _ in pool_items[room:]:
                capped[task_id] = f"pool {pool} at its cap ({cap}/{cap} running or queued)"
            pool_items = pool_items[:room]
        queued.extend(queue_tasks(pool_items, now))
    for task_id, reason in capped.items():
        Task.update(waiting_for=reason).where(Task.id == task_id, TASK_STATE == "waiting",
                                              (Task.waiting_for.is_null()) |
                                              (Task.waiting_for != reason)).execute()
    return True, queued, capped


def note_reason(task_ids: list[int], reason: str | None) -> None:
    Task.update(waiting_for=reason).where(Task.id.in_(task_ids),
                                          TASK_STATE.in_(("waiting", "queued"))).execute()


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
        Task.id.in_(task_ids), TASK_STATE.in_(("waiting",))).execute()
    return True


def fail_in_scheduler(graph_id: int, owner: str, epoch: int, task_id: int, error: dict,
                      now: float) -> bool:
    """A task the scheduler cannot dispatch (a reference to a missing key): failed."""
    if not fence(graph_id, owner, epoch):
        return False
    Task.update(state="failed", finished=now, error=dumps(error)).where(
        Task.id == task_id, TASK_STATE.in_(("waiting", "queued", "running"))).execute()
    log_event("task.failed", graph_id, task_id, actor=owner)
    return True


@lead_alone
def spawn_child(graph_id: int, owner: str, epoch: int, task_id: int, doc: dict[str, Any],
                inputs: dict[str, Any], priority: int, root: int, depth: int,
                now: float) -> GraphRow | None:
    """Start a nested-graph task: its row -> running, a child graph owned by ``owner``;
    returns the child as :func:`load_tree` would load it (None: the graph is not ours).
    Where the database can, one statement (:mod:`wgops.store.spawning`)."""
    if spawning.available(doc):
        return spawning.spawn_at_once(spawning.MARK_SPAWNING, graph_id, owner, epoch, task_id,
                                      doc, inputs, priority, root, depth, now)
    lead_in_transaction()           # the fence's lock is held to the end
    if not fence(graph_id, owner, epoch):
        return None
    if not _SPAWNING.execute(id=task_id, now=now, args=dumps(inputs)).rowcount:
        return None
    child = create_graph(doc, priority=priority, parent_task=task_id, root=root,
                         depth=depth + 1, owner=owner, inputs=inputs, state="running")
    # what load_tree would read back, without reading the graph row we just wrote
    tasks = [_task_row(row) for row in _ONE_GRAPH_TASKS.execute(id=child.id).fetchall()]
    return GraphRow(child.id, child.epoch, child.state, child.priority, task_id, root,
                    depth + 1, doc, loads(child.inputs), tasks, {})


_SPAWNING = Statement(lambda: Task.update(
    state="running", started=param("now"), attempts=Task.attempts + 1, worker=None,
    args=param("args"), waiting_for=None).where(Task.id == param("id"),
                                                TASK_STATE.in_(("waiting", "queued"))))


def _complete() -> Any:
    """A graph's completion, checked by the database: by its owner at its epoch, and only
    while none of its tasks is open (whatever any scheduler believes)."""
    open_task = Task.select(Task.id).where(Task.graph == param("id"),
                                           TASK_STATE.in_(TASK_ACTIVE))
    return Graph.update(
        state=param("state"), outputs=param("outputs"), error=param("error"),
        finished=param("now")).where(
            Graph.id == param("id"), GRAPH_OWNER == param("owner"),
            Graph.epoch == param("epoch"), GRAPH_STATE.in_(("running", "paused")),
            ~fn.EXISTS(open_task))


_COMPLETE = Statement(_complete)
_COMPLETE_RETURNING = Statement(lambda: _complete().returning(Graph.parent_task))
_PARENT_TASK = Statement(lambda: Graph.select(Graph.parent_task).where(Graph.id == param("id")))


def _settle_parent(task: Any) -> Any:
    """The nested graph's task, still running, closed with the graph's outcome."""
    return Task.update(state=param("task_state"), finished=param("now"),
                       result=param("result"), error=param("task_error")).where(
        Task.id == task, TASK_STATE == "running")


_SETTLE_PARENT = Statement(lambda: _settle_parent(param("task")))


def _complete_in_one_statement() -> Any:
    """:func:`complete_graph` as one statement: the graph's completion, its parent task's
    settling and the event-log row; a row (the parent task, or NULL) if it completed."""
    done = _complete().returning(Graph.parent_task).cte("done")
    settled = _settle_parent(peewee.SQL('(SELECT "parent_task_id" FROM "done")')).returning(
        Task.id).cte("settled")
    logged = LogEntry.insert_from(
        peewee.Select((done,), [param("ts"), param("id"), param("kind"), param("owner")]),
        [LogEntry.ts, LogEntry.graph, LogEntry.kind, LogEntry.actor]).returning(
            LogEntry.id).cte("logged")
    return peewee.Select((done,), [done.c.parent_task_id]).with_cte(
        done, settled, logged).bind(Task._meta.database)


_COMPLETE_AT_ONCE = Statement(_complete_in_one_statement)


@lead_alone
def complete_graph(graph_id: int, owner: str, epoch: int, state: str, outputs: Any,
                   error: dict | None, now: float) -> bool:
    """Close a graph; a nested graph also closes the task that spawned it. Where the
    database has writable CTEs, one statement (alone in its batch, one round trip on
    PostgreSQL)."""
    values = dict(id=graph_id, owner=owner, epoch=epoch, state=state,
                  outputs=None if outputs is None else dumps(outputs),
                  error=None if error is None else dumps(error), now=now)
    settling = dict(task_state="finished" if state == "finished" else "failed",
                    result=dumps(outputs) if state == "finished" else None,
                    task_error=None if state == "finished" else dumps(
                        error or {"type": "GraphFailed", "message": f"nested graph {graph_id} "
                                  f"{state}", "traceback": None}))
    caps = capabilities()
    if caps.writable_cte:
        return _COMPLETE_AT_ONCE.execute(**values, **settling, ts=time.time(),
                                         kind=f"graph.{state}").fetchone() is not None
    lead_in_transaction()           # the completion and what follows it are one transaction
    if caps.returning:
        row = _COMPLETE_RETURNING.execute(**values).fetchone()
        if row is None:
            return False
        parent_task = row[0]
    else:
        if not _COMPLETE.execute(**values).rowcount:
            return False
        parent_task = _PARENT_TASK.execute(id=graph_id).fetchone()[0]
    if parent_task is not None:
        _SETTLE_PARENT.execute(task=parent_task, now=now, **settling)
    log_event(f"graph.{state}", graph_id, actor=owner)
    return True
