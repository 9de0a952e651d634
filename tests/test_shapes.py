"""Graphs shaped at run time (DESIGN §11), end to end on real daemons: ``map`` over a list an
earlier task returned, ``when`` on a value, ``build`` a graph from a builder (loops and
recursion), on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

from tests.cluster import Cluster, wait_for


@pytest.fixture
def up(db_url: str, cluster: Cluster) -> Cluster:
    """A scheduler and a worker of 4 slots on the parametrised database (max_map 10,
    max_depth 6)."""
    cluster.env.update({"WGOPS_DB_URL": db_url, "WGOPS_MAX_MAP": "10", "WGOPS_MAX_DEPTH": "6"})
    cluster.cli("init")
    cluster.scheduler()
    cluster.worker(slots=4)
    return cluster


def tasks(shown: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["name"]: t for t in shown["tasks"]}


def test_map_over_a_run_time_list(up: Cluster) -> None:
    gid = up.submit({"name": "map", "tasks": {
        "parts": {"run": "tests.tasks:numbers", "args": {"n": 7}},
        "sq": {"map": "${parts.xs}", "run": "tests.tasks:square", "args": {"x": "${item}"}},
        "idx": {"map": "${parts.xs}", "shell": "echo ${index}:${item}"},
        "sum": {"run": "tests.tasks:total", "args": {"xs": "${sq}"}}},
        "outputs": {"squares": "${sq}", "sum": "${sum}", "first": "${idx.0.stdout}"}})
    shown = up.wait_graph(gid)
    assert shown["state"] == "finished", shown
    assert shown["outputs"] == {"squares": [1, 4, 9, 16, 25, 36, 49], "sum": 140,
                                "first": "0:1\n"}
    by = tasks(shown)
    assert [by[f"sq[{i}]"]["result"] for i in range(7)] == [1, 4, 9, 16, 25, 36, 49]
    assert by["sq"]["state"] == "finished" and by["sq"]["attempts"] == 1


def test_map_edge_cases_empty_not_a_list_a_failing_copy_and_max_map(up: Cluster) -> None:
    gids = [up.submit({"name": name, "tasks": {
        "parts": {"run": "tests.tasks:numbers", "args": {"n": n}},
        "sq": {"map": ref, "run": "tests.tasks:square_or_fail",
               "args": {"x": "${item}", "bad": bad}, "retries": 1},
        "after": {"run": "tests.tasks:noop", "args": {}, "after": ["sq"]}},
        "outputs": {"sq": "${sq}"}})
        for name, n, ref, bad in (("empty", 0, "${parts.xs}", -1),
                                  ("dict", 3, "${parts}", -1),
                                  ("failing", 4, "${parts.xs}", 3),
                                  ("too-many", 11, "${parts.xs}", -1))]
    empty, dict_, failing, too_many = (up.wait_graph(g) for g in gids)
    assert empty["state"] == "finished" and empty["outputs"] == {"sq": []}
    assert dict_["state"] == "failed"
    assert "map: ${parts} is a mapping, not a list" in tasks(dict_)["sq"]["error"]["message"]
    assert failing["state"] == "failed"
    by = tasks(failing)
    assert by["sq[2]"]["state"] == "failed" and by["sq[2]"]["attempts"] == 2   # its own retry
    assert [by[f"sq[{i}]"]["state"] for i in (0, 1, 3)] == ["finished"] * 3
    assert by["sq"]["error"]["message"] == "copies failed: sq[2]"
    assert by["after"]["state"] == "skipped"
    assert "over max_map (10)" in tasks(too_many)["sq"]["error"]["message"]


def test_when_both_branches_propagation_and_outputs(up: Cluster) -> None:
    gid = up.submit({"name": "when", "inputs": {"v": 5}, "tasks": {
        "check": {"run": "tests.tasks:check", "args": {"value": "${inputs.v}", "limit": 3}},
        "small": {"run": "tests.tasks:check", "args": {"value": "${inputs.v}", "limit": 9}},
        "big": {"when": "${check.big}", "run": "tests.tasks:add", "args": {"a": 1, "b": 2}},
        "tiny": {"when": "${small.big}", "run": "tests.tasks:add", "args": {"a": 1, "b": 2}},
        "uses": {"run": "tests.tasks:add", "args": {"a": "${tiny}", "b": 1}},
        "uses2": {"run": "tests.tasks:add", "args": {"a": "${uses}", "b": 1}},
        "after": {"run": "tests.tasks:add", "args": {"a": 0, "b": 0}, "after": ["tiny"]},
        "none": {"when": "${inputs.v}", "run": "tests.tasks:noop", "args": {}}},
        "outputs": {"big": "${big}", "tiny": "${tiny}", "deep": "${uses2.x}",
                    "after": "${after}"}})
    shown = up.wait_graph(gid)
    assert shown["state"] == "finished", shown
    by = tasks(shown)
    assert by["big"]["state"] == "finished" and by["big"]["result"] == 3
    for name in ("tiny", "uses", "uses2"):
        assert by[name]["state"] == "skipped" and by[name]["error"]["message"] == \
            "condition false", by[name]
    assert by["after"]["state"] == "finished"
    assert shown["outputs"] == {"big": 3, "tiny": None, "deep": None, "after": 0}


def test_build_a_loop_recursion_and_a_python_graph(up: Cluster) -> None:
    gid = up.submit({"name": "loops", "tasks": {
        "count": {"build": "tests.tasks:countdown_graph", "args": {"n": 5}},
        "conv": {"build": "tests.tasks:converge", "args": {"x": 0, "target": 1, "step": 0.7}},
        "py": {"build": "tests.tasks:python_graph", "args": {"n": 41}},
        "fan": {"map": "${count.steps}", "build": "tests.tasks:countdown_graph",
                "args": {"n": 1}}},
        "outputs": {"steps": "${count.steps}", "x": "${conv.x}", "py": "${py.value}"}})
    shown = up.wait_graph(gid, timeout=120)
    assert shown["state"] == "failed" or shown["state"] == "finished", shown
    by = tasks(shown)
    assert by["count"]["result"] == {"steps": 5, "n": 5}
    assert abs(shown["outputs"]["x"] - 1) < 0.01 if shown["outputs"] else True
    assert by["py"]["result"] == {"value": 42}
    assert by["count"]["child"] is not None
    assert "map: ${count.steps} is a number, not a list" in by["fan"]["error"]["message"]


def test_build_refusals_invalid_document_depth_limit_and_a_failing_builder(up: Cluster) -> None:
    gid = up.submit({"name": "refusals", "tasks": {
        "bad": {"build": "tests.tasks:bad_graph"},
        "list": {"build": "tests.tasks:not_a_graph"},
        "deep": {"build": "tests.tasks:countdown_graph", "args": {"n": 9}},
        "broken": {"build": "tests.tasks:builder_fails", "retries": 1},
        "fine": {"run": "tests.tasks:add", "args": {"a": 1, "b": 1}}}})
    shown = up.wait_graph(gid, timeout=90)
    by = tasks(shown)
    assert shown["state"] == "failed"
    assert by["bad"]["error"]["type"] == "InvalidDocument"
    assert "after names unknown task 'ghost'" in by["bad"]["error"]["message"]
    assert by["list"]["error"]["type"] == "TypeError"
    assert "must return a graph document" in by["list"]["error"]["message"]
    assert by["deep"]["state"] == "failed"
    assert by["broken"]["state"] == "failed" and by["broken"]["attempts"] == 2
    assert by["broken"]["error"]["message"] == "the builder broke"
    assert by["fine"]["state"] == "finished"
    from wgops.store.models import Graph, Task

    depth_errors = up.db(lambda: [t.error for t in Task.select().where(
        Task.kind == "build", Task.state == "failed") if t.error and "max_depth" in t.error])
    assert depth_errors and "max_depth (6)" in depth_errors[0]
    assert up.db(lambda: Graph.select().where(Graph.depth > 6).count()) == 0


def test_twenty_builder_loops_on_one_worker_slot(cluster: Cluster) -> None:
    cluster.scheduler()
    cluster.worker(slots=1)
    gid = cluster.submit({"name": "twenty", "tasks": {
        f"loop{i}": {"build": "tests.tasks:countdown_graph", "args": {"n": 4, "tag": str(i)}}
        for i in range(20)},
        "outputs": {f"s{i}": f"${{loop{i}.steps}}" for i in range(20)}})
    shown = cluster.wait_graph(gid, timeout=180)
    assert shown["state"] == "finished", shown
    assert shown["outputs"] == {f"s{i}": 4 for i in range(20)}


def test_a_scheduler_killed_while_expanding_a_large_map_loses_and_duplicates_nothing(
        cluster: Cluster) -> None:
    """The kill lands as the expansion starts (the moment ``parts`` has finished), with a
    builder loop under way: after adoption, every copy exists once and everything ends."""
    from wgops.store.models import Task

    first, second = cluster.scheduler(), cluster.scheduler()
    ids = {cluster.wait_daemon("scheduler", p.pid): p for p in (first, second)}
    cluster.worker(slots=4)
    n = 3000
    gid = cluster.submit({"name": "large", "tasks": {
        "parts": {"run": "tests.tasks:numbers", "args": {"n": n}},
        "sq": {"map": "${parts.xs}", "run": "tests.tasks:noop", "args": {}},
        "loop": {"build": "tests.tasks:countdown_graph", "args": {"n": 8}}},
        "outputs": {"count": "${parts.n}", "steps": "${loop.steps}"}})
    owner = wait_for(lambda: cluster.owner(gid), 30, 0.02, "a scheduler to claim it")
    wait_for(lambda: cluster.db(lambda: Task.get(Task.graph == gid, Task.name == "parts")
                                .state) == "finished", 60, 0.01, "parts to finish")
    cluster.kill9(ids[owner])
    shown = cluster.wait_graph(gid, timeout=180)
    assert shown["state"] == "finished", shown["state"]
    by = tasks(shown)
    copies = [name for name in by if name.startswith("sq[")]
    assert sorted(copies, key=lambda c: int(c[3:-1])) == [f"sq[{i}]" for i in range(n)]
    assert all(by[c]["state"] == "finished" for c in copies)
    assert shown["outputs"] == {"count": n, "steps": 8}
    assert cluster.owner(gid) != owner


def test_doctor_names_a_map_whose_copies_ended_unnoticed(cluster: Cluster) -> None:
    """The copies end while their scheduler is frozen (SIGSTOP; their reports wait, delivered
    but unread): the doctor names the mapped task (its copies all ended), its repair asks the
    owner for a refresh, and the graph ends once the scheduler runs again, with nothing left
    for the doctor. A long heartbeat keeps the scheduler alive to the doctor meanwhile."""
    import json
    import os
    import signal

    from wgops.store.models import Task

    cluster.env.update({"WGOPS_HEARTBEAT": "5", "WGOPS_STALE_AFTER": "60"})
    sched = cluster.scheduler()
    cluster.wait_daemon("scheduler", sched.pid)
    cluster.worker(slots=2)
    gid = cluster.submit({"name": "lost-reports", "tasks": {
        "parts": {"run": "tests.tasks:numbers", "args": {"n": 2}},
        "sq": {"map": "${parts.xs}", "run": "tests.tasks:sleep", "args": {"seconds": 1.5}},
        "after": {"run": "tests.tasks:noop", "after": ["sq"]}}})

    def copies() -> list[str]:
        return cluster.db(lambda: [t.state for t in Task.select().where(
            Task.graph == gid, Task.map_of.is_null(False))])

    wait_for(lambda: copies() == ["running", "running"], 30, 0.05, "the copies to run")
    os.kill(sched.pid, signal.SIGSTOP)
    try:
        wait_for(lambda: copies() == ["finished", "finished"], 30, 0.05, "the copies to end")
        def unsettled() -> list[dict] | None:
            # a doctor that could not finish (a broker slow to answer on a loaded machine)
            # prints its one-line error and no report: asked again
            done = cluster.cli("doctor", "--json", "--min-age", "1", check=False)
            if not done.stdout.strip():
                assert "Traceback" not in done.stderr, done.stderr
                return None
            return [f for f in json.loads(done.stdout)["findings"]
                    if f["check"] == "unsettled_task"] or None
        found = wait_for(unsettled, 20, 0.2, "the doctor to see it")
        sq = cluster.db(lambda: Task.get(Task.graph == gid, Task.name == "sq").id)
        assert [(f["task"], f["message"]) for f in found] == [
            (sq, f"task {sq} is running but all 2 of its copies ended")]
        repaired = json.loads(cluster.cli("doctor", "--json", "--repair", "--min-age", "1",
                                          check=False).stdout)
        assert [f["repaired"] for f in repaired["findings"]] == [True], repaired
    finally:
        os.kill(sched.pid, signal.SIGCONT)
    shown = cluster.wait_graph(gid, timeout=60)
    assert shown["state"] == "finished", shown
    assert json.loads(cluster.cli("doctor", "--json", "--min-age", "1").stdout)["findings"] == []
