"""The store's delete and prune (wgops.store.deletion), on SQLite and on PostgreSQL."""

from __future__ import annotations

import threading
import time

import pytest

from wgops.store import control, deletion, leases
from wgops.store.db import Store
from wgops.store.errors import Conflict, NotFound
from wgops.store.eventlog import log_event
from wgops.store.graphs import create_graph
from wgops.store.models import GRAPH_DELETING, Graph, GraphDocument, LogEntry, Task, TaskLog

from .test_store import CHILD, DOC, nest, set_tasks, submit


def end(store: Store, graph: Graph, state: str = "finished", at: float | None = None) -> None:
    """Make a graph and everything nested in it terminal, ended at ``at``."""
    at = time.time() if at is None else at
    with store.write():
        tree = Graph.select(Graph.id).where(Graph.root == graph.root)
        Task.update(state="finished").where(Task.graph.in_(tree)).execute()
        Graph.update(state="finished", finished=at).where(Graph.root == graph.root).execute()
        Graph.update(state=state).where(Graph.id == graph.id).execute()
        log_event("graph.finished", graph.id)


def nested_tree(store: Store) -> tuple[Graph, Graph, Graph]:
    """A top-level graph with a nested graph, itself with a nested graph (depth 2)."""
    top = submit(store)
    child = nest(store, top)
    grand_doc = {**DOC, "name": "grand"}
    task = Task.get(Task.graph == child.id, Task.name == "b")
    with store.write():
        grand = create_graph(grand_doc, parent_task=task, root=top.id, depth=2,
                             state="running")
        log_event("graph.running", grand.id)
    return top, child, grand


def rows(graph_ids: list[int]) -> tuple[int, int, int, int]:
    """Graphs, tasks, event-log rows and documents of ``graph_ids``."""
    return (Graph.select().where(Graph.id.in_(graph_ids)).count(),
            Task.select().where(Task.graph.in_(graph_ids)).count(),
            LogEntry.select().where(LogEntry.graph.in_(graph_ids)).count(),
            GraphDocument.select().where(GraphDocument.graph.in_(graph_ids)).count())


def test_delete_removes_the_whole_tree_and_counts_it(store: Store) -> None:
    top, child, grand = nested_tree(store)
    other = submit(store)
    end(store, top)
    end(store, other)
    ids = [top.id, child.id, grand.id]
    with store.write():
        for t in Task.select().where(Task.graph.in_(ids)):
            TaskLog.create(task=t.id, attempt=1, text="out\n")
    kept = TaskLog.create(task=Task.get(Task.graph == other.id).id, attempt=1, text="x")
    n_tasks = len(DOC["tasks"]) + len(CHILD["tasks"]) + len(DOC["tasks"])
    assert rows(ids)[:2] == (3, n_tasks) and rows(ids)[2] >= 2 and rows(ids)[3] == 3
    assert deletion.delete(store, [top.id]) == {"graphs": 3, "tasks": n_tasks}
    assert rows(ids) == (0, 0, 0, 0)
    assert [log.id for log in TaskLog.select()] == [kept.id]   # only the other graph's
    assert rows([other.id])[::3] == (1, 1)                    # untouched, document and all
    assert rows([other.id])[:2] == (1, len(DOC["tasks"]))


def test_delete_refuses_live_nested_and_unknown_and_changes_nothing(store: Store) -> None:
    done = submit(store)
    end(store, done)
    live = submit(store)
    top, child, _ = nested_tree(store)
    with pytest.raises(Conflict, match="queued"):
        deletion.delete(store, [done.id, live.id])
    with pytest.raises(NotFound):
        deletion.delete(store, [done.id, 999_999])
    with pytest.raises(Conflict, match="nested"):
        deletion.delete(store, [child.id])
    # a terminal top whose nested graph is still live is not marked by the database
    Graph.update(state="failed", finished=time.time()).where(Graph.id == top.id).execute()
    with pytest.raises(Conflict, match="no longer"):
        deletion.delete(store, [top.id])
    assert Graph.get_by_id(done.id).state == "finished"
    assert Graph.get_by_id(top.id).state == "failed"
    assert rows([done.id])[:2] == (1, len(DOC["tasks"]))


def test_a_marked_graph_cannot_be_retried_played_or_killed(store: Store) -> None:
    g = submit(store)
    end(store, g, "failed")
    with store.write():
        assert deletion._mark([g.id]) == [g.id]
    for action in (control.retry, control.play, control.pause, control.kill):
        with pytest.raises(Conflict):
            action(store, g.id)
    assert Graph.get_by_id(g.id).state == GRAPH_DELETING
    # an interrupted delete is finished by the next prune, whatever the age asked
    assert deletion.prune(store, 86400) == {"graphs": 1, "tasks": len(DOC["tasks"])}
    assert Graph.get_or_none(Graph.id == g.id) is None


