"""A nested graph's spawn in one statement, where the database has writable CTEs.

Spawning a nested (or built) graph is one transaction of seven statements: the parent's fence,
the task's compare-and-set, the graph row, its document, its task rows, its pool rows and
the task rows read back. On SQLite each is a function call; on PostgreSQL each is a round
trip and a client-side turn of the database thread, and a scheduler ramping up a hundred
nested trees spends most of its time there (docs/performance.md, twelfth pass).
:func:`spawn_at_once` sends them as one ``WITH ...`` statement: every write selects from the
one before it, so when the fence or the compare-and-set finds nothing, nothing is written,
and the new task rows come back through ``RETURNING`` (read nowhere else).

One statement reads with one snapshot, taken before it waits for the fence's row lock: a
writer that changed the parent graph's row meanwhile (another owner, a new epoch) is seen,
because PostgreSQL checks a locked row's conditions again on its newest version, but the
built mark's ``NOT EXISTS`` (no graph spawned from this task yet) reads the older snapshot.
That is enough: only the graph's owner at its epoch passes the fence, and a scheduler writes
through one connection, one transaction after another, so no spawn of the same task can
be in flight beside it (a later statement, or one later in the same transaction, sees the
first's rows).

The text depends on the number of tasks and of pools (a ``VALUES`` list each); it is built
once per shape and prepared once per connection (:func:`wgops.store.db.execute_text`).
Graphs with more than :data:`AT_ONCE_TASKS` tasks take the statement-by-statement path.
"""

from __future__ import annotations

import time
from typing import Any

from wgops.store.db import capabilities, database, execute_text
from wgops.store.graphs import merged_inputs, task_values
from wgops.store.loading import GraphRow, _task_row
from wgops.store.models import dumps

AT_ONCE_TASKS = 64          # larger graphs: create_graph's chunked inserts
_TEXTS: dict[tuple[str, int, int, str], str] = {}

# the spawned task's compare-and-set, as the CTE "marked" (it must return the task's id):
MARK_SPAWNING = "spawning"  # a nested-graph task: waiting/queued -> running
MARK_BUILT = "built"        # a build task whose builder committed its document, not spawned


def available(doc: dict[str, Any]) -> bool:
    """Can this graph be spawned in one statement here?"""
    caps = capabilities()
    return caps.writable_cte and caps.row_lock is not None and \
        0 < len(doc["tasks"]) <= AT_ONCE_TASKS


