"""The store suite: every test runs on SQLite and on PostgreSQL (the ``db_url`` fixture)."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from peewee import TextField

from tests.test_query_plans import Recorder
from wgops.store import control
from wgops.store.db import Store
from wgops.store.document import normalise
from wgops.store.errors import Conflict, NotFound, Unreachable, WgopsError
from wgops.store.graphs import create_graph, list_graphs, show_graph
from wgops.store.loading import load_tree
from wgops.store.migrations import available, current_version, latest, migrate
from wgops.store.models import (
    Graph,
    GraphDocument,
    LogEntry,
    Pool,
    Scheduler,
    SchemaVersion,
    Task,
    dumps,
)

ROOT = Path(__file__).resolve().parent.parent

LIST_KEYS = {"id", "name", "state", "priority", "scheduler", "tasks_total", "tasks_done"}
SHOW_KEYS = {"id", "name", "state", "priority", "scheduler", "parent", "outputs", "tasks"}
TASK_KEYS = {"name", "state", "attempts", "worker", "started", "finished", "result", "error"}

DOC = normalise({"name": "bands", "priority": 4, "inputs": {"structure": "Si"}, "tasks": {
    "relax": {"run": "wgops.examples.tasks:relax", "args": {"structure": "${inputs.structure}"}},
    "scf": {"run": "wgops.examples.tasks:scf", "args": {"structure": "${relax.structure}"}},
    "report": {"shell": "echo ${scf.energy}", "pool": "io"},
    "bands": {"graph": {"name": "sub", "tasks": {
        "b": {"run": "wgops.examples.tasks:bands", "args": {"density": "${inputs.density}"}}}},
        "args": {"density": "${scf.density}"}},
}}, "test")
CHILD = DOC["tasks"]["bands"]["graph"]


def submit(store: Store, doc: dict[str, Any] = DOC, **kw: Any) -> Graph:
    with store.write():
        return create_graph(doc, **kw)


def nest(store: Store, parent: Graph, task_name: str = "bands") -> Graph:
    """Spawn the nested graph of ``parent``'s task, as a scheduler does."""
    task = Task.get(Task.graph == parent.id, Task.name == task_name)
    with store.write():
        return create_graph(CHILD, parent_task=task, root=parent.id, depth=1,
                            owner=parent.scheduler, state="running")


def set_tasks(graph: Graph, **states: str) -> None:
    for name, state in states.items():
        Task.update(state=state).where(Task.graph == graph.id, Task.name == name).execute()


def task_states(graph: Graph) -> dict[str, str]:
    return {t.name: t.state for t in Task.select().where(Task.graph == graph.id)}


def add_scheduler(sid: str, heartbeat: float | None = None, state: str = "running") -> None:
    Scheduler.create(id=sid, host="h", pid=1, state=state,
                     heartbeat=time.time() if heartbeat is None else heartbeat)


# -- migrations -------------------------------------------------------------------------------


def test_migrate_is_idempotent_and_records_the_version(db_url: str) -> None:
    first = Store(db_url).connect()
    assert current_version(first) == 0
    assert migrate(first) == [n for n, _ in available()]
    assert migrate(first) == []
    first.close()
    again = Store(db_url).connect()
    assert migrate(again) == []
    assert current_version(again) == latest()
    assert [r.version for r in SchemaVersion.select()] == [n for n, _ in available()]
    assert Pool.select().where(Pool.name == "default").count() == 1
    again.close()


def _as_before_migration_6(store: Store) -> None:
    """Put a current schema back as migration 5 left it: each graph's document in its row."""
    from playhouse.migrate import SchemaMigrator
    from playhouse.migrate import migrate as alter

    with store.write():
        alter(SchemaMigrator.from_database(store.db).add_column(
            "graph", "document", TextField(null=True)))
        store.db.execute_sql('UPDATE "graph" SET "document" = (SELECT "document" FROM '
                             '"graph_document" WHERE "graph_id" = "graph"."id")')
        store.db.execute_sql('DROP TABLE "graph_document"')
        SchemaVersion.delete().where(SchemaVersion.version > 5).execute()


def test_migration_6_moves_the_stored_documents_out_of_the_graph_rows(store: Store) -> None:
    top = submit(store)
    child = nest(store, top)
    _as_before_migration_6(store)
    assert "document" in {c.name for c in store.db.get_columns("graph")}
    assert migrate(store) == [6]
    assert "document" not in {c.name for c in store.db.get_columns("graph")}
    stored = {d.graph_id: json.loads(d.document) for d in GraphDocument.select()}
    assert stored == {top.id: DOC, child.id: CHILD}
    with store.write():
        Graph.update(scheduler="s1", state="running").where(Graph.id == top.id).execute()
        Graph.update(scheduler="s1").where(Graph.id == child.id).execute()
    assert [(g.id, g.document) for g in load_tree(top.id, "s1")] == \
        [(top.id, DOC), (child.id, CHILD)]
    assert migrate(store) == []


