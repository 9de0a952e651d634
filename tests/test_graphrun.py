"""The scheduler's in-memory dependency logic, stepped by hand (no I/O, injected time)."""

from __future__ import annotations

import json

from wgops.daemon.graphrun import GraphRun, Shaped
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
    a, b, c, d = (run.named(n) for n in "abcd")
    assert names(run.mark(a, "finished", 1)) == ["b", "c"]
    assert run.mark(b, "finished", 2) == []          # d still waits for c
    assert d.remaining == 1
    assert names(run.mark(c, "finished", 3)) == ["d"]
    run.mark(d, "finished", 4)
    assert run.done and run.final_state() == "finished"


def test_failure_dooms_only_downstream() -> None:
    run = GraphRun(row({"a": [], "b": ["a"], "c": ["b"], "x": [], "y": ["x"]}), now=0)
    a = run.named("a")
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
    a = run.named("a")
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


def shaped(tasks: list[tuple[str, list[str], dict]], states: dict[str, str] | None = None,
           copies: list[tuple[str, str, int]] = (), conditions: set[str] = frozenset()) \
        -> GraphRun:
    """Tasks (name, deps, spec) and copies (name, of, index) as a scheduler loads them."""
    states = states or {}
    rows = [TaskRow(i + 1, name, "python", json.dumps(spec), deps, "default",
                    states.get(name, "waiting"), 0, None, condition_false=name in conditions)
            for i, (name, deps, spec) in enumerate(tasks)]
    ids = {r.name: r.id for r in rows}
    for j, (name, of, index) in enumerate(copies):
        rows.append(TaskRow(100 + j, name, "python", json.dumps({"item": index, "index": index}),
                            [], "default", states.get(name, "waiting"), 0, None, ids[of],
                            index))
    return GraphRun(GraphRow(1, 0, "running", 0, None, 1, 0, {"outputs": {}}, {}, rows, {}),
                    now=0)


def test_a_copy_counts_down_its_mapped_task_and_never_its_siblings() -> None:
    run = shaped([("p", [], {"run": "m:f"}),
                  ("sq", ["p"], {"run": "m:f", "map": "${p.xs}", "args": {"x": "${item}"}}),
                  ("t", ["sq"], {"run": "m:f", "args": {"v": "${sq}"}})],
                 {"p": "finished", "sq": "running", "sq[1]": "finished"},
                 [("sq[0]", "sq", 0), ("sq[1]", "sq", 1), ("sq[2]", "sq", 2)])
    sq, t = run.named("sq"), run.named("t")
    assert sq.mapped and (sq.open_copies, sq.failed_copies) == (2, 0)
    assert run.ready() == [] and run.open == 4              # sq, two copies, t
    copy0, copy2 = run.named("sq[0]"), run.named("sq[2]")
    assert run.mark(copy0, "finished", 1) == [] and sq.open_copies == 1
    assert run.mark(copy2, "failed", 2) == [] and (sq.open_copies, sq.failed_copies) == (0, 1)
    assert run.bad == 1 and t.remaining == 1                 # the scheduler closes sq now
    assert names(run.mark(sq, "finished", 3)) == ["t"]


def test_a_false_condition_skips_data_dependents_and_lets_after_run() -> None:
    run = shaped([("c", [], {"run": "m:f"}),
                  ("w", ["c"], {"run": "m:f", "when": "${c.ok}"}),
                  ("uses", ["w"], {"run": "m:f", "args": {"v": "${w}"}}),
                  ("deeper", ["uses"], {"run": "m:f", "args": {"v": "${uses.x}"}}),
                  ("later", ["w"], {"run": "m:f", "after": ["w"]}),
                  ("both", ["later", "uses"], {"run": "m:f", "args": {"v": "${later}"},
                                               "after": ["uses"]})],
                 {"c": "finished"})
    w = run.named("w")
    assert names(run.mark(w, "skipped", 1, condition_false=True)) == ["later"]
    assert run.bad == 0
    closure = run.condition_closure([w])
    assert names(closure) == ["deeper", "uses"]        # later, and both, only come after
    for node in closure:
        run.mark(node, "skipped", 2, condition_false=True)
    later = run.named("later")
    run.mark(later, "finished", 3)
    assert run.named("both").remaining == 0
    assert run.final_state() == "finished"
    assert run.condition_skipped_names() == {"w", "uses", "deeper"}


def test_reloaded_condition_skips_are_not_failures_and_unmet_ones_are_found() -> None:
    tasks = [("w", [], {"run": "m:f", "when": "${inputs.x}"}),
             ("uses", ["w"], {"run": "m:f", "args": {"v": "${w}"}}),
             ("later", ["w"], {"run": "m:f", "after": ["w"]})]
    plain = shaped(tasks, {"w": "skipped"})
    assert names(plain.doomed()) == ["later", "uses"] and plain.bad == 1
    run = shaped(tasks, {"w": "skipped"}, conditions={"w"})
    assert run.bad == 0 and run.doomed() == []
    assert names(run.unmet()) == ["uses"] and names(run.ready()) == ["later"]


def test_only_a_task_with_a_shape_holds_its_fields() -> None:
    run = shaped([("p", [], {"run": "m:f"}),
                  ("sq", ["p"], {"run": "m:f", "map": "${p.xs}", "args": {"x": "${item}"}}),
                  ("t", ["sq"], {"run": "m:f", "after": ["sq"]})],
                 {"p": "finished", "sq": "running"}, [("sq[0]", "sq", 0)])
    p, t = run.named("p"), run.named("t")
    assert not isinstance(p, Shaped) and not isinstance(t, Shaped)
    assert (p.map_of, p.index, p.child, p.mapped, p.open_copies, p.data_deps) == (
        None, None, None, False, 0, frozenset())
    assert isinstance(run.named("sq"), Shaped) and isinstance(run.named("sq[0]"), Shaped)
    assert run.named("sq").open_copies == 1 and run.named("sq[0]").map_of == run.named("sq").id
