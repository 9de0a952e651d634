"""Graph documents: every validation error names its culprit; valid documents normalise."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from wgops.store.document import load_document, normalise, parse_overrides
from wgops.store.errors import DocumentError
from wgops.store.refs import substitute
from wgops.store.shell import compile_command

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted([*ROOT.glob("examples/*.yaml"), *ROOT.glob("examples/*.json")])


def doc(**tasks: Any) -> dict[str, Any]:
    return {"name": "g", "tasks": tasks}


def run(target: str = "wgops.examples.tasks:noop", **extra: Any) -> dict[str, Any]:
    return {"run": target, **extra}


def error_of(document: Any, **kwargs: Any) -> str:
    with pytest.raises(DocumentError) as info:
        normalise(document, "g.yaml", **kwargs)
    message = str(info.value)
    assert "\n" not in message, "an error is one line"
    return message


def write(path: Path, data: Any) -> Path:
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


# -- errors --------------------------------------------------------------------------------


def test_cycle_names_the_tasks_in_order() -> None:
    message = error_of(doc(a=run(after=["c"]), b=run(after=["a"]), c=run(after=["b"])))
    assert "cycle" in message
    assert "a -> c -> b -> a" in message


def test_cycle_through_references() -> None:
    message = error_of(doc(x=run(args={"v": "${y.out}"}), y=run(args={"v": "${x}"})))
    assert "x -> y -> x" in message


def test_self_dependency() -> None:
    assert "'a' depends on itself" in error_of(doc(a=run(args={"v": "${a.k}"})))


def test_unknown_task_reference_names_task_and_reference() -> None:
    message = error_of(doc(a=run(), b=run(args={"x": "${nope.value}"})))
    assert "task 'b'" in message and "${nope.value}" in message and "'nope'" in message


def test_unknown_input_reference_names_task_and_input() -> None:
    message = error_of(doc(a=run(args={"x": "${inputs.missing}"})))
    assert "task 'a'" in message and "'missing'" in message and "--set missing=" in message


def test_reference_in_outputs_is_checked() -> None:
    message = error_of({"name": "g", "tasks": {"a": run()}, "outputs": {"o": "${b.x}"}})
    assert "outputs" in message and "'b'" in message


def test_malformed_reference() -> None:
    assert "malformed reference" in error_of(doc(a=run(), b=run(args={"x": "${a..k}"})))


def test_unknown_after_target() -> None:
    message = error_of(doc(a=run(after=["ghost"])))
    assert "task 'a'" in message and "unknown task 'ghost'" in message


@pytest.mark.parametrize("spec,has", [
    ({"args": {}}, "has none"),
    ({"run": "wgops.examples.tasks:noop", "shell": "true"}, "has run and shell"),
    ({"shell": "true", "graph": {"name": "c", "tasks": {"x": run()}}}, "has shell and graph"),
    ({"run": "wgops.examples.tasks:noop", "build": "wgops.examples.tasks:noop"},
     "has run and build"),
])
def test_exactly_one_of_run_shell_graph(spec: dict[str, Any], has: str) -> None:
    message = error_of(doc(t=spec))
    assert "task 't'" in message and "exactly one of run, shell, graph or build" in message
    assert has in message


@pytest.mark.parametrize("name", ["1abc", "has space", "dot.ted", "inputs", "item", "index", ""])
def test_bad_task_name(name: str) -> None:
    assert f"bad task name {name!r}" in error_of({"name": "g", "tasks": {name: run()}})


def test_non_string_task_name() -> None:
    assert "the key 3 at tasks is not a string" in error_of({"name": "g", "tasks": {3: run()}})


def test_bad_run_target() -> None:
    assert "module:function" in error_of(doc(a=run("not a callable")))


def test_missing_tasks() -> None:
    assert "missing 'tasks'" in error_of({"name": "g"})


@pytest.mark.parametrize("tasks", [{}, [], "a"])
def test_empty_or_wrong_tasks(tasks: Any) -> None:
    assert "'tasks' must be a non-empty mapping" in error_of({"name": "g", "tasks": tasks})


@pytest.mark.parametrize("name", [None, "", "  ", 5])
def test_missing_name(name: Any) -> None:
    document = {"tasks": {"a": run()}} if name is None else {"name": name, "tasks": {"a": run()}}
    assert "missing 'name'" in error_of(document)


def test_not_a_mapping() -> None:
    assert "must be a mapping" in error_of(["name", "tasks"])


def test_unparsable_yaml_reports_its_line(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.yaml", "name: g\ntasks:\n  a:\n    run: [unclosed\n  b: {}\n")
    with pytest.raises(DocumentError) as info:
        load_document(path)
    message = str(info.value)
    assert str(path) in message and "invalid YAML" in message and "line 5" in message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DocumentError, match="no such file"):
        load_document(tmp_path / "absent.yaml")


@pytest.mark.parametrize("priority", [-1, 10, 2.5, "high", True, None])
def test_bad_priority(priority: Any) -> None:
    message = error_of({"name": "g", "priority": priority, "tasks": {"a": run()}})
    assert "'priority' must be an integer from 0 to 9" in message


@pytest.mark.parametrize("retries", [-1, 1.5, "2", True, 1001, 10 ** 23, float("inf")])
def test_bad_retries(retries: Any) -> None:
    message = error_of(doc(a=run(retries=retries)))
    assert "task 'a'" in message and "retries must be a whole number from 0 to 1000" in message \
        or "the number at tasks.a.retries is" in message


@pytest.mark.parametrize("key,value", [("retry_delay", -1), ("timeout", 0), ("timeout", "1m")])
def test_bad_delays(key: str, value: Any) -> None:
    message = error_of(doc(a=run(**{key: value})))
    assert "task 'a'" in message and key in message


def test_bad_pool() -> None:
    assert "bad pool name 'a b'" in error_of(doc(a=run(pool="a b")))


def test_unknown_graph_key() -> None:
    message = error_of({"name": "g", "tasks": {"a": run()}, "taks": {}})
    assert "unknown key 'taks'" in message


def test_unknown_task_key() -> None:
    assert "task 'a' has unknown key 'retry'" in error_of(doc(a=run(retry=2)))


@pytest.mark.parametrize("field,value,says", [
    ("args", [1, 2], "args must be a mapping"),
    ("after", [1], "after must be a list of task names"),
])
def test_bad_task_field_types(field: str, value: Any, says: str) -> None:
    assert says in error_of(doc(a=run(**{field: value})))


def test_nested_graph_that_includes_itself(tmp_path: Path) -> None:
    write(tmp_path / "outer.yaml", {"name": "outer", "tasks": {"sub": {"graph": "inner.yaml"}}})
    write(tmp_path / "inner.yaml", {"name": "inner", "tasks": {"again": {"graph": "outer.yaml"}}})
    with pytest.raises(DocumentError) as info:
        load_document(tmp_path / "outer.yaml")
    assert "task 'again'" in str(info.value) and "'outer.yaml' includes itself" in str(info.value)


def test_graph_that_includes_its_own_file(tmp_path: Path) -> None:
    write(tmp_path / "me.yaml", {"name": "me", "tasks": {"me": {"graph": "me.yaml"}}})
    with pytest.raises(DocumentError, match="includes itself"):
        load_document(tmp_path / "me.yaml")


def test_nested_graph_by_relative_path_is_validated(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    write(tmp_path / "parent.yaml", {"name": "parent", "tasks": {
        "a": run(), "child": {"graph": "sub/child.yaml", "args": {"x": "${a}"}}}})
    write(tmp_path / "sub" / "child.yaml", {"name": "child", "tasks": {
        "b": run(args={"x": "${inputs.x}"}), "c": run(after=["nowhere"])}})
    with pytest.raises(DocumentError) as info:
        load_document(tmp_path / "parent.yaml")
    message = str(info.value)
    assert "sub/child.yaml" in message and "task 'c'" in message and "'nowhere'" in message


def test_nested_graph_missing_file(tmp_path: Path) -> None:
    write(tmp_path / "p.yaml", {"name": "p", "tasks": {"c": {"graph": "gone.yaml"}}})
    with pytest.raises(DocumentError, match="gone.yaml: no such file"):
        load_document(tmp_path / "p.yaml")


def test_nested_graph_inputs_come_from_parent_args(tmp_path: Path) -> None:
    write(tmp_path / "p.yaml", {"name": "p", "tasks": {
        "a": run(), "c": {"graph": "c.yaml", "args": {"x": "${a}"}}}})
    write(tmp_path / "c.yaml", {"name": "c", "tasks": {"b": run(args={"v": "${inputs.x}"})}})
    loaded = load_document(tmp_path / "p.yaml")
    child = loaded["tasks"]["c"]["graph"]
    assert child["name"] == "c" and child["tasks"]["b"]["deps"] == []
    assert loaded["tasks"]["c"]["deps"] == ["a"]
    # the child alone does not know x
    with pytest.raises(DocumentError, match="unknown input 'x'"):
        load_document(tmp_path / "c.yaml")


def test_inline_nested_graph_error_names_the_path() -> None:
    message = error_of(doc(outer={"graph": {"name": "in", "tasks": {"t": run(after=["z"])}}}))
    assert "outer" in message and "task 't'" in message and "'z'" in message


def test_nested_graph_without_a_file_base() -> None:
    assert "needs a document file" in error_of(doc(c={"graph": "x.yaml"}))


# -- accepted documents ---------------------------------------------------------------------


def test_references_become_deps_in_order() -> None:
    normal = normalise(doc(
        a=run(), b=run(), c=run(args={"x": "${b.k}", "y": ["${a}", {"z": "${b}"}]}, after=["a"]),
        d={"shell": "echo ${c.out} ${inputs.v}"}), "g.yaml", overrides={"v": 1})
    assert normal["tasks"]["c"]["deps"] == ["a", "b"]
    assert normal["tasks"]["d"]["deps"] == ["c"]
    assert normal["tasks"]["a"]["deps"] == []


def test_normal_form_has_defaults() -> None:
    normal = normalise({"name": "g", "tasks": {"a": run(), "s": {"shell": "true"}}}, "g.yaml")
    assert normal["priority"] == 0 and normal["inputs"] == {} and normal["outputs"] == {}
    a = normal["tasks"]["a"]
    assert a == {"kind": "python", "run": "wgops.examples.tasks:noop", "args": {}, "after": [],
                 "retries": 0, "retry_delay": 0.0, "timeout": None, "pool": "default",
                 "deps": []}
    assert normal["tasks"]["s"]["kind"] == "shell"
    json.dumps(normal)


def test_after_as_a_single_string() -> None:
    assert normalise(doc(a=run(), b=run(after="a")), "g")["tasks"]["b"]["deps"] == ["a"]


def test_set_overrides_parse_yaml_scalars() -> None:
    assert parse_overrides(["n=5", "x=2.5", "on=true", "s=Ge", "e=", "l=[1, 2]", "m={a: 1}",
                            "q='07'", "t=a: b", "n2=null", "sp=a b"]) == {
        "n": 5, "x": 2.5, "on": True, "s": "Ge", "e": "", "l": [1, 2], "m": {"a": 1},
        "q": "07", "t": "a: b", "n2": None, "sp": "a b"}


@pytest.mark.parametrize("pair", ["novalue", "=5", "1x=2", "a b=c"])
def test_bad_set_override(pair: str) -> None:
    with pytest.raises(DocumentError, match="expected NAME=VALUE"):
        parse_overrides([pair])


def test_overrides_replace_defaults_and_satisfy_references() -> None:
    document = {"name": "g", "inputs": {"s": "Si"}, "tasks": {
        "a": run(args={"s": "${inputs.s}", "n": "${inputs.n}"})}}
    normal = normalise(document, "g", overrides=parse_overrides(["s=Ge", "n=3"]))
    assert normal["inputs"] == {"s": "Ge", "n": 3}


def test_json_documents_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "g.json"
    path.write_text(json.dumps({"name": "j", "priority": 9, "tasks": {
        "a": run(), "b": run(args={"v": "${a}"})}}))
    loaded = load_document(path)
    assert loaded["name"] == "j" and loaded["priority"] == 9
    assert loaded["tasks"]["b"]["deps"] == ["a"]


# -- the examples -----------------------------------------------------------------------------


def test_there_are_examples() -> None:
    names = {p.name for p in EXAMPLES}
    assert {"bands.yaml", "bands_sub.yaml", "fanout.yaml", "shell_job.yaml"} <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_validates(path: Path) -> None:
    loaded = load_document(path)
    assert loaded["tasks"]
    json.dumps(loaded)


def test_bands_example_nests_bands_sub() -> None:
    loaded = load_document(ROOT / "examples" / "bands.yaml")
    assert loaded["tasks"]["bands"]["graph"]["name"] == "bands_sub"
    assert loaded["tasks"]["bands"]["deps"] == ["report", "scf"]


def _run_locally(document: dict[str, Any], inputs: dict[str, Any] | None = None) -> Any:
    """A tiny in-process evaluator: proves the example functions fit their documents."""
    values: dict[str, Any] = {"inputs": {**document["inputs"], **(inputs or {})}}
    skipped: set[str] = set()
    pending = dict(document["tasks"])
    while pending:
        name, task = next((n, t) for n, t in pending.items()
                          if all(d in values or d in skipped for d in t["deps"]))
        del pending[name]
        if "when" in task and not substitute(task["when"], values, skipped):
            skipped.add(name)
            continue
        if "map" in task:
            items = substitute(task["map"], values)
            result: Any = [_run_task(task, {**values, "item": item, "index": i})
                           for i, item in enumerate(items)]
        else:
            result = _run_task(task, values)
        values[name] = json.loads(json.dumps(result))
    return substitute(document["outputs"], values, skipped)


def _run_task(task: dict[str, Any], values: dict[str, Any]) -> Any:
    args = substitute(task["args"], values)
    if task["kind"] in ("python", "build"):
        module, func = task["run" if task["kind"] == "python" else "build"].split(":")
        result = getattr(importlib.import_module(module), func)(**args)
        if inspect.iscoroutine(result):
            result = asyncio.run(result)
        if task["kind"] == "build":
            return _run_locally(normalise(result, "built"))
        return result
    if task["kind"] == "shell":
        command = compile_command(task["shell"])
        proc = subprocess.run(command.template, shell=True, capture_output=True, text=True,
                              timeout=10, env={**os.environ, **command.environment(values)})
        assert proc.returncode == 0, proc.stderr
        return {"stdout": proc.stdout, "stderr": proc.stderr, "returncode": 0}
    return _run_locally(task["graph"], args)


@pytest.mark.parametrize("path", [p for p in EXAMPLES if not p.name.startswith("demo_")],
                         ids=lambda p: p.name)
def test_example_runs_locally_and_deterministically(path: Path) -> None:
    """(The demo's documents are paced — seconds of sleep, simulated failures — and are only
    validated.)"""
    loaded = load_document(path)
    first = _run_locally(loaded)
    assert first == _run_locally(loaded)


def test_example_outputs() -> None:
    out = _run_locally(load_document(ROOT / "examples" / "bands.yaml",
                                     parse_overrides(["structure=Ge"])))
    assert out["report"].startswith("structure=Ge energy=")
    assert len(out["bands"]) == 4 and isinstance(out["gap"], float)
    fan = _run_locally(load_document(ROOT / "examples" / "fanout.yaml"))
    assert fan["count"] == 4 and fan["total"] > 0
    shell = _run_locally(load_document(ROOT / "examples" / "shell_job.yaml",
                                       parse_overrides(["greeting=it's; ok", "count=2"])))
    assert shell["text"] == "1: IT'S; OK\n2: IT'S; OK\n"
    sweep = _run_locally(load_document(ROOT / "examples" / "sweep.yaml"))
    assert abs(sweep["a"] - 5.431) < 0.1 and sweep["report"].startswith("best a=")
    converge = _run_locally(load_document(ROOT / "examples" / "converge.yaml"))
    assert abs(converge["a"] - 5.43) < 0.001 and converge["steps"] == 7


# -- hostile input ----------------------------------------------------------------------------


@pytest.mark.parametrize("text", [
    "name: g\ntasks:\n  t:\n    run: m:f\n    args: &x {a: *x}\n",
    "name: g\ninputs: &x {a: [*x]}\ntasks:\n  t: {run: 'm:f'}\n",
])
def test_recursive_yaml_alias_is_refused(tmp_path: Path, text: str) -> None:
    with pytest.raises(DocumentError, match="refers to itself"):
        load_document(write(tmp_path / "r.yaml", text))


def test_shared_yaml_alias_is_fine(tmp_path: Path) -> None:
    text = "name: g\ninputs: {a: &y [1]}\ntasks:\n  t:\n    run: m:f\n    args: {b: *y, c: *y}\n"
    assert load_document(write(tmp_path / "s.yaml", text))["tasks"]["t"]["args"]["c"] == [1]


@pytest.mark.parametrize("depth", [100, 5000])
def test_absurdly_deep_data_is_refused(tmp_path: Path, depth: int) -> None:
    text = "name: g\ntasks: {t: {run: 'm:f', args: {x: " + "[" * depth + "]" * depth + "}}}\n"
    with pytest.raises(DocumentError, match="nested"):
        load_document(write(tmp_path / "d.yaml", text))


def test_nul_byte_in_graph_path(tmp_path: Path) -> None:
    with pytest.raises(DocumentError, match="bad graph path"):
        normalise(doc(c={"graph": "a\x00b"}), "g", base=tmp_path)


def test_a_moved_module_is_renamed_with_a_deprecation_warning() -> None:
    from wgops.store.targets import MovedTargetWarning

    with pytest.warns(MovedTargetWarning, match="use wgops.examples.tasks:noop"):
        normal = normalise(doc(a=run("examples.tasks:noop")), "t")
    assert normal["tasks"]["a"]["run"] == "wgops.examples.tasks:noop"


def test_the_worker_allow_list_renames_old_targets_and_patterns() -> None:
    from wgops.daemon import allow

    assert allow.check("examples.tasks:noop", ("examples.tasks:*",), "w") == \
        "wgops.examples.tasks:noop"
    assert allow.check("examples.tasks:noop", ("wgops.examples.tasks:*",), "w") == \
        "wgops.examples.tasks:noop"
    with pytest.raises(allow.NotAllowed):
        allow.check("examples.tasks:noop", ("tests.tasks:*",), "w")