def test_migration_6_without_drop_column_refuses_and_changes_nothing(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """An SQLite older than 3.35 would rebuild the graph table, and dropping the old one
    deletes its tasks (ON DELETE CASCADE): the upgrade stops with one line instead."""
    g = submit(store)
    _as_before_migration_6(store)
    monkeypatch.setattr(store, "caps", dataclasses.replace(store.caps, drop_column=False))
    with pytest.raises(WgopsError, match="SQLite 3.35 or newer"):
        migrate(store)
    assert current_version(store) == 5
    assert not store.db.table_exists("graph_document")
    (document,) = store.db.execute_sql('SELECT "document" FROM "graph"').fetchone()
    assert json.loads(document) == DOC
    assert Task.select().where(Task.graph == g.id).count() == len(DOC["tasks"])


def test_ping_and_write_transaction(store: Store) -> None:
    assert store.ping()
    with pytest.raises(RuntimeError):
        with store.write():
            Pool.create(name="rolled-back")
            raise RuntimeError("undo")
    assert Pool.get_or_none(Pool.name == "rolled-back") is None


def test_unreachable_database_is_masked() -> None:
    with pytest.raises(Unreachable) as info:
        Store("postgresql://pg:sekrit@127.0.0.1:1/x").connect()
    assert "sekrit" not in str(info.value) and "pg:***@127.0.0.1:1" in str(info.value)


# -- graphs: create, list, show ---------------------------------------------------------------


def test_create_graph_rows_and_provenance(store: Store) -> None:
    g = submit(store)
    assert (g.name, g.state, g.priority, g.root, g.depth, g.parent_task_id) == \
        ("bands", "queued", 4, g.id, 0, None)
    tasks = {t.name: t for t in Task.select().where(Task.graph == g.id)}
    assert set(tasks) == {"relax", "scf", "report", "bands"}
    assert all(t.graph_id == g.id and t.state == "waiting" for t in tasks.values())
    assert tasks["scf"].kind == "python" and json.loads(tasks["scf"].deps) == ["relax"]
    assert tasks["report"].kind == "shell" and tasks["report"].pool == "io"
    assert tasks["bands"].kind == "graph"
    assert Pool.get_or_none(Pool.name == "io") is not None
    assert json.loads(g.inputs) == {"structure": "Si"}
    assert submit(store, priority=9).priority == 9


def test_nested_graph_provenance(store: Store) -> None:
    parent = submit(store, owner="s1", state="running")
    child = nest(store, parent)
    bands_task = Task.get(Task.graph == parent.id, Task.name == "bands")
    assert child.parent_task_id == bands_task.id and child.root == parent.id
    assert child.depth == 1 and child.scheduler == "s1"
    assert control.tree_ids(parent.id) == [parent.id, child.id]
    shown = show_graph(child.id)
    assert shown["parent"] == parent.id and shown["name"] == "sub"
    assert {t["name"]: t["child"] for t in show_graph(parent.id)["tasks"]}["bands"] == child.id
    assert [r["id"] for r in list_graphs()] == [parent.id]
    assert {r["id"] for r in list_graphs(include_nested=True)} == {parent.id, child.id}


def test_list_graphs_shape_and_progress(store: Store) -> None:
    a = submit(store)
    b = submit(store)
    set_tasks(a, relax="finished", scf="failed", report="skipped")
    Graph.update(state="failed").where(Graph.id == a.id).execute()
    rows = list_graphs()
    assert [r["id"] for r in rows] == [b.id, a.id]
    for row in rows:
        assert set(row) == LIST_KEYS
    assert rows[1] == {"id": a.id, "name": "bands", "state": "failed", "priority": 4,
                       "scheduler": None, "tasks_total": 4, "tasks_done": 3}
    assert rows[0]["tasks_done"] == 0
    assert [r["id"] for r in list_graphs(state="failed")] == [a.id]
    assert len(list_graphs(limit=1)) == 1
    json.dumps(rows)


def test_show_graph_shape(store: Store) -> None:
    g = submit(store)
    now = time.time()
    Task.update(state="finished", attempts=1, worker="w1", started=now - 1, finished=now,
                result=dumps({"energy": -7.9})).where(
        Task.graph == g.id, Task.name == "relax").execute()
    Task.update(state="failed", attempts=2, worker="w1", started=now, finished=now,
                error=dumps({"type": "ValueError", "message": "bad", "traceback": "tb"})).where(
        Task.graph == g.id, Task.name == "scf").execute()
    shown = show_graph(g.id)
    assert SHOW_KEYS <= set(shown)
    assert (shown["id"], shown["name"], shown["priority"], shown["scheduler"],
            shown["parent"], shown["outputs"]) == (g.id, "bands", 4, None, None, None)
    tasks = {t["name"]: t for t in shown["tasks"]}
    assert list(tasks) == ["relax", "scf", "report", "bands"]
    for task in shown["tasks"]:
        assert TASK_KEYS <= set(task)
        for key in ("started", "finished"):
            assert task[key] is None or isinstance(task[key], float)
    assert tasks["relax"]["result"] == {"energy": -7.9} and tasks["relax"]["attempts"] == 1
    assert tasks["relax"]["worker"] == "w1" and tasks["relax"]["error"] is None
    assert tasks["scf"]["error"] == {"type": "ValueError", "message": "bad", "traceback": "tb"}
    assert tasks["report"]["started"] is None and tasks["report"]["result"] is None
    assert tasks["report"]["waiting_for"] == "waiting for scf"
    json.dumps(shown)


def test_show_unknown_graph(store: Store) -> None:
    with pytest.raises(NotFound, match="no graph 999999"):
        show_graph(999999)


# -- the gauges of a scrape (wgops.store.counts) -----------------------------------------------


def test_read_counts_every_gauge_in_one_statement(store: Store) -> None:
    from wgops.store.counts import read_counts
    from wgops.store.models import Worker

    running, failed, paused = submit(store), submit(store), submit(store)
    child = nest(store, running)
    with store.write():
        Graph.update(state="failed").where(Graph.id == failed.id).execute()
        Graph.update(state="paused").where(Graph.id == paused.id).execute()
        Graph.update(state="running").where(Graph.id.in_([running.id, child.id])).execute()
        set_tasks(running, relax="running", bands="running", report="running")  # io pool
        set_tasks(child, b="running")
        Pool.insert(name="licence", max_running=2).execute()
        add_scheduler("s-live")
        add_scheduler("s-stale", heartbeat=time.time() - 600)
        add_scheduler("s-dead", state="dead")
        now = time.time()
        Worker.insert_many([
            {"id": "w1", "host": "h", "pid": 1, "slots": 4, "busy": 3, "heartbeat": now,
             "pools": dumps(["default", "gpu"])},
            {"id": "w2", "host": "h", "pid": 2, "slots": 2, "busy": 5, "heartbeat": now},
            {"id": "w-stale", "host": "h", "pid": 3, "slots": 8, "busy": 0,
             "heartbeat": now - 600, "pools": dumps(["stale-only"])}]).execute()
    with Recorder(store) as recorded:
        counts = read_counts(stale_after=30)
    assert len(recorded.statements) == 1
    assert counts.graphs == {"queued": 0, "running": 2, "paused": 1, "finished": 0,
                             "failed": 1, "killed": 0}
    assert (counts.schedulers, counts.workers) == (1, 2)
    assert (counts.slots_busy, counts.slots_free) == (3 + 2, 1 + 0)   # busy capped at slots
    assert counts.pools == {"default", "gpu", "io", "licence"}
    assert counts.pool_running == {"default": 2, "gpu": 0, "io": 1, "licence": 0}  # not bands
    assert counts.pool_max_running == {"licence": 2}


def test_read_counts_of_an_empty_store(store: Store) -> None:
    from wgops.store.counts import read_counts

    counts = read_counts(stale_after=30)
    assert counts.graphs == dict.fromkeys(("queued", "running", "paused", "finished", "failed",
                                           "killed"), 0)
    assert (counts.schedulers, counts.workers, counts.slots_busy, counts.slots_free) == \
        (0, 0, 0, 0)
    assert counts.pools == {"default"} and counts.pool_running == {"default": 0}
    assert counts.pool_max_running == {}


# -- operator actions: compare-and-set --------------------------------------------------------


def test_pause_and_play(store: Store) -> None:
    g = submit(store)
    assert control.pause(store, g.id).state == "paused"
    assert control.pause(store, g.id).state == "paused"        # pausing a paused graph: no-op
    assert control.play(store, g.id).state == "queued"         # no owner yet: back to queued
    with pytest.raises(Conflict, match="not paused"):
        control.play(store, g.id)
    Graph.update(state="running", scheduler="s1").where(Graph.id == g.id).execute()
    child = nest(store, Graph.get_by_id(g.id))
    control.pause(store, g.id)
    assert Graph.get_by_id(child.id).state == "paused"         # the whole tree pauses
    assert control.play(store, g.id).state == "running"        # owned: back to running
    assert Graph.get_by_id(child.id).state == "running"
    kinds = [e.kind for e in LogEntry.select().where(LogEntry.graph == g.id).order_by(LogEntry.id)]
    assert kinds == ["graph.paused", "graph.paused", "graph.played", "graph.paused",
                     "graph.played"]


def test_pause_a_finished_graph_conflicts(store: Store) -> None:
    g = submit(store)
    Graph.update(state="finished").where(Graph.id == g.id).execute()
    with pytest.raises(Conflict, match="finished"):
        control.pause(store, g.id)


def test_kill_once(store: Store) -> None:
    g = submit(store, owner="s1", state="running")
    child = nest(store, Graph.get_by_id(g.id))
    set_tasks(g, relax="finished", scf="running", bands="running")
    Task.update(worker="w9").where(Task.graph == g.id, Task.name == "scf").execute()
    epoch = Graph.get_by_id(g.id).epoch
    killed, running = control.kill(store, g.id)
    assert killed.state == "killed" and killed.epoch == epoch + 1 and killed.finished
    scf = Task.get(Task.graph == g.id, Task.name == "scf")
    assert running == [(scf.id, "w9")]
    assert task_states(g) == {"relax": "finished", "scf": "killed", "report": "killed",
                              "bands": "killed"}
    assert Graph.get_by_id(child.id).state == "killed"
    assert set(task_states(child).values()) == {"killed"}
    with pytest.raises(Conflict, match="already killed"):
        control.kill(store, g.id)
    with pytest.raises(NotFound):
        control.kill(store, 987654)


def test_retry(store: Store) -> None:
    g = submit(store, owner="s1", state="running")
    child = nest(store, Graph.get_by_id(g.id))
    with pytest.raises(Conflict, match="only a failed or killed graph"):
        control.retry(store, g.id)
    with pytest.raises(Conflict, match="nested"):
        control.retry(store, child.id)
    set_tasks(g, relax="finished", scf="failed", report="skipped", bands="skipped")
    Graph.update(state="failed", finished=time.time()).where(Graph.id == g.id).execute()
    Graph.update(state="failed").where(Graph.id == child.id).execute()
    retried = control.retry(store, g.id)
    assert (retried.state, retried.scheduler, retried.finished) == ("queued", None, None)
    assert task_states(g) == {"relax": "finished", "scf": "waiting", "report": "waiting",
                              "bands": "waiting"}
    assert Graph.get_or_none(Graph.id == child.id) is None    # the unfinished child is dropped
    with pytest.raises(Conflict):
        control.retry(store, g.id)


def test_reassign(store: Store) -> None:
    add_scheduler("s1")
    add_scheduler("s2")
    add_scheduler("dead", heartbeat=time.time() - 3600)
    g = submit(store, owner="s1", state="running")
    child = nest(store, Graph.get_by_id(g.id))
    with pytest.raises(NotFound, match="no scheduler 'nobody'"):
        control.reassign(store, g.id, "nobody", stale_after=5)
    with pytest.raises(Conflict, match="not alive"):
        control.reassign(store, g.id, "dead", stale_after=5)
    with pytest.raises(Conflict, match="already belongs"):
        control.reassign(store, g.id, "s1", stale_after=5)
    with pytest.raises(Conflict, match="nested"):
        control.reassign(store, child.id, "s2", stale_after=5)
    epoch = Graph.get_by_id(g.id).epoch
    moved, old = control.reassign(store, g.id, "s2", stale_after=5)
    assert (moved.scheduler, old, moved.epoch) == ("s2", "s1", epoch + 1)
    assert Graph.get_by_id(child.id).scheduler == "s2"
    event = LogEntry.get(LogEntry.graph == g.id, LogEntry.kind == "graph.reassigned")
    assert json.loads(event.data) == {"from": "s1", "to": "s2"}
    control.kill(store, g.id)
    with pytest.raises(Conflict, match="only a live graph"):
        control.reassign(store, g.id, "s1", stale_after=5)


def test_set_priority(store: Store) -> None:
    g = submit(store, owner="s1", state="running")
    child = nest(store, Graph.get_by_id(g.id))
    assert control.set_priority(store, g.id, 9).priority == 9
    assert Graph.get_by_id(child.id).priority == 9
    for bad in (-1, 10):
        with pytest.raises(Conflict, match="0..9"):
            control.set_priority(store, g.id, bad)


def test_pools(store: Store) -> None:
    submit(store)
    assert control.set_pool(store, "io", 2).max_running == 2
    assert control.set_pool(store, "gpu", None).max_running is None
    with pytest.raises(Conflict):
        control.set_pool(store, "io", -1)
    rows = {r["name"]: r for r in control.pools()}
    assert rows["io"] == {"name": "io", "max_running": 2, "running": 0, "queued": 0}
    assert rows["default"]["max_running"] is None and "gpu" in rows


# -- concurrency: compare-and-set between processes -------------------------------------------

RACER = r"""
import json, sys
from wgops.store.db import Store
from wgops.store.models import Task
store = Store(sys.argv[1]).connect()
ids = json.loads(sys.argv[2])
store.db.execute_sql("SELECT 1")
sys.stdout.write("ready\n"); sys.stdout.flush()
sys.stdin.readline()
won = []
for i in ids:
    with store.write():
        n = (Task.update(state="running", worker=sys.argv[3], attempts=Task.attempts + 1)
             .where(Task.id == i, Task.state == "queued", Task.attempts == 0).execute())
    if n:
        won.append(i)
store.close()
print(json.dumps(won))
"""


def test_concurrent_conditional_updates_exactly_one_wins(store: Store, db_url: str) -> None:
    graph = submit(store, normalise({"name": "race", "tasks": {
        f"t{i}": {"run": "wgops.examples.tasks:noop"} for i in range(300)}}, "race"))
    Task.update(state="queued").where(Task.graph == graph.id).execute()
    ids = [t.id for t in Task.select(Task.id).where(Task.graph == graph.id).order_by(Task.id)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    racers = [subprocess.Popen([sys.executable, "-c", RACER, db_url, json.dumps(order), name],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
                               cwd=str(ROOT))
              for name, order in (("A", ids), ("B", shuffled(ids, 1)), ("C", shuffled(ids, 2)))]
    try:
        for racer in racers:                          # all connected before the start signal
            assert racer.stdout is not None and racer.stdout.readline() == "ready\n"
        for racer in racers:
            assert racer.stdin is not None
            racer.stdin.write("go\n")
            racer.stdin.flush()
        outputs = [racer.communicate(timeout=120)[0] for racer in racers]
    finally:
        for racer in racers:
            if racer.poll() is None:
                racer.kill()
                racer.wait()
    assert all(racer.returncode == 0 for racer in racers)
    won = [set(json.loads(out.strip().splitlines()[-1])) for out in outputs]
    assert sum(len(w) for w in won) == len(ids)             # no row won twice...
    assert set().union(*won) == set(ids)                     # ...and every row won once
    rows = list(Task.select().where(Task.graph == graph.id))
    assert all(r.attempts == 1 and r.state == "running" for r in rows)
    for name, w in zip("ABC", won):
        assert {r.id for r in rows if r.worker == name} == w


def shuffled(ids: list[int], seed: int) -> list[int]:
    out = list(ids)
    random.Random(seed).shuffle(out)
    return out


# -- AsyncStore: off-loop database access with group commit ----------------------------------


class OpenWrite:
    """Another connection's write transaction, held open in a thread of its own until
    :meth:`release`; ``change`` runs inside it."""

    def __init__(self, db_url: str, change: Any):
        import threading

        self.holding, self._released = threading.Event(), threading.Event()

        def hold() -> None:
            other = Store(db_url).connect()
            with other.write():
                change()
                self.holding.set()
                self._released.wait(30)
            other.close()
        self.thread = threading.Thread(target=hold)
        self.thread.start()

    def release(self) -> None:
        self._released.set()

    def join(self) -> None:
        self.thread.join(30)


async def test_async_store_group_commit_isolates_failures(db_url: str) -> None:
    import asyncio

    from wgops.store.db import AsyncStore

    setup = Store(db_url).connect()
    migrate(setup)
    setup.close()
    astore = AsyncStore(Store(db_url))
    astore.start()
    try:
        def add(name: str) -> str:
            Pool.create(name=name)
            return name

        def boom() -> None:
            Pool.create(name="doomed")
            raise ValueError("this write fails alone")

        jobs = [astore.write(add, f"p{i}") for i in range(20)] + [astore.write(boom)]
        results = await asyncio.gather(*jobs, return_exceptions=True)
        assert results[:20] == [f"p{i}" for i in range(20)]
        assert isinstance(results[20], ValueError)
        names = await astore.read(lambda: {p.name for p in Pool.select()})
        assert {f"p{i}" for i in range(20)} <= names and "doomed" not in names
        with pytest.raises(NotFound):
            await astore.read(show_graph, 424242)
    finally:
        await astore.stop()


async def test_quick_read_sees_what_is_committed_and_never_waits_for_a_writer(
        db_url: str) -> None:
    """``quick_read`` (on the loop for SQLite, through the thread for PostgreSQL) gives the
    committed rows while another connection holds an open write transaction over them: it
    neither sees the uncommitted change nor waits for the lock; once that commits, it sees
    it."""
    import asyncio

    from wgops.store.db import AsyncStore
    from wgops.store.loading import task_states

    setup = Store(db_url).connect()
    migrate(setup)
    g = submit(setup)
    tid = Task.get(Task.graph == g.id, Task.name == "relax").id
    setup.close()
    astore = AsyncStore(Store(db_url))
    astore.start()
    writer = OpenWrite(db_url, lambda: Task.update(state="queued", attempts=3).where(
        Task.id == tid).execute())
    try:
        assert await asyncio.to_thread(writer.holding.wait, 30)
        got = await asyncio.wait_for(astore.quick_read(task_states, [tid]), 10)
        assert got == {tid: ("waiting", 0, None)}
        writer.release()
        await asyncio.to_thread(writer.join)
        assert await astore.quick_read(task_states, [tid]) == {tid: ("queued", 3, None)}
        assert await astore.read(task_states, [tid]) == {tid: ("queued", 3, None)}
    finally:
        writer.release()
        writer.join()
        await astore.stop()


async def test_quick_write_runs_on_the_loop_only_when_nothing_waits_before_it(
        db_url: str) -> None:
    """``quick_write`` runs on the event loop (SQLite) only while the database thread has
    nothing queued or running, so it never commits ahead of a write asked for before it;
    otherwise, and always on PostgreSQL, it goes through the thread. A failing write is rolled
    back and raises, as ``write`` does."""
    import threading

    from wgops.store.db import AsyncStore

    setup = Store(db_url).connect()
    migrate(setup)
    local = setup.caps.local_reads
    setup.close()
    astore = AsyncStore(Store(db_url))
    astore.start()
    loop_thread = threading.get_ident()
    ran_on: dict[str, int] = {}

    def add(name: str, after: str | None = None) -> set[str]:
        ran_on[name] = threading.get_ident()
        Pool.create(name=name)
        return {p.name for p in Pool.select()} if after else set()

    def boom() -> None:
        Pool.create(name="doomed")
        raise ValueError("this write fails")

    try:
        await astore.quick_write(add, "alone")
        assert (ran_on["alone"] == loop_thread) is local
        first = astore.queue_write(add, "first")       # asked for, not yet committed
        seen = await astore.quick_write(add, "second", "first")
        assert ran_on["second"] != loop_thread          # behind "first": through the thread
        assert "first" in seen
        await first
        with pytest.raises(ValueError, match="this write fails"):
            await astore.quick_write(boom)
        names = await astore.read(lambda: {p.name for p in Pool.select()})
        assert {"alone", "first", "second"} <= names and "doomed" not in names
        assert astore.writes_here == (1 if local else 0)   # "alone" (boom's was undone)
    finally:
        await astore.stop()


async def test_quick_write_never_waits_for_the_lock_on_the_loop(db_url: str) -> None:
    """SQLite: while another connection holds the write lock, ``quick_write`` does not block
    the event loop; it goes to the database thread, which commits it once the lock is free,
    once."""
    import asyncio

    from wgops.store.db import AsyncStore

    setup = Store(db_url).connect()
    migrate(setup)
    if not setup.caps.local_reads:
        setup.close()
        pytest.skip("quick_write runs on the loop only where reads do (SQLite)")
    setup.close()
    astore = AsyncStore(Store(db_url))
    astore.start()
    holder = OpenWrite(db_url, lambda: Pool.create(name="held"))
    try:
        assert await asyncio.to_thread(holder.holding.wait, 30)
        started = time.monotonic()
        write = asyncio.ensure_future(astore.quick_write(
            lambda: Pool.create(name="later")))
        await asyncio.sleep(0.3)
        assert time.monotonic() - started < 0.5       # the loop went on meanwhile
        assert not write.done()                         # the thread waits for the lock
        holder.release()
        await asyncio.wait_for(write, 20)
        assert await astore.read(lambda: Pool.select().where(Pool.name == "later").count()) == 1
        assert astore.writes_here == 0
    finally:
        holder.release()
        holder.join()
        await astore.stop()


def test_times_keep_sub_second_precision(store: Store) -> None:
    now = time.time()
    g = submit(store)
    Graph.update(started=now).where(Graph.id == g.id).execute()
    add_scheduler("precise", heartbeat=now)
    assert Graph.get_by_id(g.id).started == pytest.approx(now, abs=1e-3)
    assert Scheduler.get_by_id("precise").heartbeat == pytest.approx(now, abs=1e-3)


# -- the worker's finish (one statement on PostgreSQL, three on SQLite) ---------------------------


def test_finish_commits_logs_and_names_the_owner_or_refuses_a_superseded_attempt(
        store: Store) -> None:
    from wgops.store import execution

    g = submit(store, owner="s1", state="running")
    ids = {t.name: t.id for t in Task.select().where(Task.graph == g.id)}
    Task.update(state="running", attempts=1, worker="w1").where(
        Task.id.in_([ids["relax"], ids["scf"], ids["report"]])).execute()
    with store.write():
        owner = execution.finish(ids["relax"], 1, "w1", "finished", '{"e": 1}', None, None, 123.5)
    assert owner == "s1"
    relax = Task.get_by_id(ids["relax"])
    assert (relax.state, relax.result, relax.finished) == ("finished", '{"e": 1}', 123.5)
    events = list(LogEntry.select().where(LogEntry.task == ids["relax"]))
    assert [(e.kind, e.graph, e.actor) for e in events] == [("task.finished", g.id, "w1")]

    error = {"type": "ValueError", "message": "bad", "traceback": None}
    with store.write():
        assert execution.finish(ids["scf"], 1, "w1", "failed", None, error, None, 124.0) == "s1"
    scf = Task.get_by_id(ids["scf"])
    assert scf.state == "failed" and json.loads(scf.error) == error
    # a superseded attempt (another worker, or an older attempt) changes nothing
    with store.write():
        assert execution.finish(ids["report"], 1, "w2", "finished", "1", None, None, 125.0) is False
        assert execution.finish(ids["report"], 0, "w1", "finished", "1", None, None, 125.0) is False
    assert Task.get_by_id(ids["report"]).state == "running"
    assert not LogEntry.select().where(LogEntry.task == ids["report"]).exists()
    # an unowned graph (handed back) still records the outcome; no owner to tell
    Graph.update(scheduler=None).where(Graph.id == g.id).execute()
    with store.write():
        assert execution.finish(ids["report"], 1, "w1", "finished", "1", None, None, 126.0) is None
    assert Task.get_by_id(ids["report"]).state == "finished"
    # a retry puts the task back in the queue, with no terminal event
    Task.update(state="running", attempts=2, worker="w1").where(Task.id == ids["relax"]).execute()
    with store.write():
        assert execution.finish(ids["relax"], 2, "w1", "queued", None, error, 130.0, 127.0) is None
    assert Task.get_by_id(ids["relax"]).state == "queued"
    assert LogEntry.select().where(LogEntry.task == ids["relax"]).count() == 1


# -- a batch's starts and outcomes in one statement (start.many, finish.many) ----------------


def _wide_run(store: Store, n: int) -> tuple[Graph, dict[str, int]]:
    g = submit(store, _wide(n), owner="s1", state="running")
    return g, {t.name: t.id for t in Task.select().where(Task.graph == g.id)}


def _rows(ids: dict[str, int]) -> dict[str, tuple]:
    rows = {t.id: t for t in Task.select().where(Task.id.in_(list(ids.values())))}
    return {name: (rows[i].state, rows[i].attempts, rows[i].worker, rows[i].lost,
                   rows[i].result, rows[i].error) for name, i in ids.items()}


def _start_cases(ids: dict[str, int]) -> list[tuple]:
    """``start`` calls covering its cases: the common one, a stale attempt, a repeat in the
    same batch, a task another live worker runs, a redelivery from a dead worker, one lost
    too often (quarantined), a task that does not exist."""
    Task.update(state="queued").where(Task.id.in_(list(ids.values()))).execute()
    Task.update(state="running", attempts=1, worker="alive").where(
        Task.id == ids["t3"]).execute()
    Task.update(state="running", attempts=1, worker="gone").where(
        Task.id == ids["t4"]).execute()
    Task.update(state="running", attempts=1, worker="gone", lost=2).where(
        Task.id == ids["t5"]).execute()
    from wgops.store.liveness import heartbeat_worker

    heartbeat_worker("alive", 1, 1, ["default"], [])
    now = 500.0
    return [(ids["t0"], 0, "w1", False, 3, 30.0, now),
            (ids["t1"], 0, "w1", False, 3, 30.0, now),
            (ids["t2"], 7, "w1", False, 3, 30.0, now),          # stale: dropped
            (ids["t1"], 0, "w1", False, 3, 30.0, now),          # a repeat: "ours already"
            (ids["t3"], 0, "w1", True, 3, 30.0, now),           # another worker runs it
            (ids["t4"], 0, "w1", True, 3, 30.0, now),           # its worker died: run again
            (ids["t5"], 0, "w1", True, 3, 30.0, now),           # lost too often
            (ids["t6"], 0, "w1", False, 3, 30.0, now),
            (10 ** 9, 0, "w1", False, 3, 30.0, now)]            # no such task


def test_start_many_is_start_for_each(store: Store) -> None:
    """Starting a batch in one statement gives what starting each in turn gives: the same
    verdicts and the same rows (on PostgreSQL, one UPDATE ... FROM (VALUES ...))."""
    from wgops.store import execution

    _, one = _wide_run(store, 7)
    _, many = _wide_run(store, 7)
    with store.write():
        singly = [execution.start(*call) for call in _start_cases(one)]
    with store.write(), Recorder(store) as rec:
        together = execution.start_many(_start_cases(many))
    # where statements are round trips, the common case of all of them is one statement
    assert sum("FROM (VALUES" in sql for sql, _ in rec.statements) == \
        (1 if store.caps.writable_cte else 0)
    assert [v for v, _ in singly] == ["run", "run", "drop", "run", "wait", "run",
                                      "quarantined", "run", "drop"]
    assert [v for v, _ in together] == [v for v, _ in singly]
    started = [(d.attempts, d.name, d.kind, d.spec, d.args) for v, d in together if v == "run"]
    assert started == [(d.attempts, d.name, d.kind, d.spec, d.args)
                       for v, d in singly if v == "run"]
    assert _rows(many) == _rows(one)
    assert _rows(many)["t4"][:4] == ("running", 2, "w1", 1)


def test_finish_many_is_finish_for_each(store: Store) -> None:
    from wgops.store import execution

    error = {"type": "ValueError", "message": "bad", "traceback": None}

    def cases(g: Graph, ids: dict[str, int]) -> list[tuple]:
        Task.update(state="running", attempts=1, worker="w1").where(
            Task.id.in_(list(ids.values()))).execute()
        return [(ids["t0"], 1, "w1", "finished", '{"e": 1}', None, None, 600.0),
                (ids["t1"], 1, "w1", "failed", None, error, None, 601.0),
                (ids["t2"], 1, "w2", "finished", "1", None, None, 602.0),   # another worker's
                (ids["t3"], 0, "w1", "finished", "1", None, None, 603.0),   # an older attempt
                (ids["t4"], 1, "w1", "queued", None, error, 700.0, 604.0),  # a retry
                (ids["t0"], 1, "w1", "finished", '{"e": 2}', None, None, 605.0),  # a repeat
                (ids["t5"], 1, "w1", "finished", "5", None, None, 606.0)]

    g1, one = _wide_run(store, 6)
    g2, many = _wide_run(store, 6)
    with store.write():
        singly = [execution.finish(*call) for call in cases(g1, one)]
    with store.write(), Recorder(store) as rec:
        together = execution.finish_many(cases(g2, many))
    assert sum("FROM (VALUES" in sql for sql, _ in rec.statements) == \
        (1 if store.caps.writable_cte else 0)
    assert singly == ["s1", "s1", False, False, "s1", False, "s1"]
    assert together == singly
    assert _rows(many) == _rows(one)
    logged = [(e.task, e.kind, e.actor) for e in LogEntry.select().where(
        LogEntry.graph == g2.id).order_by(LogEntry.task)]
    assert logged == [(many["t0"], "task.finished", "w1"), (many["t1"], "task.failed", "w1"),
                      (many["t5"], "task.finished", "w1")]
    # an unowned graph: the outcome is kept, no owner to tell
    g3, unowned = _wide_run(store, 2)
    Graph.update(scheduler=None).where(Graph.id == g3.id).execute()
    Task.update(state="running", attempts=1, worker="w1").where(
        Task.graph == g3.id).execute()
    with store.write():
        assert execution.finish_many([(unowned["t0"], 1, "w1", "finished", "1", None, None,
                                       1.0), (unowned["t1"], 1, "w1", "finished", "1", None,
                                              None, 1.0)]) == [None, None]


async def test_async_store_hands_a_batch_of_calls_to_their_many_form(db_url: str) -> None:
    """Writes queued together whose function has a ``many`` form reach it as one call, in
    their order, with the other writes of the batch on their own; if the batch fails, each
    write is redone alone in its savepoint (the ``many`` form is not used then)."""
    import asyncio
    import threading

    from wgops.store.db import AsyncStore

    setup = Store(db_url).connect()
    migrate(setup)
    setup.close()
    calls: list[tuple[str, list]] = []

    def add(name: str) -> str:
        calls.append(("one", [name]))
        Pool.create(name=name)
        return name

    def add_many(names: list[tuple[str]]) -> list[str]:
        calls.append(("many", [n for n, in names]))
        for n, in names:
            Pool.create(name=n)
        return [n for n, in names]

    add.many = add_many  # type: ignore[attr-defined]

    def other(name: str) -> str:
        Pool.create(name=name)
        return name

    gate = threading.Event()

    def hold() -> None:
        gate.wait(30)

    astore = AsyncStore(Store(db_url))
    astore.start()
    try:
        held = astore.write(hold)                        # the thread waits here ...
        await asyncio.sleep(0.2)
        jobs = [astore.write(add, "a"), astore.write(other, "x"), astore.write(add, "b"),
                astore.write(add, "c")]                  # ... while these queue up
        gate.set()
        await held
        assert await asyncio.gather(*jobs) == ["a", "x", "b", "c"]
        assert calls == [("many", ["a", "b", "c"])]
        calls.clear()
        gate.clear()
        held = astore.write(hold)
        await asyncio.sleep(0.2)

        def boom() -> None:
            raise ValueError("fails alone")

        jobs = [astore.write(add, "d"), astore.write(boom), astore.write(add, "e")]
        gate.set()
        await held
        results = await asyncio.gather(*jobs, return_exceptions=True)
        assert results[0] == "d" and isinstance(results[1], ValueError) and results[2] == "e"
        assert calls == [("many", ["d", "e"]), ("one", ["d"]), ("one", ["e"])]
        # a many form that answers for fewer calls than it was given: redone one by one
        calls.clear()
        gate.clear()
        held = astore.write(hold)
        await asyncio.sleep(0.2)
        add.many = lambda names: add_many(names)[:1]  # type: ignore[attr-defined]
        jobs = [astore.write(add, "f"), astore.write(add, "g")]
        gate.set()
        await held
        assert await asyncio.gather(*jobs) == ["f", "g"]
        assert calls == [("many", ["f", "g"]), ("one", ["f"]), ("one", ["g"])]
        names = await astore.read(lambda: {p.name for p in Pool.select()})
        assert {"a", "b", "c", "d", "e", "x"} <= names
    finally:
        gate.set()
        await astore.stop()


# -- the scheduler's writes in fewer statements (RETURNING where the database has it) ----------


@pytest.fixture(params=["returning", "statement per row"])
def caps(request: pytest.FixtureRequest, store: Store, monkeypatch: pytest.MonkeyPatch) -> str:
    """Runs a test with the database's own capabilities and again without ``returning`` and
    locking reads (the path of an SQLite older than 3.35; on PostgreSQL, the fence and the
    pool lock as no-op updates)."""
    import dataclasses

    from wgops.store import db

    if request.param == "statement per row":
        older = dataclasses.replace(store.caps, returning=False, row_lock=None)
        monkeypatch.setattr(store, "caps", older)
        # what the store's functions read (``capabilities()``)
        monkeypatch.setitem(db._CAPS, id(store.db), older)
    return str(request.param)


def _wide(n: int, pool: str = "default") -> dict[str, Any]:
    return normalise({"name": "wide", "tasks": {
        f"t{k}": {"run": "wgops.examples.tasks:relax", "pool": pool} for k in range(n)}}, "test")


def test_dispatch_queues_each_task_with_its_own_arguments(store: Store, caps: str) -> None:
    from wgops.store import scheduling

    n = scheduling.QUEUE_CHUNK + 7                       # two chunks
    g = submit(store, _wide(n), owner="s1", state="running")
    ids = [t.id for t in Task.select(Task.id).where(Task.graph == g.id).order_by(Task.id)]
    set_tasks(g, t3="running")                   # no longer waiting: not queued again
    items = [(tid, "default", dumps({"k": k})) for k, tid in enumerate(ids)]
    with store.write():
        owned, queued, capped = scheduling.dispatch(g.id, "s1", g.epoch, items, 50.0)
    assert owned and not capped
    assert sorted(queued) == sorted(ids[:3] + ids[4:])
    rows = {t.id: t for t in Task.select().where(Task.graph == g.id)}
    for k, tid in enumerate(ids):
        if k == 3:
            assert rows[tid].state == "running" and rows[tid].args is None
        else:
            assert (rows[tid].state, json.loads(rows[tid].args), rows[tid].queued_at) == \
                ("queued", {"k": k}, 50.0)
    # the same arguments for all (the common no-argument case) and a stale owner
    g2 = submit(store, _wide(5), owner="s1", state="running")
    ids2 = [t.id for t in Task.select(Task.id).where(Task.graph == g2.id)]
    with store.write():
        assert scheduling.dispatch(g2.id, "s2", g2.epoch, [(t, "default", "{}") for t in ids2],
                           51.0) == (False, [], {})
        owned, queued, _ = scheduling.dispatch(g2.id, "s1", g2.epoch,
                                       [(t, "default", "{}") for t in ids2], 51.0)
    assert owned and sorted(queued) == sorted(ids2)
    assert {t.args for t in Task.select().where(Task.graph == g2.id)} == {"{}"}


def test_dispatch_holds_back_what_a_pool_cap_has_no_room_for(store: Store, caps: str) -> None:
    from wgops.store import scheduling

    g = submit(store, _wide(5, "gpu"), owner="s1", state="running")
    Pool.update(max_running=3).where(Pool.name == "gpu").execute()
    ids = [t.id for t in Task.select(Task.id).where(Task.graph == g.id).order_by(Task.id)]
    set_tasks(g, t0="running")                    # one of the three already taken
    items = [(tid, "gpu", "{}") for tid in ids[1:]]
    with store.write():
        owned, queued, capped = scheduling.dispatch(g.id, "s1", g.epoch, items, 60.0)
    assert owned and sorted(queued) == ids[1:3] and sorted(capped) == ids[3:]
    assert capped[ids[3]] == "pool gpu at its cap (3/3 running or queued)"
    assert Task.get_by_id(ids[4]).waiting_for == capped[ids[4]]
    assert scheduling.pool_room("gpu") == (3, 3)
    assert scheduling.pool_room("nowhere") == (None, 0)


def test_dispatch_over_pools_and_chunks(store: Store, caps: str) -> None:
    """A pool without a cap whose tasks span two chunks beside a pool with a cap: every task of
    the first queued (but the one already running), the second's held at its cap."""
    from wgops.store import scheduling

    n = scheduling.QUEUE_CHUNK + 3
    doc = normalise({"name": "mixed", "tasks": {
        **{f"d{k}": {"run": "wgops.examples.tasks:relax"} for k in range(n)},
        **{f"g{k}": {"run": "wgops.examples.tasks:relax", "pool": "gpu"} for k in range(4)}}},
        "test")
    g = submit(store, doc, owner="s1", state="running")
    Pool.update(max_running=2).where(Pool.name == "gpu").execute()
    rows = list(Task.select(Task.id, Task.pool).where(Task.graph == g.id).order_by(Task.id))
    default = [t.id for t in rows if t.pool == "default"]
    gpu = [t.id for t in rows if t.pool == "gpu"]
    Task.update(state="running").where(Task.id == default[5]).execute()
    items = [(t.id, t.pool, "{}") for t in rows]
    with store.write():
        owned, queued, capped = scheduling.dispatch(g.id, "s1", g.epoch, items, 70.0)
    assert owned
    assert sorted(queued) == sorted(default[:5] + default[6:] + gpu[:2])
    assert sorted(capped) == gpu[2:]
    states = {t.id: t.state for t in Task.select().where(Task.graph == g.id)}
    assert [t for t in default + gpu[:2] if states[t] != "queued"] == [default[5]]
    assert {states[t] for t in gpu[2:]} == {"waiting"}


def test_a_dispatch_of_few_tasks_without_a_cap_is_one_statement(store: Store) -> None:
    """Where the database has writable CTEs and locking reads: the fence, the pools' caps and
    the queueing in one statement, with the long way's results; a stale owner changes
    nothing; a pool with a cap among them takes the long way, within its cap."""
    from wgops.store import scheduling

    doc = normalise({"name": "few", "tasks": {
        **{f"d{k}": {"run": "wgops.examples.tasks:relax"} for k in range(4)},
        **{f"c{k}": {"run": "wgops.examples.tasks:relax", "pool": "cpu"} for k in range(2)},
        **{f"g{k}": {"run": "wgops.examples.tasks:relax", "pool": "gpu"} for k in range(3)}}},
        "test")
    g = submit(store, doc, owner="s1", state="running")
    Pool.update(max_running=1).where(Pool.name == "gpu").execute()
    rows = {t.name: t.id for t in Task.select(Task.id, Task.name).where(Task.graph == g.id)}
    set_tasks(g, d3="running")
    uncapped = [(rows[f"d{k}"], "default", dumps({"k": k})) for k in range(4)] + \
        [(rows[f"c{k}"], "cpu", dumps({"c": k})) for k in range(2)]
    with store.write(), Recorder(store) as rec:
        assert scheduling.dispatch(g.id, "s2", g.epoch, uncapped, 80.0) == (False, [], {})
    assert len(rec.statements) == 1                                       # the fence refuses
    assert {t.state for t in Task.select().where(Task.graph == g.id)} == {"waiting", "running"}
    with store.write(), Recorder(store) as rec:
        owned, queued, capped = scheduling.dispatch(g.id, "s1", g.epoch, uncapped, 81.0)
    if store.caps.writable_cte and store.caps.row_lock:
        assert len(rec.statements) == 1
    assert owned and not capped
    assert sorted(queued) == sorted(rows[n] for n in ("d0", "d1", "d2", "c0", "c1"))
    got = {t.name: (t.state, t.args, t.queued_at, t.waiting_for)
           for t in Task.select().where(Task.graph == g.id)}
    assert got["d1"] == ("queued", dumps({"k": 1}), 81.0, None)
    assert got["c1"] == ("queued", dumps({"c": 1}), 81.0, None)
    assert got["d3"][0] == "running" and got["d3"][1] is None        # not waiting: left alone
    # a pool with a cap among them: the long way, within its cap (one room)
    mixed = [(rows[f"g{k}"], "gpu", "{}") for k in range(3)]
    with store.write():
        owned, queued, capped = scheduling.dispatch(g.id, "s1", g.epoch, mixed, 82.0)
    assert owned and queued == [rows["g0"]] and sorted(capped) == [rows["g1"], rows["g2"]]
    assert Task.get_by_id(rows["g2"]).waiting_for == "pool gpu at its cap (1/1 running or queued)"


def test_completing_a_nested_graph_finishes_its_task(store: Store, caps: str) -> None:
    from wgops.store import scheduling

    parent = submit(store, owner="s1", state="running")
    child = nest(store, parent)
    set_tasks(parent, bands="running")
    with store.write():                      # its task b is still waiting: not complete
        assert not scheduling.complete_graph(child.id, "s1", child.epoch, "finished", {}, None,
                                             70.0)
    set_tasks(child, b="finished")
    with store.write():
        assert not scheduling.complete_graph(child.id, "s2", child.epoch, "finished", {}, None,
                                             70.0)
        assert scheduling.complete_graph(child.id, "s1", child.epoch, "finished", {"x": 1}, None,
                                         70.0)
    task = Task.get(Task.graph == parent.id, Task.name == "bands")
    assert (task.state, json.loads(task.result), task.finished) == ("finished", {"x": 1}, 70.0)
    assert Graph.get_by_id(child.id).state == "finished"
    assert [(e.kind, e.actor, e.task) for e in LogEntry.select().where(
        LogEntry.graph == child.id)] == [("graph.finished", "s1", None)]
    # a failed nested graph fails its task with the graph's error, in one statement where
    # the database has writable CTEs
    second = nest(store, parent, "scf")
    set_tasks(parent, scf="running")
    set_tasks(second, b="failed")
    error = {"type": "GraphFailed", "message": "failed tasks: b", "traceback": None}
    with store.write(), Recorder(store) as rec:
        assert scheduling.complete_graph(second.id, "s1", second.epoch, "failed", None, error,
                                         70.5)
    if store.caps.writable_cte:
        assert len(rec.statements) == 1
    task = Task.get(Task.graph == parent.id, Task.name == "scf")
    assert (task.state, task.result, json.loads(task.error), task.finished) == \
        ("failed", None, error, 70.5)
    with store.write():                      # twice: the graph is closed, nothing changes
        assert not scheduling.complete_graph(second.id, "s1", second.epoch, "failed", None,
                                             error, 71.0)
    assert Task.get_by_id(task.id).finished == 70.5
    assert LogEntry.select().where(LogEntry.graph == second.id).count() == 1
    set_tasks(parent, relax="finished", report="skipped")
    with store.write():                      # a root graph has no task to finish
        assert scheduling.complete_graph(parent.id, "s1", parent.epoch, "failed", None,
                                 {"type": "GraphFailed", "message": "x", "traceback": None}, 71.0)
    assert Graph.get_by_id(parent.id).state == "failed"


@pytest.mark.parametrize("open_state", ["waiting", "queued", "running"])
def test_a_graph_is_never_completed_while_one_of_its_tasks_is_open(store: Store,
                                                                   open_state: str) -> None:
    """Whatever a scheduler believes (two drivers, a stale message), the database refuses."""
    from wgops.store import scheduling

    g = submit(store, owner="s1", state="running")
    set_tasks(g, relax="finished", scf="finished", bands="finished", report=open_state)
    for state in ("finished", "failed"):
        with store.write():
            assert not scheduling.complete_graph(g.id, "s1", g.epoch, state, {}, None, 5.0)
    assert Graph.get_by_id(g.id).state == "running"
    set_tasks(g, report="killed")
    with store.write():
        assert scheduling.complete_graph(g.id, "s1", g.epoch, "failed", None, None, 6.0)
    assert Graph.get_by_id(g.id).state == "failed"


def _updates_in_this_transaction(table: str) -> int:
    """PostgreSQL: the rows of ``table`` this transaction updated (new versions written)."""
    from wgops.store.db import database

    row = database.obj.execute_sql(
        "SELECT n_tup_upd FROM pg_stat_xact_user_tables WHERE relname = %s", (table,)
    ).fetchone()
    return int(row[0]) if row else 0


def test_a_fence_holds_the_graph_until_its_transaction_ends(store: Store, db_url: str) -> None:
    """While a scheduler's write is open after its fence, another connection's change of
    owner waits; once it commits, the first scheduler's next fence finds the graph lost. On
    PostgreSQL the fence and the pool lock write no new version of their rows (a graph row
    carries its whole document), and a top-level graph is inserted with its root in one row
    version."""
    import threading

    from wgops.store import scheduling

    with store.write():
        g = create_graph(DOC, owner="s1", state="running")
        if store.caps.row_lock:
            assert _updates_in_this_transaction("graph") == 0
    assert g.root == g.id == Graph.get_by_id(g.id).root
    changed = threading.Event()

    def reassign() -> None:
        other = Store(db_url).connect()
        with other.write():
            Graph.update(scheduler="s2", epoch=Graph.epoch + 1).where(Graph.id == g.id).execute()
        changed.set()

    thread = threading.Thread(target=reassign)
    try:
        with store.write():
            assert scheduling.fence(g.id, "s1", g.epoch)
            assert scheduling.pool_room("default") == (None, 0)
            if store.caps.row_lock:
                assert _updates_in_this_transaction("graph") == 0
                assert _updates_in_this_transaction("pool") == 0
            thread.start()
            assert not changed.wait(0.5), "the owner changed under an open fence"
    finally:
        thread.join(20)
    assert changed.is_set()
    with store.write():
        assert not scheduling.fence(g.id, "s1", g.epoch)
        assert scheduling.fence(g.id, "s2", g.epoch + 1)


def test_a_cap_set_during_a_dispatch_waits_for_it_and_dispatches_do_not(store: Store,
                                                                          db_url: str) -> None:
    """A dispatch to pools without a cap holds them until it commits: a cap set meanwhile
    waits (so a dispatch counting the pool's room after it sees what this one queued);
    another graph's dispatch to the same pool goes ahead. (SQLite's writers exclude each
    other: there the whole transaction is the lock.)"""
    import threading

    from wgops.store import scheduling

    if not store.caps.row_lock:
        pytest.skip("the database's writers exclude each other")
    g1 = submit(store, _wide(2), owner="s1", state="running")
    g2 = submit(store, _wide(2), owner="s2", state="running")
    first = [t.id for t in Task.select(Task.id).where(Task.graph == g1.id)]
    second = [t.id for t in Task.select(Task.id).where(Task.graph == g2.id)]
    capped, dispatched = threading.Event(), threading.Event()

    def set_cap() -> None:
        other = Store(db_url).connect()
        with other.write():
            Pool.update(max_running=1).where(Pool.name == "default").execute()
        capped.set()

    def dispatch_other() -> None:
        other = Store(db_url).connect()
        with other.write():
            assert scheduling.dispatch(g2.id, "s2", g2.epoch,
                                       [(t, "default", "{}") for t in second], 91.0)[0]
        dispatched.set()

    threads = [threading.Thread(target=dispatch_other), threading.Thread(target=set_cap)]
    try:
        with store.write():
            owned, queued, _ = scheduling.dispatch(g1.id, "s1", g1.epoch,
                                                   [(t, "default", "{}") for t in first], 90.0)
            assert owned and sorted(queued) == sorted(first)
            threads[0].start()
            assert dispatched.wait(10), "a dispatch to the same pool waited for another"
            threads[1].start()
            assert not capped.wait(0.5), "a cap was set under an open dispatch"
    finally:
        for thread in threads:
            if thread.ident is not None:
                thread.join(20)
    assert capped.is_set()
    assert Pool.get(Pool.name == "default").max_running == 1


def test_a_fence_waiting_for_a_change_of_owner_sees_it(store: Store, db_url: str) -> None:
    import threading

    from wgops.store import scheduling

    g = submit(store, owner="s1", state="running")
    holding, release = threading.Event(), threading.Event()

    def reassign() -> None:
        other = Store(db_url).connect()
        with other.write():
            Graph.update(scheduler="s2", epoch=Graph.epoch + 1).where(Graph.id == g.id).execute()
            holding.set()
            release.wait(20)

    thread = threading.Thread(target=reassign)
    thread.start()
    try:
        assert holding.wait(10)
        threading.Timer(0.3, release.set).start()
        with store.write():
            assert not scheduling.fence(g.id, "s1", g.epoch)
    finally:
        release.set()
        thread.join(20)


def test_claim_and_load_in_one_transaction(store: Store) -> None:
    from wgops.store import loading

    g = submit(store)
    with store.write():
        rows = loading.claim_and_load(g.id, "s1", 80.0)
    assert rows is not None and [r.id for r in rows] == [g.id]
    assert rows == loading.load_tree(g.id, "s1")
    assert {t.name for t in rows[0].tasks} == {"relax", "scf", "report", "bands"}
    with store.write():
        assert loading.claim_and_load(g.id, "s2", 81.0) is None        # already owned
    assert Graph.get_by_id(g.id).scheduler == "s1"
    assert [(e.kind, e.actor) for e in LogEntry.select().where(LogEntry.graph == g.id)] == \
        [("graph.claimed", "s1")]


def test_a_claimed_tree_is_loaded_whole(store: Store) -> None:
    """A graph claimed again after its scheduler let it go, with a graph nested below it:
    the whole tree, as load_tree reads it, the epoch moved on, one log row per claim."""
    from wgops.store import loading, scheduling

    g = submit(store)
    with store.write():
        loading.claim_and_load(g.id, "s1", 80.0)
    g = Graph.get_by_id(g.id)
    bands = Task.get(Task.graph == g.id, Task.name == "bands")
    with store.write():
        child = scheduling.spawn_child(g.id, "s1", g.epoch, bands.id, CHILD, {"density": 2},
                                       4, g.id, 0, 90.0)
    assert child is not None
    Graph.update(scheduler=None).where(Graph.id == g.id).execute()      # let go
    Graph.update(scheduler="s2").where(Graph.id == child.id).execute()
    with store.write():
        rows = loading.claim_and_load(g.id, "s2", 95.0)
    assert rows is not None and [r.id for r in rows] == [g.id, child.id]
    assert rows == loading.load_tree(g.id, "s2")
    assert rows[0].epoch == g.epoch + 1 and rows[0].child_of == {bands.id: child.id}
    assert [(e.kind, e.actor) for e in LogEntry.select().where(
        LogEntry.graph == g.id, LogEntry.kind == "graph.claimed").order_by(LogEntry.id)] == \
        [("graph.claimed", "s1"), ("graph.claimed", "s2")]


def test_spawned_child_is_returned_as_load_tree_reads_it(store: Store) -> None:
    from wgops.store import loading, scheduling

    g = submit(store, owner="s1", state="running")
    task = Task.get(Task.graph == g.id, Task.name == "bands")
    with store.write():
        assert scheduling.spawn_child(g.id, "s2", g.epoch, task.id, CHILD, {"density": 2}, 4,
                                      g.id, 0, 90.0) is None          # not its owner
        row = scheduling.spawn_child(g.id, "s1", g.epoch, task.id, CHILD, {"density": 2}, 4,
                                     g.id, 0, 90.0)
    assert row is not None
    assert [row] == loading.load_tree(row.id, "s1")
    assert row.inputs == {"density": 2} and row.parent_task == task.id and row.depth == 1
    assert Task.get_by_id(task.id).state == "running"


def test_a_spawn_in_one_statement_writes_what_its_statements_write(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """A nested graph's spawn and a built graph's, in one statement (store/spawning.py)
    against statement by statement (a graph larger than AT_ONCE_TASKS): the same rows of
    the child graph, its document, tasks and pools, the spawning task and the event log,
    and the same row returned; a stale owner and a second spawn are refused alike."""
    from wgops.store import execution, scheduling, shapes, spawning

    child = normalise({"name": "child", "inputs": {"k": 1}, "tasks": {
        "a": {"run": "wgops.examples.tasks:relax", "pool": "io", "retries": 1},
        "b": {"shell": "echo ${a.structure}", "pool": "fresh-pool"},
        "c": {"run": "wgops.examples.tasks:scf", "args": {"s": "${inputs.k}"}}}}, "test")
    child["source"] = "c.yaml"
    if not spawning.available(child):
        pytest.skip("a spawn in one statement needs writable CTEs and locking reads")

    def spawn(at_once: bool, built: bool) -> tuple[Any, dict[str, Any]]:
        monkeypatch.setattr(spawning, "AT_ONCE_TASKS", 64 if at_once else 0)
        parent = submit(store, MAPPED if built else DOC, owner="s1", state="running")
        task = Task.get(Task.graph == parent.id, Task.name == ("b" if built else "bands"))
        with store.write():
            if built:
                Task.update(state="running", attempts=1, worker="w1").where(
                    Task.id == task.id).execute()
                execution.built(task.id, 1, "w1", json.dumps({"name": "built"}), 1.0)
                assert shapes.spawn_built(parent.id, "s2", parent.epoch, task.id, child, 3,
                                          parent.id, 0, 2.0) is None
                row = shapes.spawn_built(parent.id, "s1", parent.epoch, task.id, child, 3,
                                         parent.id, 0, 2.0)
                assert shapes.spawn_built(parent.id, "s1", parent.epoch, task.id, child, 3,
                                          parent.id, 0, 2.0) is None    # spawned already
            else:
                assert scheduling.spawn_child(parent.id, "s2", parent.epoch, task.id, child,
                                              {"k": 2}, 3, parent.id, 0, 2.0) is None
                row = scheduling.spawn_child(parent.id, "s1", parent.epoch, task.id, child,
                                             {"k": 2}, 3, parent.id, 0, 2.0)
                assert scheduling.spawn_child(parent.id, "s1", parent.epoch, task.id, child,
                                              {"k": 2}, 3, parent.id, 0, 2.0) is None
        assert row is not None and row.parent_task == task.id and row.root == parent.id
        assert [row] == load_tree(row.id, "s1")
        graph = Graph.select().where(Graph.id == row.id).dicts().get()
        assert graph.pop("parent_task") == task.id and graph.pop("root") == parent.id
        for key in ("id", "created", "started"):
            graph.pop(key)
        tasks = [{k: v for k, v in t.items() if k not in ("id", "graph")} for t in
                 Task.select().where(Task.graph == row.id).order_by(Task.id).dicts()]
        spawner = Task.select().where(Task.id == task.id).dicts().get()
        events = [(e.kind, e.actor, e.data.replace(str(row.id), "CHILD") if e.data else None)
                  for e in LogEntry.select().where(LogEntry.graph == parent.id)
                  .order_by(LogEntry.id)]
        return (dataclasses.replace(row, id=0, parent_task=0, root=0, tasks=[
            dataclasses.replace(t, id=0) for t in row.tasks])), {
            "graph": graph, "tasks": tasks, "events": events,
            "document": json.loads(GraphDocument.get_by_id(row.id).document),
            "pools": sorted(p.name for p in Pool.select()),
            "spawner": {k: v for k, v in spawner.items() if k not in ("id", "graph")}}

    for built in (False, True):
        at_once = spawn(True, built)
        assert spawn(False, built) == at_once
        assert at_once[1]["tasks"][0]["name"] == "a"          # in the document's order
    assert "fresh-pool" in at_once[1]["pools"]
    assert [e[0] for e in at_once[1]["events"]][-1] == "task.built"


# -- run-time shapes --------------------------------------------------------------------------

MAPPED = normalise({"name": "mapped", "tasks": {
    "p": {"run": "tests.tasks:numbers", "args": {"n": 3}},
    "sq": {"map": "${p.xs}", "run": "tests.tasks:square", "args": {"x": "${item}"},
           "retries": 2, "pool": "io"},
    "b": {"build": "tests.tasks:countdown_graph", "args": {"n": 1}}}}, "test")


def test_a_map_expands_once_fenced_and_closes_with_results_in_order(store: Store) -> None:
    from wgops.store import shapes

    g = submit(store, MAPPED, owner="s1", state="running")
    sq = Task.get(Task.graph == g.id, Task.name == "sq")
    spec = MAPPED["tasks"]["sq"]
    with store.write():
        assert shapes.expand_map(g.id, "s2", g.epoch, sq.id, "sq", "python", "io", spec,
                                 [1, 2, 3], 1.0) is None           # not its owner
        rows = shapes.expand_map(g.id, "s1", g.epoch, sq.id, "sq", "python", "io", spec,
                                 [{"a": 1}, 2, 3], 1.0)
        assert shapes.expand_map(g.id, "s1", g.epoch, sq.id, "sq", "python", "io", spec,
                                 [1, 2, 3], 1.0) is None           # no longer waiting
    assert [(r.name, r.map_index, r.map_of, r.pool) for r in rows] == [
        (f"sq[{i}]", i, sq.id, "io") for i in range(3)]
    assert json.loads(rows[0].spec) == {"kind": "python", "run": "tests.tasks:square",
                                        "retries": 2, "pool": "io", "item": {"a": 1},
                                        "index": 0, "retry_delay": 0.0, "timeout": None}
    assert Task.get_by_id(sq.id).state == "running"
    with store.write():
        assert shapes.close_map(g.id, "s1", g.epoch, sq.id, 2.0) is None   # copies open
    for row, result in zip(rows, ['{"a":1}', "4", "9"]):
        Task.update(state="finished", result=result).where(Task.id == row.id).execute()
    with store.write():
        assert shapes.close_map(g.id, "s1", g.epoch, sq.id, 3.0) == "finished"
    assert json.loads(Task.get_by_id(sq.id).result) == [{"a": 1}, 4, 9]


def test_a_map_closes_failed_naming_its_failed_copies(store: Store) -> None:
    from wgops.store import shapes

    g = submit(store, MAPPED, owner="s1", state="running")
    sq = Task.get(Task.graph == g.id, Task.name == "sq")
    with store.write():
        rows = shapes.expand_map(g.id, "s1", g.epoch, sq.id, "sq", "python", "io",
                                 MAPPED["tasks"]["sq"], [1, 2, 3], 1.0)
    for row, state in zip(rows, ["finished", "failed", "killed"]):
        Task.update(state=state).where(Task.id == row.id).execute()
    with store.write():
        assert shapes.close_map(g.id, "s1", g.epoch, sq.id, 2.0) == "failed"
    assert json.loads(Task.get_by_id(sq.id).error)["message"] == "copies failed: sq[1], sq[2]"


def test_condition_skips_and_an_empty_map_do_not_fail(store: Store) -> None:
    from wgops.store import shapes

    g = submit(store, MAPPED, owner="s1", state="running")
    ids = {t.name: t.id for t in Task.select().where(Task.graph == g.id)}
    with store.write():
        assert shapes.skip_condition(g.id, "s1", g.epoch, [ids["b"]], 1.0)
        assert shapes.finish_in_scheduler(g.id, "s1", g.epoch, ids["sq"], [], 1.0)
        assert not shapes.skip_condition(g.id, "s2", g.epoch, [ids["p"]], 1.0)
    b, sq = Task.get_by_id(ids["b"]), Task.get_by_id(ids["sq"])
    assert (b.state, b.condition_false, json.loads(b.error)["message"]) == (
        "skipped", True, "condition false")
    assert (sq.state, sq.result) == ("finished", "[]")


def test_a_built_document_is_spawned_once_as_the_tasks_nested_graph(store: Store) -> None:
    from wgops.store import execution, loading, shapes

    g = submit(store, MAPPED, owner="s1", state="running")
    b = Task.get(Task.graph == g.id, Task.name == "b")
    Task.update(state="running", attempts=1, worker="w1").where(Task.id == b.id).execute()
    assert shapes.built_document(b.id) is None                      # its builder runs
    child_doc = normalise({"name": "built", "tasks": {"a": {"run": "tests.tasks:noop"}}}, "t")
    with store.write():
        assert execution.built(b.id, 1, "w2", "{}", 1.0) is False  # not its worker
        assert execution.built(b.id, 1, "w1", json.dumps({"name": "built"}), 1.0) == "s1"
    assert shapes.built_document(b.id) == {"name": "built"}
    assert Task.get_by_id(b.id).worker is None
    assert [(e.kind, e.graph, e.actor) for e in LogEntry.select().where(
        LogEntry.task == b.id)] == [("task.built", g.id, "w1")]
    with store.write():
        assert shapes.spawn_built(g.id, "s2", g.epoch, b.id, child_doc, 0, g.id, 0, 2.0) \
            is None
        row = shapes.spawn_built(g.id, "s1", g.epoch, b.id, child_doc, 0, g.id, 0, 2.0)
    assert row is not None and row.parent_task == b.id and row.depth == 1
    assert [row] == loading.load_tree(row.id, "s1")
    tree = loading.load_tree(g.id, "s1")
    assert tree[0].child_of == {b.id: row.id}


def test_a_second_spawn_of_a_built_graph_is_refused(store: Store) -> None:
    from wgops.store import execution, shapes

    g = submit(store, MAPPED, owner="s1", state="running")
    b = Task.get(Task.graph == g.id, Task.name == "b")
    Task.update(state="running", attempts=1, worker="w1").where(Task.id == b.id).execute()
    child_doc = normalise({"name": "built", "tasks": {"a": {"run": "tests.tasks:noop"}}}, "t")
    with store.write():
        execution.built(b.id, 1, "w1", json.dumps({"name": "built"}), 1.0)
        assert shapes.spawn_built(g.id, "s1", g.epoch, b.id, child_doc, 0, g.id, 0, 2.0)
        assert shapes.spawn_built(g.id, "s1", g.epoch, b.id, child_doc, 0, g.id, 0, 2.0) \
            is None                                   # a reload racing the first spawn
    assert Graph.select().where(Graph.parent_task == b.id).count() == 1


def test_doctor_finds_tasks_whose_work_is_over_but_not_settled(store: Store) -> None:
    """A mapped task whose copies all ended, a build task whose graph was never started, a
    graph task whose nested graph ended: found once they are older than the doctor's age,
    and not while a copy is still open or the builder's commit is recent."""
    from wgops.store import doctor, execution, shapes

    g = submit(store, MAPPED, owner="s1", state="running")
    ids = {t.name: t.id for t in Task.select().where(Task.graph == g.id)}
    with store.write():
        rows = shapes.expand_map(g.id, "s1", g.epoch, ids["sq"], "sq", "python", "io",
                                 MAPPED["tasks"]["sq"], [1, 2], 10.0)
    Task.update(state="finished", finished=11.0).where(Task.id == rows[0].id).execute()
    Task.update(state="running", attempts=1, worker="w1").where(Task.id == ids["b"]).execute()
    assert doctor.unsettled_tasks(100.0) == []               # a copy runs; the builder too
    Task.update(state="failed", finished=12.0).where(Task.id == rows[1].id).execute()
    assert doctor.unsettled_tasks(12.0) == []                # the last copy ended just now
    assert doctor.unsettled_tasks(100.0) == [(ids["sq"], g.id, "all 2 of its copies ended")]
    with store.write():
        execution.built(ids["b"], 1, "w1", json.dumps({"name": "built"}), 50.0)
    LogEntry.update(ts=50.0).where(LogEntry.task == ids["b"]).execute()
    assert [f[0] for f in doctor.unsettled_tasks(40.0)] == [ids["sq"]]   # built recently
    assert doctor.unsettled_tasks(100.0)[1:] == [
        (ids["b"], g.id, "its builder returned a graph that was never started")]
    child_doc = normalise({"name": "built", "tasks": {"a": {"run": "tests.tasks:noop"}}}, "t")
    with store.write():
        child = shapes.spawn_built(g.id, "s1", g.epoch, ids["b"], child_doc, 0, g.id, 0, 60.0)
    assert child is not None
    assert [f[0] for f in doctor.unsettled_tasks(100.0)] == [ids["sq"]]  # its graph runs
    Graph.update(state="finished", finished=70.0).where(Graph.id == child.id).execute()
    assert doctor.unsettled_tasks(100.0)[1:] == [
        (ids["b"], g.id, f"its nested graph {child.id} is finished")]
    Graph.update(state="paused").where(Graph.id == g.id).execute()
    assert doctor.unsettled_tasks(100.0) == []               # only running graphs


def test_postgresql_connections_notice_a_silent_cut(pg_url: str) -> None:
    """Keepalives and tcp_user_timeout on every PostgreSQL connection (a host whose link goes
    down is noticed in seconds, not after the kernel's ~15 minutes); a URL may override them."""
    for url, idle in ((pg_url, "10"), (pg_url + "?keepalives_idle=60", "60")):
        store = Store.of(url)
        try:
            store.connect()
            params = store.db.connection().get_dsn_parameters()
            assert params["keepalives"] == "1" and params["keepalives_idle"] == idle
            assert params["keepalives_interval"] == "5" and params["keepalives_count"] == "3"
            assert params["tcp_user_timeout"] == "30000"
        finally:
            store.close()


# -- hot statements ---------------------------------------------------------------------------


def test_task_states_reads_any_number_of_ids_as_committed(store: Store) -> None:
    """``loading.task_states`` (a ListStatement: SQL per power-of-two length, padded, chunked)
    gives each id's committed row once, whatever the list's length, and nothing for ids that
    do not exist."""
    from wgops.store.loading import task_states as states

    graphs = [submit(store) for _ in range(160)]           # 640 tasks: more than one chunk
    with store.write():
        Task.update(state="queued", attempts=2, not_before=12.5).where(
            Task.graph == graphs[0].id, Task.name == "scf").execute()
    ids = [t.id for t in Task.select(Task.id).order_by(Task.id)]
    assert len(ids) == 640
    scf = Task.get(Task.graph == graphs[0].id, Task.name == "scf").id
    assert states([scf]) == {scf: ("queued", 2, 12.5)}
    assert states([]) == {}
    for n in (1, 2, 3, 5, 255, 513, 640):
        got = states(ids[:n] + [10**9])                     # an id that is not there
        assert sorted(got) == ids[:n]
        assert all(row == (("queued", 2, 12.5) if tid == scf else ("waiting", 0, None))
                   for tid, row in got.items())