def _text(mark: str, tasks: int, pools: int) -> str:
    p = database.obj.param
    lock = capabilities().row_lock
    key = (mark, tasks, pools, lock)
    text = _TEXTS.get(key)
    if text is not None:
        return text
    if mark == MARK_SPAWNING:
        marked = (f'UPDATE "task" SET "state" = \'running\', "started" = {p}::double precision, '
                  f'"attempts" = "attempts" + 1, "worker" = NULL, "args" = {p}::text, '
                  f'"waiting_for" = NULL WHERE "id" = {p}::integer '
                  f'AND ("state" || \'\') IN (\'waiting\', \'queued\') '
                  f'AND EXISTS (SELECT 1 FROM "fenced") RETURNING "id"')
    else:
        marked = (f'UPDATE "task" SET "waiting_for" = NULL WHERE "id" = {p}::integer '
                  f'AND ("state" || \'\') = \'running\' AND "worker" IS NULL '
                  f'AND "result" IS NOT NULL AND NOT EXISTS (SELECT 1 FROM "graph" AS "g" '
                  f'WHERE "g"."parent_task_id" = {p}::integer) '
                  f'AND EXISTS (SELECT 1 FROM "fenced") RETURNING "id"')
    logged = ""
    if mark == MARK_BUILT:          # a built graph's spawn is in the event log (log_event)
        logged = (f', "logged" AS (INSERT INTO "event" ("ts", "graph", "task", "kind", '
                  f'"actor", "data") SELECT {p}::double precision, {p}::integer, "marked"."id", '
                  f'\'task.built\', {p}::varchar, \'{{"child":\' || "child"."id" || \'}}\' '
                  f'FROM "marked", "child")')
    rows = ", ".join(f"({p}::integer, {p}::varchar, {p}::varchar, {p}::text, {p}::text, "
                     f"{p}::varchar)" for _ in range(tasks))
    pool_rows = ", ".join(f"({p}::varchar)" for _ in range(pools))
    text = _TEXTS[key] = (
        f'WITH "fenced" AS (SELECT "id" FROM "graph" WHERE "id" = {p}::integer '
        f'AND ("scheduler" || \'\') = {p}::varchar AND "epoch" = {p}::integer '
        f'AND ("state" || \'\') = \'running\' {lock}), '
        f'"marked" AS ({marked}), '
        f'"child" AS (INSERT INTO "graph" ("name", "state", "priority", "scheduler", "epoch", '
        f'"parent_task_id", "root", "depth", "source", "inputs", "created", "started") '
        f'SELECT {p}::varchar, \'running\', {p}::integer, {p}::varchar, 0, "marked"."id", '
        f'{p}::integer, {p}::integer, {p}::varchar, {p}::text, {p}::double precision, '
        f'{p}::double precision FROM "marked" RETURNING "id", "epoch"), '
        f'"document" AS (INSERT INTO "graph_document" ("graph_id", "document") '
        f'SELECT "child"."id", {p}::text FROM "child"), '
        f'"tasks" AS (INSERT INTO "task" ("graph_id", "name", "kind", "spec", "deps", "pool", '
        f'"state", "attempts", "lost", "condition_false") '
        f'SELECT "child"."id", "v"."name", "v"."kind", "v"."spec", "v"."deps", "v"."pool", '
        f'\'waiting\', 0, 0, false FROM "child" CROSS JOIN (VALUES {rows}) '
        f'AS "v" ("ord", "name", "kind", "spec", "deps", "pool") ORDER BY "v"."ord" '
        f'RETURNING "id", "graph_id", "name", "kind", "spec", "deps", "pool", "state", '
        f'"attempts", "not_before", "map_of", "map_index", "condition_false"), '
        f'"pools" AS (INSERT INTO "pool" ("name", "max_running") '
        f'SELECT "v"."name", NULL::integer FROM (VALUES {pool_rows}) AS "v" ("name") '
        f'WHERE EXISTS (SELECT 1 FROM "child") ON CONFLICT DO NOTHING){logged} '
        'SELECT "child"."id", "child"."epoch", "tasks".* FROM "child" JOIN "tasks" ON true')
    return text


def spawn_at_once(mark: str, graph_id: int, owner: str, epoch: int, task_id: int,
                  doc: dict[str, Any], inputs: dict[str, Any] | None, priority: int,
                  root: int, depth: int, now: float) -> GraphRow | None:
    """Fence the parent, mark its task (``mark``), insert the child graph, its document, its
    tasks and their pools; the child as :func:`~wgops.store.loading.load_tree` would load
    it, or None (the parent is not ours at ``epoch``, or the task is not in the state
    ``mark`` needs). A nested graph's ``inputs`` are also its task's arguments. Only where
    :func:`available` says so; inside a write transaction."""
    merged = merged_inputs(doc, inputs)
    values = task_values(doc)
    pools = sorted({pool for *_, pool in values})
    params: list[Any] = [graph_id, owner, epoch]
    if mark == MARK_SPAWNING:
        params += [now, dumps(inputs), task_id]
    else:
        params += [task_id, task_id]
    wall = time.time()              # (create_graph's created and started)
    params += [doc["name"], priority, owner, root, depth + 1, doc.get("source"), dumps(merged),
               wall, wall, dumps(doc)]
    for ord_, task in enumerate(values):
        params += [ord_, *task]
    params += pools
    if mark == MARK_BUILT:
        params += [wall, graph_id, owner]
    rows = execute_text(_text(mark, len(values), len(pools)), params).fetchall()
    if not rows:
        return None
    child_id, child_epoch = rows[0][0], rows[0][1]
    tasks = sorted((_task_row(row[2:]) for row in rows), key=lambda t: t.id)
    return GraphRow(child_id, child_epoch, "running", priority, task_id, root, depth + 1, doc,
                    merged, tasks, {})
