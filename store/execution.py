"""The worker's writes: an attempt's start, detachment and outcome, each a compare-and-set.

A worker write is conditional on the task's (state, attempts, worker), so a stale, duplicate
or late delivery changes nothing; losing a worker too often quarantines the task. Each runs
inside the caller's write transaction.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import peewee

from wgops.store.db import Statement, capabilities, lead_alone, param
from wgops.store.deadletters import record_dead_letter
from wgops.store.eventlog import log_event
from wgops.store.liveness import worker_alive
from wgops.store.loading import current_owner
from wgops.store.models import TASK_STATE, TASK_WORKER, Graph, LogEntry, Task, dumps, loads


@dataclass(frozen=True)
class StartedTask:
    """What a worker runs, as the database stores it (never as a message says): the task's
    document entry and the arguments its scheduler dispatched."""

    attempts: int
    graph: int
    name: str
    kind: str
    spec: dict[str, Any]
    args: dict[str, Any]


_STORED = (Task.attempts, Task.graph, Task.name, Task.kind, Task.spec, Task.args)


def _started(row: Any) -> StartedTask:
    attempts, graph, name, kind, spec, args = row
    return StartedTask(attempts, graph, name, kind, loads(spec), loads(args) or {})


def _stored(task_id: int) -> StartedTask:
    row = Task.select(*_STORED).where(Task.id == task_id).tuples().first()
    assert row is not None, f"task {task_id} vanished inside its own transaction"
    return _started(row)


@lead_alone
def start(task_id: int, attempt: int, worker: str, redelivered: bool, max_lost: int,
          stale_after: float, now: float) -> tuple[str, Any]:
    """Begin attempt ``attempt + 1``. Returns one of:

    ``("run", StartedTask)``, ``("wait", None)`` (the previous worker may still be alive),
    ``("drop", state)`` (stale or duplicate), ``("quarantined", owner)``.
    """
    # the common case first: one compare-and-set, which also returns the stored task
    values = dict(id=task_id, attempt=attempt, next=attempt + 1, worker=worker, now=now)
    if capabilities().returning:
        row = _START_RETURNING.execute(**values).fetchone()
        if row is not None:
            return "run", _started(row)
    elif _START.execute(**values).rowcount:
        return "run", _stored(task_id)
    return _start_otherwise(task_id, attempt, worker, redelivered, max_lost, stale_after, now)


def _start_otherwise(task_id: int, attempt: int, worker: str, redelivered: bool, max_lost: int,
                     stale_after: float, now: float) -> tuple[str, Any]:
    """``start`` once its common case (queued, this attempt) did not apply."""
    row = Task.select(Task.state, Task.attempts, Task.worker, Task.lost, Task.graph).where(
        Task.id == task_id).first()
    if row is None:
        return "drop", None
    if row.state == "queued" and row.attempts == attempt:
        n = Task.update(state="running", attempts=attempt + 1, worker=worker, started=now,
                        finished=None, waiting_for=None, detached=None).where(
            Task.id == task_id, TASK_STATE == "queued", Task.attempts == attempt).execute()
        return ("run", _stored(task_id)) if n else ("drop", "raced")
    if row.state == "running" and row.worker == worker and row.attempts == attempt + 1:
        # our own start, committed though its reply was lost (the write was retried); the
        # worker checked that it is not executing this task
        return "run", _stored(task_id)
    if row.state != "running" or not redelivered or row.attempts < attempt + 1:
        return "drop", row.state
    if row.worker and row.worker != worker and worker_alive(row.worker, stale_after):
        return "wait", None
    if row.lost + 1 >= max_lost:
        if not quarantine(task_id, row.graph_id, row.attempts, row.lost + 1, row.worker,
                          worker, now):
            return "drop", "raced"
        return "quarantined", current_owner(row.graph_id)
    n = Task.update(state="running", attempts=row.attempts + 1, lost=row.lost + 1, worker=worker,
                    started=now, detached=None).where(Task.id == task_id,
                                                      TASK_STATE == "running",
                                                      Task.attempts == row.attempts).execute()
    return ("run", _stored(task_id)) if n else ("drop", "raced")


def quarantine(task_id: int, graph_id: int, attempts: int, lost: int, last_worker: str | None,
               actor: str, now: float) -> bool:
    """A task that lost its worker ``lost`` times: failed, with a dead letter and an event."""
    error = {"type": "Quarantined", "message": f"lost its worker {lost} times "
             f"(last: {last_worker}); quarantined", "traceback": None}
    n = Task.update(state="failed", finished=now, lost=lost, detached=None,
                    error=dumps(error)).where(Task.id == task_id, TASK_STATE == "running",
                                              Task.attempts == attempts).execute()
    if not n:
        return False
    record_dead_letter("quarantine", error["message"], dumps({"task": task_id, "graph": graph_id}),
                       actor, now)
    log_event("task.quarantined", graph_id, task_id, actor=actor)
    return True


def detach(task_id: int, attempts: int, worker: str, now: float) -> bool:
    """A long task's message is about to be acked before the broker's consumer_timeout: from
    now on only the database knows it runs (the scheduler's liveness check watches it)."""
    return bool(Task.update(detached=now).where(
        Task.id == task_id, TASK_STATE == "running", Task.attempts == attempts,
        TASK_WORKER == worker).execute())


def _start() -> Any:
    return Task.update(
        state="running", attempts=param("next"), worker=param("worker"), started=param("now"),
        finished=None, waiting_for=None, detached=None).where(
            Task.id == param("id"), TASK_STATE == "queued", Task.attempts == param("attempt"))


_START = Statement(_start)
_START_RETURNING = Statement(lambda: _start().returning(*_STORED))
_ATTEMPT = (Task.id == param("id")) & (TASK_STATE == "running") & \
    (Task.attempts == param("attempts")) & (TASK_WORKER == param("worker"))
_FINISH = Statement(lambda: Task.update(
    state=param("state"), error=param("error"), finished=param("now"),
    result=param("result")).where(_ATTEMPT))
_RETRY = Statement(lambda: Task.update(
    state=param("state"), error=param("error"), not_before=param("not_before"),
    queued_at=param("now"), detached=None).where(_ATTEMPT))
_GRAPH_OWNER = Statement(lambda: Graph.select(Graph.id, Graph.scheduler).join(
    Task, on=(Task.graph == Graph.id)).where(Task.id == param("id")))


@lead_alone
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
    row = _GRAPH_OWNER.execute(id=task_id).fetchone()
    if row is None:          # (lead alone: the graph was deleted since the update committed)
        return None
    graph_id, owner = row
    if state in ("finished", "failed"):
        log_event(f"task.{state}", graph_id, task_id, actor=worker)
    return owner


@lead_alone
def built(task_id: int, attempts: int, worker: str, document: str,
          now: float) -> str | None | bool:
    """A build task's builder returned ``document`` (JSON text): kept as the task's result
    while the task stays ``running`` (its worker's part is over: no worker any more); its
    scheduler validates the document and spawns it as the task's nested graph. Returns the
    graph's owner, or False when the attempt was superseded."""
    values = dict(id=task_id, attempts=attempts, worker=worker, document=document)
    if capabilities().writable_cte:
        row = _BUILT_AND_LOG.execute(**values, ts=time.time(), kind="task.built").fetchone()
        return False if row is None else row[0]
    if not _BUILT.execute(**values).rowcount:
        return False
    graph_id, owner = _GRAPH_OWNER.execute(id=task_id).fetchone()
    log_event("task.built", graph_id, task_id, actor=worker)
    return owner


def _built() -> Any:
    return Task.update(result=param("document"), worker=None, detached=None).where(_ATTEMPT)


def _logged_with_owner(update: Any) -> Any:
    """A worker's compare-and-set ``update`` of one task, its event-log row (parameters
    ``ts``, ``id``, ``kind``, ``worker``) and the read of its graph's owner, as one statement
    (on PostgreSQL each statement is a round trip to the server). No row: the update changed
    nothing."""
    done = update.returning(Task.graph).cte("done")
    logged = LogEntry.insert_from(
        peewee.Select((done,), [param("ts"), done.c.graph_id, param("id"), param("kind"),
                                param("worker")]),
        [LogEntry.ts, LogEntry.graph, LogEntry.task, LogEntry.kind, LogEntry.actor]).cte("logged")
    return Graph.select(Graph.scheduler).join(done, on=(Graph.id == done.c.graph_id)).with_cte(
        done, logged)


_BUILT = Statement(_built)
_BUILT_AND_LOG = Statement(lambda: _logged_with_owner(_built()))


def abandon(task_id: int, attempts: int, worker: str) -> bool:
    """Give a started task back (graceful stop): queued again, this attempt not counted."""
    return bool(Task.update(state="queued", attempts=attempts - 1, worker=None,
                            detached=None).where(
        Task.id == task_id, TASK_STATE == "running", Task.attempts == attempts,
        TASK_WORKER == worker).execute())


# ``_FINISH`` with its event-log row and owner read (the worker's hottest write)
_FINISH_AND_LOG = Statement(lambda: _logged_with_owner(Task.update(
    state=param("state"), error=param("error"), finished=param("now"),
    result=param("result")).where(_ATTEMPT)))


def _finish_in_one_trip(task_id: int, attempts: int, worker: str, state: str,
                        result: str | None, error: dict | None, now: float) -> str | None | bool:
    row = _FINISH_AND_LOG.execute(
        state=state, error=None if error is None else dumps(error), now=now, result=result,
        id=task_id, attempts=attempts, worker=worker, ts=time.time(),
        kind=f"task.{state}").fetchone()
    return False if row is None else row[0]


def requeue_lost(task_id: int, attempts: int, worker: str, max_lost: int, now: float,
                 actor: str = "liveness-check", detached_only: bool = True) -> str:
    """A task running on a dead worker (by default: a detached one, which no redelivery will
    bring back): ``queued`` again (lost + 1), or quarantined at ``max_lost``.
    Returns ``queued``, ``quarantined`` or ``raced`` (it moved on meanwhile)."""
    where = [Task.id == task_id, TASK_STATE == "running", Task.attempts == attempts,
             TASK_WORKER == worker]
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


# -- several attempts in one statement (AsyncStore coalesces a batch's calls: ``.many``) -------

def _distinct(calls: list[tuple], key: int = 0) -> tuple[list[int], list[int]]:
    """Positions of ``calls`` whose task id (at ``key``) is the first of its kind, and of
    the repeats (a repeat goes on its own, after: one statement must not see a task twice)."""
    seen: set[int] = set()
    first, again = [], []
    for i, call in enumerate(calls):
        (again if call[key] in seen else first).append(i)
        seen.add(call[key])
    return first, again


def _start_many_statement(size: int) -> Statement:
    statement = _START_MANY.get(size)
    if statement is None:
        def build() -> Any:
            given = peewee.ValuesList(
                [(param(f"id{i}").cast("INTEGER"), param(f"attempt{i}").cast("INTEGER"),
                  param(f"worker{i}").cast("TEXT"), param(f"now{i}").cast("DOUBLE PRECISION"))
                 for i in range(size)], columns=("id", "attempt", "worker", "now")).alias("v")
            return Task.update(
                state="running", attempts=given.c.attempt + 1, worker=given.c.worker,
                started=given.c.now, finished=None, waiting_for=None, detached=None).from_(
                    given).where(Task.id == given.c.id, TASK_STATE == "queued",
                                 Task.attempts == given.c.attempt).returning(Task.id, *_STORED)
        statement = _START_MANY[size] = Statement(build)
    return statement


_START_MANY: dict[int, Statement] = {}


def start_many(calls: list[tuple]) -> list[tuple[str, Any]]:
    """:func:`start` for several attempts (each ``calls`` item is ``start``'s arguments), the
    result of each in order. Where each statement is a round trip to a server (PostgreSQL)
    the common case of all of them is one ``UPDATE ... FROM (VALUES ...)``; an attempt it
    did not start (stale, a repeat, a previous worker's) goes through ``start``'s other
    cases on its own. Elsewhere, ``start`` for each."""
    if len(calls) < 2 or not capabilities().writable_cte:
        return [start(*call) for call in calls]
    first, again = _distinct(calls)
    values: dict[str, Any] = {}
    for n, i in enumerate(first):
        task_id, attempt, worker, _, _, _, now = calls[i]
        values.update({f"id{n}": task_id, f"attempt{n}": attempt, f"worker{n}": worker,
                       f"now{n}": now})
    started = {row[0]: _started(row[1:]) for row in
               _start_many_statement(len(first)).execute(**values).fetchall()}
    results: list[tuple[str, Any]] = [("drop", None)] * len(calls)
    for i in first:
        task = started.get(calls[i][0])
        results[i] = ("run", task) if task is not None else _start_otherwise(*calls[i])
    for i in again:
        results[i] = start(*calls[i])
    return results


start.many = start_many  # type: ignore[attr-defined]


def _finish_many_statement(size: int) -> Statement:
    """``_finish_and_log`` for ``size`` attempts: their outcomes, their event-log rows and
    their graphs' owners, in one statement."""
    statement = _FINISH_MANY.get(size)
    if statement is None:
        def build() -> Any:
            given = peewee.ValuesList(
                [(param(f"id{i}").cast("INTEGER"), param(f"attempts{i}").cast("INTEGER"),
                  param(f"worker{i}").cast("TEXT"), param(f"state{i}").cast("TEXT"),
                  param(f"error{i}").cast("TEXT"), param(f"result{i}").cast("TEXT"),
                  param(f"now{i}").cast("DOUBLE PRECISION"),
                  param(f"ts{i}").cast("DOUBLE PRECISION"))
                 for i in range(size)],
                columns=("id", "attempts", "worker", "state", "error", "result", "now",
                         "ts")).alias("v")
            done = Task.update(state=given.c.state, error=given.c.error,
                               finished=given.c.now, result=given.c.result).from_(given).where(
                Task.id == given.c.id, TASK_STATE == "running",
                Task.attempts == given.c.attempts, TASK_WORKER == given.c.worker).returning(
                    Task.id, Task.graph, given.c.worker, given.c.ts,
                    peewee.SQL("'task.' || \"v\".\"state\"").alias("kind")).cte("done")
            logged = LogEntry.insert_from(
                peewee.Select((done,), [done.c.ts, done.c.graph_id, done.c.id, done.c.kind,
                                        done.c.worker]),
                [LogEntry.ts, LogEntry.graph, LogEntry.task, LogEntry.kind,
                 LogEntry.actor]).cte("logged")
            return Graph.select(done.c.id, Graph.scheduler).join(
                done, on=(Graph.id == done.c.graph_id)).with_cte(done, logged)
        statement = _FINISH_MANY[size] = Statement(build)
    return statement


_FINISH_MANY: dict[int, Statement] = {}


def finish_many(calls: list[tuple]) -> list[str | None | bool]:
    """:func:`finish` for several attempts (each item ``finish``'s arguments), the result of
    each in order; where statements are round trips, the outcomes that end a task (not a
    retry) in one statement, the others one by one."""
    if len(calls) < 2 or not capabilities().writable_cte:
        return [finish(*call) for call in calls]
    ending = [i for i, call in enumerate(calls) if call[3] != "queued"]
    first, again = _distinct([calls[i] for i in ending])
    results: list[str | None | bool] = [False] * len(calls)
    if len(first) >= 2:
        values: dict[str, Any] = {}
        ts = time.time()
        for n, k in enumerate(first):
            task_id, attempts, worker, state, result, error, _, now = calls[ending[k]]
            values.update({f"id{n}": task_id, f"attempts{n}": attempts, f"worker{n}": worker,
                           f"state{n}": state, f"error{n}": None if error is None
                           else dumps(error), f"result{n}": result, f"now{n}": now,
                           f"ts{n}": ts})
        owners = dict(_finish_many_statement(len(first)).execute(**values).fetchall())
        for k in first:
            task_id = calls[ending[k]][0]
            results[ending[k]] = owners[task_id] if task_id in owners else False
        ended = set(ending)
        alone = [ending[k] for k in again] + [i for i in range(len(calls)) if i not in ended]
    else:
        alone = list(range(len(calls)))
    for i in sorted(alone):
        results[i] = finish(*calls[i])
    return results


finish.many = finish_many  # type: ignore[attr-defined]
