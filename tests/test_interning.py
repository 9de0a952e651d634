"""The scheduler's table of row texts: one copy of equal strings, forgotten once unused."""

from __future__ import annotations

import json

from wgops.daemon.graphrun import GraphRun
from wgops.daemon.interning import MIN_SWEEP, Interner
from wgops.store.loading import GraphRow, TaskRow


def fresh(text: str) -> str:
    """An equal string that is a new object (as each database row brings)."""
    return "".join(list(text))


def test_equal_texts_come_back_as_one_string() -> None:
    strings = Interner()
    first = strings(fresh("bench.tasks:noop"))
    again = fresh("bench.tasks:noop")
    assert again is not first and strings(again) is first
    assert strings(fresh("other")) == "other" and len(strings) == 2


def test_a_sweep_forgets_only_what_nobody_holds() -> None:
    strings = Interner()
    kept = [strings(fresh(f"kept-{n}")) for n in range(10)]
    for n in range(10):
        strings(fresh(f"dropped-{n}"))
    assert strings.sweep() == 10 and len(strings) == 10
    assert all(strings(fresh(text)) is text for text in kept)
    del kept
    assert strings.sweep() == 10 and len(strings) == 0


def test_the_table_stays_within_twice_what_is_held() -> None:
    strings = Interner()
    held = [strings(fresh(f"held-{n}")) for n in range(MIN_SWEEP)]
    for n in range(10 * MIN_SWEEP):
        strings(fresh(f"passing-{n}"))
    assert len(strings) <= 2 * len(held) + 1
    assert all(strings(fresh(text)) is text for text in held)


def test_graphs_of_one_scheduler_share_their_tasks_texts() -> None:
    spec = json.dumps({"run": "m:f", "args": {}})

    def row(gid: int) -> GraphRow:
        tasks = [TaskRow(10 * gid + k, fresh(f"t{k}"), fresh("python"), fresh(spec), [],
                         fresh("default"), fresh("waiting"), 0, None) for k in range(2)]
        return GraphRow(gid, 0, "running", 0, None, gid, 0, {}, {}, tasks, {})

    strings = Interner()
    a, b = GraphRun(row(1), 0, strings), GraphRun(row(2), 0, strings)
    na, nb = a.nodes[10], b.nodes[20]
    assert (na.name, na.kind, na.spec, na.pool, na.state) == ("t0", "python", spec,
                                                               "default", "waiting")
    assert all(x is y for x, y in zip((na.name, na.kind, na.spec, na.pool, na.state),
                                      (nb.name, nb.kind, nb.spec, nb.pool, nb.state)))
    assert a.nodes[11].spec is na.spec
