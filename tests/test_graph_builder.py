"""The Python builder (``wgops.Graph``), in process: the documents it produces, its references,
the functions it refuses, its round trip with YAML, and the errors of the public API."""

from __future__ import annotations

import importlib
import inspect
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

import wgops
from tests import tasks
from wgops.graph import normalised, target_of
from wgops.store.document import load_document, normalise
from wgops.store.errors import DocumentError

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
TWINS = {"bands": "bands.yaml", "bands_sub": "bands_sub.yaml", "fanout": "fanout.yaml",
         "shell_job": "shell_job.yaml", "hello": "hello.json", "sweep": "sweep.yaml",
         "converge": "converge.yaml"}


def yaml_of(name: str) -> Any:
    return yaml.safe_load((EXAMPLES / name).read_text())


@pytest.mark.parametrize("module,file", sorted(TWINS.items()))
def test_each_example_has_a_python_twin_that_builds_the_same_document(module: str,
                                                                      file: str) -> None:
    twin = importlib.import_module(f"wgops.examples.{module}").graph()
    assert isinstance(twin, wgops.Graph)
    assert twin.document() == yaml_of(file)
    # and the store keeps the same thing (nested files resolved the same way)
    assert normalised(twin) == {**load_document(EXAMPLES / file), "source": twin.name}


@pytest.mark.parametrize("file", sorted(TWINS.values()))
def test_documents_round_trip_through_the_builder(file: str) -> None:
    doc = yaml_of(file)
    assert wgops.Graph.from_document(EXAMPLES / file).document() == doc
    if file != "bands.yaml":                  # its nested graph is a path relative to the file
        assert wgops.Graph.from_document(doc).document() == doc
    rebuilt = wgops.Graph.from_document(EXAMPLES / file)
    assert rebuilt.tasks == tuple(doc["tasks"])
    assert str(rebuilt[rebuilt.tasks[0]]) == "${" + rebuilt.tasks[0] + "}"


def test_references_are_the_dollar_brace_text() -> None:
    g = wgops.Graph("refs", inputs={"n": 3})
    a = g.task("a", tasks.double, {"x": g.inputs["n"]})
    assert (str(a), str(a["half"]), str(a["xs"][0]), str(g.inputs["n"])) == \
        ("${a}", "${a.half}", "${a.xs.0}", "${inputs.n}")
    assert f"echo {a['value']}!" == "echo ${a.value}!"
    b = g.task("b", tasks.combine, {"left": a["value"], "right": [a, {"deep": a["half"]}]})
    g.shell("c", f"echo {b['total']} {a['xs'][1]}", after=b)
    g.outputs(total=b["total"]).outputs(whole=b)
    doc = g.document()
    assert doc["tasks"]["b"] == {"run": "tests.tasks:combine",
                                 "args": {"left": "${a.value}",
                                          "right": ["${a}", {"deep": "${a.half}"}]}}
    assert doc["tasks"]["c"] == {"shell": "echo ${b.total} ${a.xs.1}", "after": ["b"]}
    assert doc["outputs"] == {"total": "${b.total}", "whole": "${b}"}
    assert normalise(json.loads(json.dumps(doc)), "refs")["tasks"]["c"]["deps"] == ["b", "a"]
    doc["tasks"].clear()                                 # a copy: the graph is untouched
    assert g.tasks == ("a", "b", "c")
    with pytest.raises(TypeError, match="cannot be iterated"):
        list(a)
    with pytest.raises(wgops.InvalidDocument, match="no negative"):
        a[-1]
    for bad in ("x.y", "", "${z}", "clé"):
        with pytest.raises(wgops.InvalidDocument, match="ASCII letters, digits"):
            a[bad]
    with pytest.raises(TypeError):
        a[1.5]                                           # type: ignore[index]


def test_options_nesting_and_after() -> None:
    child = wgops.Graph("child")
    child.task("inner", "tests.tasks:add", {"a": child.inputs["v"], "b": 1})
    child.outputs(out=child["inner"])
    g = wgops.Graph("parent", priority=3, description="d")
    a = g.task("a", "tests.tasks:add", {"a": 1, "b": 2}, retries=2, retry_delay=0.5,
               timeout=9, pool="gpu")
    n = g.graph("n", child, {"v": a})
    g.graph("m", {"name": "inline", "tasks": {"t": {"run": "tests.tasks:noop"}}},
            after=[n, "a"])
    doc = g.document()
    assert doc["priority"] == 3 and doc["description"] == "d" and "inputs" not in doc
    assert doc["tasks"]["a"] == {"run": "tests.tasks:add", "args": {"a": 1, "b": 2},
                                 "retries": 2, "retry_delay": 0.5, "timeout": 9, "pool": "gpu"}
    assert doc["tasks"]["n"] == {"graph": {  # inlined; its input v comes from the parent
        "name": "child", "tasks": {"inner": {"run": "tests.tasks:add",
                                             "args": {"a": "${inputs.v}", "b": 1}}},
        "outputs": {"out": "${inner}"}}, "args": {"v": "${a}"}}
    with pytest.raises(wgops.InvalidDocument, match="unknown input 'v'"):
        child.document()                       # alone, nothing provides v
    assert doc["tasks"]["m"]["after"] == ["n", "a"]
    assert "outputs" not in doc


