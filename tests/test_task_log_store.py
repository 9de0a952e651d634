"""Task logs below the daemons: the tail buffer, the byte bound, the ``task_log`` table on SQLite
and PostgreSQL (upsert per attempt, cascade with its graph, migration m0004 from a version-3
database) and the routing of an ``async`` task's prints by context."""

from __future__ import annotations

import asyncio
import io
import logging
import sys

import pytest

from wgops.daemon.capture import Capture, TailBuffer, install_router, route_to
from wgops.store.db import Store
from wgops.store.errors import NotFound
from wgops.store.graphs import create_graph
from wgops.store.migrations import current_version, migrate
from wgops.store.models import Graph, SchemaVersion, Task, TaskLog
from wgops.store.tasklogs import bounded, save, task_log


def test_tail_buffer_keeps_the_last_characters_and_counts_the_rest() -> None:
    buf = TailBuffer(10)
    for i in range(1000):
        buf.write(f"{i % 10}")
    assert buf.text() == "0123456789" and buf.dropped == 990 and buf.written == 1000
    buf.write("a" * 25)
    assert buf.text() == "a" * 10 and buf.dropped == 1015
    dropped, text = buf.take()
    assert (dropped, text) == (1015, "a" * 10) and not buf
    buf.add(5, "xyz")
    assert (buf.dropped, buf.text()) == (5, "xyz")
    assert TailBuffer(0).text() == ""


def test_bounded_cuts_at_a_character_boundary_and_removes_nul() -> None:
    assert bounded("abc", 10) == ("abc", 0)
    text, cut = bounded("é" * 10, 5)                 # 20 bytes of UTF-8
    assert text == "éé" and cut == 8 and len(text.encode()) <= 5
    assert bounded("a\x00b", 10) == ("a\ufffdb", 0)
    assert bounded("\ud800x", 10)[0] == "?x"          # a lone surrogate is not storable


def test_capture_takes_prints_stderr_and_logging_with_level_and_time() -> None:
    capture = Capture(1000)
    capture.start()
    try:
        print("to stdout")
        print("to stderr", file=sys.stderr)
        logging.getLogger("t.cap").info("an %s record", "info")
    finally:
        capture.stop()
    sent: list[tuple[int, str]] = []
    capture.flush(lambda d, t: sent.append((d, t)))
    ((dropped, text),) = sent
    lines = text.splitlines()
    assert dropped == 0 and lines[:2] == ["to stdout", "to stderr"]
    assert lines[2].endswith(" INFO t.cap: an info record") and lines[2][4] == "-"
    assert sys.stdout is not None and not isinstance(sys.stdout, type(capture))


def test_async_prints_go_to_the_log_of_the_task_whose_context_runs() -> None:
    real = io.StringIO()
    saved = sys.stdout
    sys.stdout = real
    try:
        install_router()
        a: list[str] = []
        b: list[str] = []

        async def task(tag: str) -> None:
            for i in range(3):
                print(f"{tag}{i}")
                await asyncio.sleep(0)

        async def main() -> None:
            loop = asyncio.get_running_loop()
            await asyncio.gather(loop.create_task(task("a"), context=route_to(a.append)),
                                 loop.create_task(task("b"), context=route_to(b.append)))
            print("the worker's own")

        asyncio.run(main())
    finally:
        sys.stdout = saved
    assert "".join(a) == "a0\na1\na2\n" and "".join(b) == "b0\nb1\nb2\n"
    assert "the worker's own" in real.getvalue() and "a0" not in real.getvalue()


def _graph(store: Store) -> Graph:
    with store.write():
        graph = create_graph({"name": "g", "tasks": {
            "a": {"kind": "python", "run": "tests.tasks:noop", "deps": []},
            "b": {"kind": "python", "run": "tests.tasks:noop", "deps": []}}})
        Task.update(attempts=2, state="finished").where(Task.graph == graph.id,
                                                        Task.name == "a").execute()
    return graph


def test_logs_are_kept_per_attempt_and_replaced_by_later_writes(store: Store) -> None:
    graph = _graph(store)
    a = Task.get(Task.graph == graph.id, Task.name == "a")
    with store.write():
        save([{"task": a.id, "attempt": 1, "text": "so far", "dropped": 0, "complete": False,
               "updated": 1.0}])
        save([{"task": a.id, "attempt": 1, "text": "one", "dropped": 7, "complete": True,
               "updated": 2.0},
              {"task": a.id, "attempt": 2, "text": "two", "dropped": 0, "complete": True,
               "updated": 2.0}])
    assert task_log(graph.id, "a")["text"] == "two"
    first = task_log(graph.id, "a", 1)
    assert first == {"graph": graph.id, "task": "a", "attempt": 1, "text": "one",
                     "dropped": 7, "running": False}
    assert task_log(graph.id, "a", 1, tail=2) | {"running": False} == {
        **first, "text": "ne", "dropped": 8}
    assert task_log(graph.id, "b") == {"graph": graph.id, "task": "b", "attempt": 0,
                                       "text": "", "dropped": 0, "running": False}
    for args, says in (((graph.id, "a", 3), "no attempt 3"), ((graph.id, "a", 0), "no attempt"),
                       ((graph.id, "b", 1), "has not run yet"),
                       ((graph.id, "zz"), "no task 'zz'"), ((graph.id + 99, "a"), "no graph")):
        with pytest.raises(NotFound, match=says):
            task_log(*args)


def test_deleting_a_graph_deletes_its_task_logs(store: Store) -> None:
    graph, other = _graph(store), _graph(store)
    ids = [t.id for t in Task.select().where(Task.graph.in_([graph.id, other.id]))]
    with store.write():
        save([{"task": tid, "attempt": 1, "text": "x", "dropped": 0, "complete": True,
               "updated": 1.0} for tid in ids])
    assert TaskLog.select().count() == 4
    with store.write():
        Graph.delete().where(Graph.id == graph.id).execute()
    assert TaskLog.select().count() == 2
    assert {r.task_id for r in TaskLog.select()} == {t.id for t in Task.select()}


def test_m0004_adds_the_table_to_a_version_3_database(store: Store) -> None:
    with store.write():
        TaskLog.drop_table()
        SchemaVersion.delete().where(SchemaVersion.version >= 4).execute()
    assert current_version(store) == 3 and not store.db.table_exists("task_log")
    assert 4 in migrate(store)
    assert store.db.table_exists("task_log")
    test_logs_are_kept_per_attempt_and_replaced_by_later_writes(store)
