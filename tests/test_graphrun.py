"""The scheduler's in-memory dependency logic, stepped by hand (no I/O, injected time)."""

from __future__ import annotations

import json

from wgops.daemon.graphrun import GraphRun
from wgops.store.loading import GraphRow, TaskRow


def row(deps: dict[str, list[str]], states: dict[str, str] | None = None) -> GraphRow:
    states = states or {}
    tasks = [TaskRow(i + 1, name, "python", json.dumps({"run": "m:f", "args": {}}), d,
                     "default", states.get(name, "waiting"), 0, None)
             for i, (name, d) in enumerate(deps.items())]
    return GraphRow(1, 0, "running", 0, None, 1, 0, {"outputs": {}}, {}, tasks, {})


def names(nodes: list) -> list[str]:
    return sorted(n.name for n in nodes)


def test_diamond_becomes_ready_edge_by_edge() -> None:
    run = GraphRun(row({"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]}), now=0)
    assert names(run.ready()) == ["a"]
    a, b, c, d = (run.nodes[run.by_name[n]] for n in "abcd")
    assert names(run.mark(a, "finished", 1)) == ["b", "c"]
    assert run.mark(b, "finished", 2) == []          # d still waits for c
    assert d.remaining == 1
    assert names(run.mark(c, "finished", 3)) == ["d"]
    run.mark(d, "finished", 4)
    assert run.done and run.final_state() == "finished"


def test_failure_dooms_only_downstream() -> None:
    run = GraphRun(row({"a": [], "b": ["a"], "c": ["b"], "x": [], "y": ["x"]}), now=0)
    a = run.nodes[run.by_name["a"]]
    assert run.mark(a, "failed", 1) == []
    doomed = run.skip_closure([a])
    assert names(doomed) == ["b", "c"]
    for node in doomed:
        run.mark(node, "skipped", 1)
    assert names(run.ready()) == ["x"]
    assert not run.done
    assert run.final_state() == "failed" and run.failed_names() == ["a"]


def test_reconcile_view_of_a_half_done_graph() -> None:
    run = GraphRun(row({"a": [], "b": ["a"], "c": ["a"], "d": ["b"]},
                       {"a": "finished", "b": "failed"}), now=0)
    assert run.open == 2 and run.bad == 1
    assert names(run.ready()) == ["c"]
    assert names(run.doomed()) == ["d"]


def test_duplicate_completion_touches_nothing() -> None:
    run = GraphRun(row({"a": [], "b": ["a"]}), now=0)
    a = run.nodes[run.by_name["a"]]
    assert names(run.mark(a, "finished", 1)) == ["b"]
    assert run.mark(a, "finished", 2) == []
    assert run.open == 1


def test_stall_checks_back_off_until_news() -> None:
    run = GraphRun(row({"a": []}), now=0)
    assert not run.stall_due(4, 5) and run.stall_due(5, 5)
    run.quiet_checks, run.last_activity = 3, 10
    assert not run.stall_due(10 + 39, 5) and run.stall_due(10 + 40, 5)
    run.quiet_checks = 50
    assert run.stall_due(10 + 80, 5)                 # capped at x16
    run.mark(run.nodes[1], "finished", 100)
    assert run.quiet_checks == 0