def test_nested_graph_files_are_read_from_the_base(tmp_path: Path) -> None:
    (tmp_path / "sub.yaml").write_text("name: sub\ntasks: {t: {run: 'tests.tasks:noop'}}\n")
    g = wgops.Graph("p", base=tmp_path)
    g.graph("s", "sub.yaml")
    assert g.document()["tasks"]["s"] == {"graph": "sub.yaml"}
    assert normalised(g)["tasks"]["s"]["graph"]["name"] == "sub"
    outer = wgops.Graph("outer", base=ROOT)      # g inlined elsewhere: its path still found
    outer.graph("g", g)
    assert outer.document()["tasks"]["g"]["graph"]["tasks"]["s"]["graph"] == \
        str(tmp_path / "sub.yaml")
    missing = wgops.Graph("q", base=tmp_path)
    missing.graph("s", "gone.yaml")
    with pytest.raises(wgops.InvalidDocument, match="gone.yaml: no such file"):
        missing.document()


def test_validation_gives_the_messages_of_graph_validate(tmp_path: Path) -> None:
    text = ("name: cyc\ntasks:\n  a: {run: 'tests.tasks:add', args: {a: '${b}'}}\n"
            "  b: {run: 'tests.tasks:add', args: {a: '${a}'}}\n")
    path = tmp_path / "cyc.yaml"
    path.write_text(text)
    with pytest.raises(DocumentError) as from_file:
        load_document(path)
    with pytest.raises(wgops.InvalidDocument) as read_back:
        wgops.Graph.from_document(path)
    assert str(read_back.value) == str(from_file.value)
    g = wgops.Graph("cyc")
    g.task("a", tasks.add, {"a": "${b}"})
    g.task("b", tasks.add, {"a": g["a"]})
    with pytest.raises(ValueError) as built:
        g.document()
    with pytest.raises(DocumentError) as as_data:
        normalise(yaml.safe_load(text), "cyc")
    assert str(built.value) == str(as_data.value) == "cyc: cycle between tasks: a -> b -> a"
    assert isinstance(built.value, wgops.WgopsError) and DocumentError is wgops.InvalidDocument
    unknown = wgops.Graph("u")
    unknown.task("a", tasks.add, {"a": unknown.inputs["missing"]})
    with pytest.raises(wgops.InvalidDocument, match="unknown input 'missing'"):
        unknown.document()


def _helper() -> None:
    """Private: a worker's allow-list pattern never names it."""


def nested_factory() -> Any:
    def inner() -> None:
        pass
    return inner


class Holder:
    def method(self) -> None:
        pass


def renamed() -> None:
    pass


renamed_alias = renamed
globals()["renamed"] = None     # the name now holds another object


def test_functions_become_module_function_or_are_refused_with_why() -> None:
    assert target_of("g", "t", tasks.add) == "tests.tasks:add"
    assert target_of("g", "t", tasks.async_add) == "tests.tasks:async_add"
    g = wgops.Graph("g")
    cases = [(lambda x: x, "a lambda has no name"),
             (nested_factory(), "inside another function"),
             (Holder().method, "not a top-level function"),
             (_helper, "public functions"),
             (renamed_alias, "another object"),
             (3, "run must be 'module:function' or a function"),
             ("no-colon", "run must be 'module:function'")]
    for target, why in cases:
        with pytest.raises(wgops.InvalidDocument, match=why):
            g.task("t", target)
    main = type(tasks.add)(tasks.add.__code__, {}, "in_main")
    main.__module__ = "__main__"
    with pytest.raises(wgops.InvalidDocument, match="__main__ .*WGOPS_TASK_PATH"):
        g.task("t", main)
    assert g.tasks == ()                          # nothing was added