def test_prune_by_age_and_state_and_dry_run(store: Store) -> None:
    now = time.time()
    old_ok, old_failed, young = submit(store), submit(store), submit(store)
    running = submit(store)
    end(store, old_ok, "finished", now - 7200)
    end(store, old_failed, "failed", now - 7200)
    end(store, young, "finished", now - 60)
    Graph.update(state="running").where(Graph.id == running.id).execute()
    per = len(DOC["tasks"])
    assert deletion.prune(store, 3600, dry_run=True, now=now) == {"graphs": 2, "tasks": 2 * per}
    assert Graph.select().count() == 4                       # dry run: nothing changed
    assert deletion.prune(store, 3600, states=["failed"], now=now) == {"graphs": 1,
                                                                       "tasks": per}
    assert Graph.get_or_none(Graph.id == old_failed.id) is None
    assert deletion.prune(store, 3600, now=now) == {"graphs": 1, "tasks": per}
    assert {g.id for g in Graph.select()} == {young.id, running.id}
    assert deletion.prune(store, 30, now=now) == {"graphs": 1, "tasks": per}
    assert [g.id for g in Graph.select()] == [running.id]


def test_prune_in_batches_with_a_limit(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(deletion, "BATCH", 3)
    monkeypatch.setattr(deletion, "MARK_BATCH", 2)
    graphs = [submit(store) for _ in range(5)]
    for g in graphs:
        end(store, g, at=time.time() - 100)
    per = len(DOC["tasks"])
    assert deletion.prune(store, 10, limit=3) == {"graphs": 3, "tasks": 3 * per}
    assert deletion.prune(store, 10) == {"graphs": 2, "tasks": 2 * per}
    assert Graph.select().count() == 0 and Task.select().count() == 0
    assert LogEntry.select().where(LogEntry.graph.is_null(False)).count() == 0
    kinds = [e.kind for e in LogEntry.select().where(LogEntry.graph.is_null())]
    assert kinds == ["graphs.pruned", "graphs.pruned"]


def test_prune_racing_retry_never_deletes_a_live_graph(store: Store, db_url: str) -> None:
    """A retry and a prune on many failed graphs at once: every graph ends either deleted
    whole or retried whole (queued, with all its tasks)."""
    graphs = [submit(store) for _ in range(30)]
    for g in graphs:
        end(store, g, "failed", time.time() - 100)
    errors: list[BaseException] = []

    def retry_all() -> None:
        s = Store.of(db_url)
        with s.bound():
            s.connect()
            for g in reversed(graphs):
                try:
                    control.retry(s, g.id)
                except (Conflict, NotFound):
                    pass
                except BaseException as exc:  # noqa: BLE001 - reported below
                    errors.append(exc)
            s.close()

    thread = threading.Thread(target=retry_all)
    thread.start()
    deletion.prune(store, 10)
    thread.join()
    assert not errors
    for g in graphs:
        row = Graph.get_or_none(Graph.id == g.id)
        if row is not None:
            assert row.state == "queued"
            assert Task.select().where(Task.graph == g.id).count() == len(DOC["tasks"])
        else:
            assert Task.select().where(Task.graph == g.id).count() == 0


def test_prune_events_of_no_graph(store: Store) -> None:
    with store.write():
        log_event("pool.changed", actor="t")
    LogEntry.update(ts=time.time() - 100).execute()
    with store.write():
        log_event("pool.changed", actor="t")
    assert deletion.prune_events(store, time.time() - 50) == 1
    assert LogEntry.select().count() == 1


def test_lease_one_holder_until_it_lapses_by_the_databases_clock(store: Store) -> None:
    from wgops.store.models import Lease

    with store.write():
        assert leases.take("retention", "a", 30)
        assert not leases.take("retention", "b", 30)
        assert leases.take("retention", "a", 30)                   # renewed
        assert leases.holder("retention") == "a"
        Lease.update(expires=Lease.expires - 31).execute()         # 31 s later, not renewed
        assert leases.holder("retention") is None
        assert leases.take("retention", "b", 30)                   # lapsed: b takes it
        assert not leases.take("retention", "a", 30)
        leases.release("retention", "b")
        assert leases.holder("retention") is None
        assert leases.take("retention", "a", 30)
    _ = set_tasks


def test_vacuum_where_deleted_space_needs_it(store: Store) -> None:
    g = submit(store)
    end(store, g)
    deletion.delete(store, [g.id])
    tables = deletion.vacuum(store)
    assert tables == ([] if store.caps.name == "sqlite" else
                      ["event", "task_log", "graph_document", "task", "graph"])


def test_retry_that_read_before_a_mark_does_not_bring_the_graph_back(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """On PostgreSQL a retry reads the graph outside any lock: it may see it failed after a
    prune marked it. Its write is a compare-and-set, so it changes nothing."""
    g = submit(store)
    end(store, g, "failed")
    stale = Graph.get_by_id(g.id)                      # what the retry read: failed
    with store.write():
        assert deletion._mark([g.id]) == [g.id]
    reads = iter([stale])
    real = control.get_graph
    monkeypatch.setattr(control, "get_graph", lambda gid: next(reads, None) or real(gid))
    with pytest.raises(Conflict, match="deleting"):
        control.retry(store, g.id)
    assert Graph.get_by_id(g.id).state == GRAPH_DELETING
    assert {t.state for t in Task.select().where(Task.graph == g.id)} == {"finished"}
    assert deletion.prune(store, 86400)["graphs"] == 1
