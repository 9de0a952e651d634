"""Graphs shaped at run time, as the scheduler's fenced writes: a mapped task's expansion into
copies and its closing, a condition's skip, a built graph's spawn.

Each is one compare-and-set transaction, fenced like every scheduler write (owner and epoch):
a scheduler killed while expanding a 10,000-copy map leaves either no copy or all of them (and
the mapped task ``running``), never a part; an expansion done again after a retry inserts only
the copies that are missing.
"""

from __future__ import annotations

from typing import Any

import peewee

from wgops.store import spawning
from wgops.store.db import lead_alone, lead_in_transaction
from wgops.store.eventlog import log_event
from wgops.store.graphs import create_graph
from wgops.store.loading import _ONE_GRAPH_TASKS, GraphRow, TaskRow, _task_columns, _task_row
from wgops.store.models import TASK_ACTIVE, TASK_STATE, Graph, Task, dumps, loads
from wgops.store.scheduling import fence

CHUNK = 500                 # copies inserted per statement
# the keys of a mapped task's entry that a copy's row keeps: what a worker runs it with
COPY_KEYS = ("kind", "run", "shell", "build", "timeout", "retries", "retry_delay", "pool")


def copy_spec(spec: dict[str, Any], item: Any, index: int) -> dict[str, Any]:
    """A copy's own document entry: how to run it, and its element."""
    out = {key: spec[key] for key in COPY_KEYS if key in spec}
    out.update(item=item, index=index)
    return out


def expand_map(graph_id: int, owner: str, epoch: int, task_id: int, name: str, kind: str,
               pool: str, spec: dict[str, Any], items: list[Any],
               now: float) -> list[TaskRow] | None:
    """The mapped task ``waiting -> running`` and one copy per element, ``NAME[i]``; returns
    every copy as :func:`~wgops.store.loading.load_tree` would load it (None: the graph is not
    ours, or the task was no longer waiting)."""
    if not fence(graph_id, owner, epoch):
        return None
    if not Task.update(state="running", started=now, attempts=Task.attempts + 1,
                       waiting_for=None).where(Task.id == task_id,
                                               TASK_STATE == "waiting").execute():
        return None
    rows = [{"graph": graph_id, "name": f"{name}[{i}]", "kind": kind, "pool": pool,
             "spec": dumps(copy_spec(spec, item, i)), "deps": "[]", "state": "waiting",
             "map_of": task_id, "map_index": i} for i, item in enumerate(items)]
    for start in range(0, len(rows), CHUNK):
        Task.insert_many(rows[start:start + CHUNK]).on_conflict_ignore().execute()
    log_event("task.expanded", graph_id, task_id, actor=owner, copies=len(rows))
    return copies(task_id)


def copies(task_id: int) -> list[TaskRow]:
    """The copies of a mapped task, in order."""
    return [_task_row(row) for row in Task.select(*_task_columns()).where(
        Task.map_of == task_id).order_by(Task.map_index).tuples()]


def finish_in_scheduler(graph_id: int, owner: str, epoch: int, task_id: int, result: Any,
                        now: float) -> bool:
    """A task the scheduler completes itself (a map over an empty list: ``[]``)."""
    if not fence(graph_id, owner, epoch):
        return False
    n = Task.update(state="finished", started=now, finished=now, result=dumps(result),
                    waiting_for=None).where(Task.id == task_id,
                                            TASK_STATE == "waiting").execute()
    if n:
        log_event("task.finished", graph_id, task_id, actor=owner)
    return bool(n)


def close_map(graph_id: int, owner: str, epoch: int, task_id: int, now: float) -> str | None:
    """A mapped task whose copies all ended: ``finished`` with their results in order, or
    ``failed`` naming the copies that failed. None: not ours, or a copy is still open (the
    database says so, whatever the scheduler believed)."""
    if not fence(graph_id, owner, epoch, ("running", "paused")):
        return None
    rows = list(Task.select(Task.name, Task.state, Task.result).where(
        Task.map_of == task_id).order_by(Task.map_index).tuples())
    if any(state in TASK_ACTIVE for _, state, _ in rows):
        return None
    failed = [name for name, state, _ in rows if state != "finished"]
    if failed:
        shown = ", ".join(failed[:10]) + (f" and {len(failed) - 10} more" if len(failed) > 10
                                          else "")
        values: dict[str, Any] = {"state": "failed", "error": dumps({
            "type": "MapFailed", "message": f"copies failed: {shown}", "traceback": None})}
    else:
        # the results' JSON texts joined: 10,000 copies are not parsed to be written again
        values = {"state": "finished", "result": "[" + ",".join(
            result if result is not None else "null" for _, _, result in rows) + "]"}
    n = Task.update(finished=now, **values).where(Task.id == task_id,
                                                  TASK_STATE == "running").execute()
    if not n:
        return None
    log_event(f"task.{values['state']}", graph_id, task_id, actor=owner)
    return str(values["state"])


def skip_condition(graph_id: int, owner: str, epoch: int, task_ids: list[int],
                   now: float) -> bool:
    """Tasks whose ``when`` is false, or that use the result of one: ``skipped``, which does
    not fail their graph."""
    if not fence(graph_id, owner, epoch, ("running", "paused")):
        return False
    Task.update(state="skipped", finished=now, waiting_for=None, condition_false=True,
                error=dumps({"type": "Skipped", "message": "condition false",
                             "traceback": None})).where(
        Task.id.in_(task_ids), TASK_STATE == "waiting").execute()
    return True


def built_document(task_id: int) -> Any:
    """The document a build task's builder returned, once a worker committed it (the task
    ``running``, no worker, a result); None otherwise."""
    row = Task.select(Task.result).where(Task.id == task_id, TASK_STATE == "running",
                                         Task.worker.is_null(), Task.result.is_null(False)
                                         ).first()
    return None if row is None else loads(row.result)


@lead_alone
def spawn_built(graph_id: int, owner: str, epoch: int, task_id: int, doc: dict[str, Any],
                priority: int, root: int, depth: int, now: float) -> GraphRow | None:
    """A build task's graph, validated by the scheduler, spawned as its nested graph (the
    task stays ``running`` until that graph ends); None: not ours, or not built."""
    if spawning.available(doc):
        return spawning.spawn_at_once(spawning.MARK_BUILT, graph_id, owner, epoch, task_id,
                                      doc, None, priority, root, depth, now)
    lead_in_transaction()           # the fence's lock is held to the end
    if not fence(graph_id, owner, epoch):
        return None
    spawned = Graph.select(Graph.id).where(Graph.parent_task == task_id)
    if not Task.update(waiting_for=None).where(
            Task.id == task_id, TASK_STATE == "running", Task.worker.is_null(),
            Task.result.is_null(False), ~peewee.fn.EXISTS(spawned)).execute():
        return None             # not built, or spawned already (a reload raced the spawn)
    child = create_graph(doc, priority=priority, parent_task=task_id, root=root,
                         depth=depth + 1, owner=owner, state="running")
    tasks = [_task_row(row) for row in _ONE_GRAPH_TASKS.execute(id=child.id).fetchall()]
    log_event("task.built", graph_id, task_id, actor=owner, child=child.id)
    return GraphRow(child.id, child.epoch, child.state, child.priority, task_id, root,
                    depth + 1, doc, loads(child.inputs), tasks, {})
