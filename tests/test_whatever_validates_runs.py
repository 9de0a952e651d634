"""Whatever validates runs to the end: generated documents (hypothesis) are either refused at
validation, with one line, or reach a terminal state on real daemons — never a graph that
stays ``running`` or tasks that stay ``queued`` (DESIGN §13, invariant 10)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.cluster import Cluster
from wgops.store.document import normalise
from wgops.store.errors import DocumentError

NAMES = ["a", "b", "c", "d"]
TARGETS = ["tests.tasks:add", "tests.tasks:noop", "tests.tasks:double", "tests.tasks:boom",
           "tests.tasks:combine"]
NUMBERS = st.one_of(st.integers(-3, 3), st.floats(allow_nan=True, allow_infinity=True),
                    st.sampled_from([10 ** 23, 2 ** 63, -(2 ** 64), 1e12, 0.5]))
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=8)


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    count = draw(st.integers(1, 4))
    names = NAMES[:count]
    tasks: dict[str, Any] = {}
    for i, name in enumerate(names):
        earlier = names[:i]
        refs = ["${inputs.x}", "${inputs.y}"] + [f"${{{e}}}" for e in earlier] + [
            f"${{{e}.value}}" for e in earlier] + [f"${{{e}.0}}" for e in earlier]
        value = st.one_of(NUMBERS, TEXT, st.sampled_from(refs),
                          st.builds(lambda r, t: f"{t}{r}", st.sampled_from(refs), TEXT),
                          st.lists(st.sampled_from(refs) | NUMBERS, max_size=2))
        kind = draw(st.sampled_from(["run", "run", "shell", "graph"]))
        task: dict[str, Any] = {}
        if kind == "run":
            task["run"] = draw(st.sampled_from(TARGETS))
            task["args"] = draw(st.dictionaries(st.sampled_from(["a", "b", "x", "left"]),
                                                value, max_size=2))
        elif kind == "shell":
            ref = draw(st.sampled_from(refs))
            task["shell"] = draw(st.sampled_from([
                f"echo {ref}", f'echo "v={ref}"', f"echo 'v={ref}'", f"printf %s {ref} | wc -c",
                f"echo $(( {ref} + 1 ))", f"cat <<EOF\n{ref}\nEOF", f"exit {ref}"]))
        else:
            task["graph"] = {"name": "inner", "tasks": {
                "i": {"run": "tests.tasks:add", "args": {"a": "${inputs.v}", "b": 1}}},
                "outputs": {"o": "${i}"}}
            task["args"] = {"v": draw(value)}
        if earlier and draw(st.booleans()):
            task["after"] = [draw(st.sampled_from(earlier))]
        for key in draw(st.lists(st.sampled_from(["retries", "retry_delay", "timeout"]),
                                 max_size=2, unique=True)):
            task[key] = draw(st.one_of(NUMBERS, st.sampled_from([0, 1, 0.1, 5])))
        tasks[name] = task
    inputs = {"x": draw(st.one_of(NUMBERS, TEXT)), "y": draw(st.one_of(NUMBERS, TEXT))}
    outputs = {"out": draw(st.sampled_from([f"${{{n}}}" for n in names] + ["${inputs.x}"]))}
    return {"name": "generated", "inputs": inputs, "tasks": tasks, "outputs": outputs}


def test_every_generated_document_is_refused_or_ends(cluster: Cluster) -> None:
    cluster.scheduler()
    cluster.worker(slots=4)
    seen = {"refused": 0, "ended": 0}

    @settings(max_examples=30, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(doc=documents())
    def one(doc: dict[str, Any]) -> None:
        try:
            normalise(json.loads(json.dumps(doc)), "generated")
        except (DocumentError, ValueError):
            out = cluster.cli("graph", "validate", cluster.write_doc(doc), check=False)
            assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out
            seen["refused"] += 1
            return
        except OverflowError:                # json cannot even write it: not a document
            return
        gid = cluster.submit(doc)
        shown = cluster.wait_graph(gid, timeout=60)
        assert shown["state"] in ("finished", "failed"), shown
        assert all(t["state"] in ("finished", "failed", "skipped") for t in shown["tasks"]), shown
        seen["ended"] += 1

    one()
    assert seen["refused"] and seen["ended"], seen
