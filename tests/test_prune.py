"""Delete, prune, retention and bulk actions against the real system (daemons, broker, CLI),
on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from peewee import JOIN

import wgops
from tests.cluster import Cluster, wait_for
from tests.test_cli import one_line_error
from wgops.store.models import Graph, LogEntry, Task

NESTED = {"name": "outer", "tasks": {
    "a": {"run": "tests.tasks:add", "args": {"a": 1, "b": 2}},
    "inner": {"graph": {"name": "inner", "tasks": {
        "x": {"run": "tests.tasks:add", "args": {"a": "${inputs.v}", "b": 1}},
        "y": {"run": "tests.tasks:noop", "after": ["x"]}}}, "args": {"v": "${a}"}},
}}
NESTED_TASKS = 4          # a, inner, and the nested graph's x and y


def held(name: str, gate: Path) -> dict[str, Any]:
    """A graph whose one task runs until ``gate`` exists."""
    return {"name": name, "tasks": {"hold": {"run": "tests.tasks:gate",
                                             "args": {"path": str(gate)}}}}


def tiny(name: str = "tiny") -> dict[str, Any]:
    return {"name": name, "tasks": {"n": {"run": "tests.tasks:noop"}}}


@pytest.fixture
def system(db_url: str, cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> Cluster:
    cluster.env["WGOPS_DB_URL"] = db_url
    monkeypatch.setenv("WGOPS_DB_URL", db_url)
    return cluster


def count(cluster: Cluster, ids: list[int]) -> tuple[int, int, int]:
    """Rows left: graphs (nested ones included), tasks and event-log rows of these trees."""
    def read() -> tuple[int, int, int]:
        tree = [g.id for g in Graph.select(Graph.id).where(Graph.root.in_(ids))]
        return (len(tree), Task.select().where(Task.graph.in_(tree or [0])).count(),
                LogEntry.select().where(LogEntry.graph.in_(tree or [0])).count())
    return cluster.db(read)


def ended_before(cluster: Cluster, gid: int, seconds: float) -> bool:
    finished = cluster.db(lambda: Graph.get_by_id(gid).finished)
    return finished is not None and time.time() - finished > seconds


def test_delete_and_prune_nested_graphs_with_counts(system: Cluster, tmp_path: Path) -> None:
    c = system
    c.scheduler()
    c.worker(slots=2)
    gate = tmp_path / "gate"
    done, pruned = c.submit(NESTED), c.submit(NESTED)
    running = c.submit(held("held", gate))
    for gid in (done, pruned):
        assert c.wait_graph(gid)["state"] == "finished"
    wait_for(lambda: c.tasks(running)["hold"]["state"] == "running", what="the held task")
    assert count(c, [done])[:2] == (2, NESTED_TASKS) and count(c, [done])[2] > 0

    # bad input: nothing deleted
    before = count(c, [done, pruned, running])
    assert "running" in one_line_error(c.cli("graph", "delete", str(done), str(running),
                                             check=False), 2)
    assert "no graph 999999" in one_line_error(c.cli("graph", "delete", "999999",
                                                     check=False), 2)
    nested = c.db(lambda: Graph.get(Graph.root == done, Graph.id != done).id)
    assert "nested" in one_line_error(c.cli("graph", "delete", str(nested), check=False), 2)
    for age in ("3x", "15", "m", "-1d", ""):
        line = one_line_error(c.cli("graph", "prune", "--older-than", age, check=False), 2)
        assert "90s, 15m, 12h or 30d" in line
    assert count(c, [done, pruned, running]) == before

    # delete one graph: its whole tree, counted
    out = json.loads(c.cli("graph", "delete", str(done), "--json").stdout)
    assert out == {"graphs": 2, "tasks": NESTED_TASKS}
    assert count(c, [done]) == (0, 0, 0)
    one_line_error(c.cli("graph", "show", str(done), check=False), 2)

    # prune: a dry run counts and changes nothing; the running graph is never selected
    wait_for(lambda: ended_before(c, pruned, 1.0), what="the graph to be 1 s old")
    dry = json.loads(c.cli("graph", "prune", "--older-than", "1s", "--dry-run",
                           "--json").stdout)
    assert dry == {"graphs": 2, "tasks": NESTED_TASKS}
    assert count(c, [pruned])[:2] == (2, NESTED_TASKS)
    assert json.loads(c.cli("graph", "prune", "--older-than", "1d", "--json").stdout) == \
        {"graphs": 0, "tasks": 0}
    assert json.loads(c.cli("graph", "prune", "--older-than", "1s", "--state", "failed",
                            "--json").stdout) == {"graphs": 0, "tasks": 0}
    out = json.loads(c.cli("graph", "prune", "--older-than", "1s", "--json").stdout)
    assert out == {"graphs": 2, "tasks": NESTED_TASKS}
    assert count(c, [pruned]) == (0, 0, 0)
    assert c.state(running) == "running" and count(c, [running])[:2] == (1, 1)
    gate.touch()
    assert c.wait_graph(running)["state"] == "finished"


def test_prune_racing_a_running_scheduler_deletes_only_terminal_graphs(
        system: Cluster, tmp_path: Path) -> None:
    """Graphs flow through two schedulers while a client prunes everything terminal as fast
    as it can: a held graph is never touched, every other graph is finished or gone whole,
    and no row is left behind."""
    c = system
    c.scheduler()
    c.scheduler()
    c.worker(slots=4)
    gate = tmp_path / "gate"
    with wgops.Client() as client:
        held_ids = [client.submit(held(f"held-{i}", gate))["id"] for i in range(3)]
        stop = threading.Event()
        removed = {"graphs": 0, "tasks": 0}

        def prune_loop() -> None:
            with wgops.Client() as pruner:
                while not stop.is_set():
                    got = pruner.prune(0.05)
                    removed["graphs"] += got["graphs"]
                    removed["tasks"] += got["tasks"]

        thread = threading.Thread(target=prune_loop)
        thread.start()
        try:
            flowing = [client.submit(NESTED if i % 3 == 0 else tiny())["id"]
                       for i in range(30)]
            wait_for(lambda: count(c, flowing)[0] == 0, 120, 0.2,
                     "every flowing graph to end and be pruned")
            for gid in held_ids:                   # running the whole time: all there
                assert c.state(gid) in ("queued", "running")
                assert count(c, [gid])[:2] == (1, 1)
            gate.touch()
            wait_for(lambda: count(c, held_ids)[0] == 0, 60, 0.2, "the held graphs to go")
        finally:
            stop.set()
            thread.join(60)
    assert removed["graphs"] == 33 + 10        # 10 of the flowing graphs had a nested one
    orphans = c.db(lambda: Task.select().join(Graph, on=(Task.graph == Graph.id),
                                              join_type=JOIN.LEFT_OUTER)
                   .where(Graph.id.is_null()).count())
    assert orphans == 0 and c.db(lambda: Graph.select().count()) == 0
    for proc in c.procs:
        assert "Traceback" not in c.log(proc.pid), c.log(proc.pid)


def test_retention_deletes_old_graphs_and_keeps_a_running_one(system: Cluster,
                                                               tmp_path: Path) -> None:
    c = system
    gate = tmp_path / "gate"
    c.scheduler(extra_env={"WGOPS_RETENTION": "1s"})
    c.scheduler(extra_env={"WGOPS_RETENTION": "1s"})
    c.worker(slots=2)
    running = c.submit(held("held", gate))
    quick = [c.submit(NESTED), c.submit(tiny())]
    wait_for(lambda: c.tasks(running)["hold"]["state"] == "running", what="the held task")
    wait_for(lambda: count(c, quick) == (0, 0, 0), 60, 0.2, "retention to delete them")
    assert c.state(running) == "running" and count(c, [running])[:2] == (1, 1)
    holders = c.db(lambda: [e.actor for e in LogEntry.select().where(
        LogEntry.kind == "graphs.pruned")])
    assert holders and len(set(holders)) == 1           # one scheduler at a time
    gate.touch()
    wait_for(lambda: count(c, [running]) == (0, 0, 0), 60, 0.2, "the held graph to go too")


def test_bulk_actions_by_ids_state_name_and_all(system: Cluster, tmp_path: Path) -> None:
    c = system
    c.scheduler()
    c.worker(slots=4)
    gate = tmp_path / "gate"
    a, b, other = (c.submit(held(n, gate)) for n in ("batch-a", "batch-b", "other"))
    for gid in (a, b, other):
        wait_for(lambda gid=gid: c.tasks(gid)["hold"]["state"] == "running", what="running")

    def act(*args: str) -> list[dict[str, Any]]:
        return json.loads(c.cli("graph", *args, "--json").stdout)

    # none of IDs, --state, --name, --all: exit 2 and nothing changes
    for action in ("pause", "play", "kill", "retry"):
        assert "--all" in one_line_error(c.cli("graph", action, check=False), 2)
    one_line_error(c.cli("graph", "kill", "999999", check=False), 2)
    one_line_error(c.cli("graph", "kill", "--state", "bogus", check=False), 2)
    assert {c.state(g) for g in (a, b, other)} == {"running"}

    assert act("pause", "--name", "batch-*") == [{"id": a, "state": "paused"},
                                                 {"id": b, "state": "paused"}]
    assert c.state(other) == "running"
    assert act("pause", "--name", "nothing-*") == []
    assert act("play", "--state", "paused") == [{"id": a, "state": "running"},
                                                {"id": b, "state": "running"}]
    assert act("kill", str(b)) == [{"id": b, "state": "killed"}]
    assert [g["id"] for g in act("kill", "--all")] == [a, other]
    assert {c.state(g) for g in (a, b, other)} == {"killed"}
    with wgops.Client() as client:
        assert [g["id"] for g in client.retry(name="batch-?")] == [a, b]
        assert {g["id"] for g in client.kill(state=["queued", "running"])} == {a, b}
        assert [g["id"] for g in client.retry(a)] == [a]
        with pytest.raises(ValueError):
            client.pause()
        assert [g["id"] for g in client.kill(all=True)] == [a]
    gate.touch()