def test_bad_building_is_refused_at_once() -> None:
    g = wgops.Graph("g")
    other = wgops.Graph("other")
    theirs = other.task("t", tasks.noop)
    g.task("a", tasks.noop)
    with pytest.raises(wgops.InvalidDocument, match="already defined"):
        g.task("a", tasks.noop)
    with pytest.raises(wgops.InvalidDocument, match="bad task name"):
        g.task("1x", tasks.noop)
    with pytest.raises(wgops.InvalidDocument, match="belongs to graph 'other'"):
        g.task("b", tasks.add, {"a": theirs["x"]})
    with pytest.raises(wgops.InvalidDocument, match="belongs to graph 'other'"):
        g.task("b", tasks.noop, after=[theirs])
    with pytest.raises(wgops.InvalidDocument, match="outputs: .* belongs to graph 'other'"):
        g.outputs(x=other.inputs["y"])
    with pytest.raises(wgops.InvalidDocument, match="a set is not a JSON value"):
        g.task("b", tasks.noop, {"x": {1, 2}})
    with pytest.raises(wgops.InvalidDocument, match="bad input name"):
        g.inputs["not a name"]
    with pytest.raises(wgops.InvalidDocument, match="graph must be a Graph"):
        g.graph("b", 42)                                 # type: ignore[arg-type]
    with pytest.raises(wgops.InvalidDocument):
        wgops.Graph("")
    with pytest.raises(wgops.InvalidDocument, match="bad input name"):
        normalised(g, inputs={"no good": 1})
    assert g.tasks == ("a",)
    assert normalised(g, {"extra": 1})["inputs"] == {"extra": 1}


def test_the_public_api_is_typed_and_documented() -> None:
    for name in ("submit", "wait", "show", "list", "pause", "play", "kill", "retry",
                 "reassign", "set_priority", "validate", "pools", "set_pool"):
        blocking, awaitable = getattr(wgops.Client, name), getattr(wgops.AsyncClient, name)
        assert inspect.iscoroutinefunction(awaitable) and not inspect.iscoroutinefunction(
            blocking)
        assert blocking.__doc__ == awaitable.__doc__ and len(awaitable.__doc__ or "") > 40
        assert inspect.signature(blocking) == inspect.signature(awaitable)
    assert list(inspect.signature(wgops.Client.submit).parameters) == \
        ["self", "graph", "inputs", "priority", "scheduler"]
    assert (ROOT / "wgops" / "py.typed").exists()
    assert issubclass(wgops.WaitTimeout, TimeoutError) and issubclass(wgops.InvalidDocument,
                                                                      ValueError)


def test_importing_wgops_loads_the_api_only_on_use() -> None:
    probe = ("import sys, wgops, wgops.store.models\n"
             "before = {m for m in sys.modules if m.startswith(('wgops.graph', 'wgops.client',"
             " 'wgops.aclient', 'aio_pika', 'wgops.daemon'))}\n"
             "wgops.Client; wgops.Graph\n"
             "after = {m for m in sys.modules if m.startswith(('aio_pika', 'wgops.daemon'))}\n"
             "print(sorted(before), sorted(after))\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         timeout=60, cwd="/", check=True).stdout
    assert out.strip() == "[] []"


SHAPES_YAML = """
name: shapes
inputs: {n: 5}
tasks:
  parts: {run: tests.tasks:numbers, args: {n: "${inputs.n}"}}
  sq:
    run: tests.tasks:square
    args: {x: "${item}"}
    map: "${parts.xs}"
  at: {shell: "echo ${index}=${item}", map: "${parts.xs}"}
  check: {run: tests.tasks:check, args: {value: "${inputs.n}", limit: 3}}
  big: {run: tests.tasks:add, args: {a: 1, b: 2}, when: "${check.big}"}
  loop: {build: tests.tasks:countdown_graph, args: {n: 3}, after: [big]}
outputs: {squares: "${sq}", steps: "${loop.steps}"}
"""


def test_the_run_time_shapes_in_python_are_the_yaml_document() -> None:
    g = wgops.Graph("shapes", inputs={"n": 5})
    parts = g.task("parts", tasks.numbers, {"n": g.inputs["n"]})
    sq = g.task("sq", tasks.square, {"x": wgops.ITEM}, map=parts["xs"])
    g.shell("at", f"echo {wgops.INDEX}={wgops.ITEM}", map=parts["xs"])
    check = g.task("check", "tests.tasks:check", {"value": g.inputs["n"], "limit": 3})
    big = g.task("big", tasks.add, {"a": 1, "b": 2}, when=check["big"])
    loop = g.build("loop", tasks.countdown_graph, {"n": 3}, after=[big])
    g.outputs(squares=sq, steps=loop["steps"])
    assert g.document() == yaml.safe_load(SHAPES_YAML)
    assert wgops.Graph.from_document(yaml.safe_load(SHAPES_YAML)).document() == g.document()


def test_shape_mistakes_in_python_get_the_documents_messages() -> None:
    g = wgops.Graph("bad")
    g.task("a", tasks.square, {"x": wgops.ITEM})
    with pytest.raises(wgops.InvalidDocument, match="only known in a mapped task"):
        g.document()
    g = wgops.Graph("bad")
    with pytest.raises(wgops.InvalidDocument, match="build must be 'module:function'"):
        g.build("b", "not a target")
    with pytest.raises(wgops.InvalidDocument, match="'item' and 'index' are reserved"):
        g.task("item", tasks.square)
    g = wgops.Graph("bad")
    g.task("a", tasks.square, {"x": 1}, map="xs")
    with pytest.raises(wgops.InvalidDocument, match="map must be a reference"):
        g.document()
