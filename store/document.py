"""Graph documents (YAML or JSON): parse, validate everything, normalise.

Nothing is stored before :func:`load_document` has accepted the whole document, nested graphs
included. Every error names its culprit (the task, the reference, the line).
"""

from __future__ import annotations

import graphlib
import re
from pathlib import Path
from typing import Any

import yaml

from wgops.store.errors import DocumentError
from wgops.store.refs import iter_refs, task_refs
from wgops.store.targets import canonical, is_target

NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
POOL_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")
KINDS = ("run", "shell", "graph")
TASK_KEYS = {"run", "shell", "graph", "args", "after", "retries", "retry_delay", "timeout", "pool"}
GRAPH_KEYS = {"name", "priority", "inputs", "tasks", "outputs", "description"}
MAX_DEPTH = 16
MAX_DATA_DEPTH = 64


def parse_text(text: str, source: str = "<document>") -> Any:
    """Parse YAML (JSON is YAML) into Python data, with the line of a syntax error."""
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = exc.problem or exc.context or "syntax error"
        raise DocumentError(f"{source}: invalid YAML{where}: {problem}") from None
    except yaml.YAMLError as exc:
        raise DocumentError(f"{source}: invalid YAML: {exc}") from None
    except RecursionError:
        raise DocumentError(f"{source}: invalid YAML: nested more than Python can parse") \
            from None


def read_file(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DocumentError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise DocumentError(f"{path}: cannot read: {exc}") from None
    return parse_text(text, str(path))


def load_document(path: str | Path, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Read, validate and normalise the graph document at ``path``."""
    path = Path(path)
    return normalise(read_file(path), str(path), path.parent.resolve(), overrides,
                     chain=(path.resolve(),))


def parse_overrides(pairs: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """``["K=V", ...]`` -> ``{K: V}`` with V parsed as a YAML scalar."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not NAME_RE.match(key):
            raise DocumentError(f"--set {pair!r}: expected NAME=VALUE")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        if isinstance(value, (dict, list)) and not raw.lstrip().startswith(("{", "[")):
            value = raw
        out[key] = value
    return out


def normalise(doc: Any, source: str, base: Path | None = None,
              overrides: dict[str, Any] | None = None, provided: set[str] | None = None,
              chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """Validate ``doc`` and return its normal form.

    ``provided``: input names a parent graph passes (nested graphs). ``chain``: files being
    loaded, to refuse a graph that includes itself.
    """
    where = source
    _check_shape(where, doc)
    if len(chain) > MAX_DEPTH:
        raise DocumentError(f"{where}: graphs nested more than {MAX_DEPTH} deep")
    if not isinstance(doc, dict):
        raise DocumentError(f"{where}: a graph document must be a mapping with 'name' and 'tasks'")
    unknown = sorted(set(doc) - GRAPH_KEYS, key=repr)
    if unknown:
        raise DocumentError(f"{where}: unknown key {unknown[0]!r} (expected one of "
                            f"{', '.join(sorted(GRAPH_KEYS))})")
    name = doc.get("name")
    if not isinstance(name, str) or not name.strip():
        raise DocumentError(f"{where}: missing 'name' (a non-empty string)")
    where = f"{source} ({name})" if source != name else source
    priority = doc.get("priority", 0)
    if isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= 9:
        raise DocumentError(f"{where}: 'priority' must be an integer from 0 to 9, not {priority!r}")
    inputs = doc.get("inputs") or {}
    if not isinstance(inputs, dict):
        raise DocumentError(f"{where}: 'inputs' must be a mapping")
    for key in inputs:
        if not isinstance(key, str) or not NAME_RE.match(key):
            raise DocumentError(f"{where}: bad input name {key!r}")
    inputs = {**inputs, **(overrides or {})}
    if "tasks" not in doc:
        raise DocumentError(f"{where}: missing 'tasks'")
    raw_tasks = doc["tasks"]
    if not isinstance(raw_tasks, dict) or not raw_tasks:
        raise DocumentError(f"{where}: 'tasks' must be a non-empty mapping of name to task")
    known_inputs = set(inputs) | (provided or set())
    tasks: dict[str, dict[str, Any]] = {}
    for tname, raw in raw_tasks.items():
        tasks[str(tname)] = _task(where, tname, raw, base, chain)
    for tname, task in tasks.items():
        task["deps"] = _deps(where, tname, task, tasks, known_inputs)
    outputs = doc.get("outputs") or {}
    if not isinstance(outputs, dict):
        raise DocumentError(f"{where}: 'outputs' must be a mapping")
    for ref in iter_refs(outputs):
        _check_ref(where, "outputs", ref, tasks, known_inputs)
    _check_cycles(where, tasks)
    return {"name": name, "priority": priority, "inputs": inputs, "tasks": tasks,
            "outputs": outputs, "source": source}


def _check_shape(where: str, doc: Any) -> None:
    """Refuse data that loops back on itself (YAML aliases can) or nests absurdly deep."""
    stack: list[tuple[Any, int]] = [(doc, 0)]
    open_ids: list[int] = []
    while stack:
        value, depth = stack.pop()
        if value is _LEAVE:
            open_ids.pop()
            continue
        if not isinstance(value, (dict, list)):
            continue
        if id(value) in open_ids:
            raise DocumentError(f"{where}: a YAML alias refers to itself (recursive data)")
        if depth > MAX_DATA_DEPTH:
            raise DocumentError(f"{where}: data nested more than {MAX_DATA_DEPTH} deep")
        open_ids.append(id(value))
        stack.append((_LEAVE, depth))
        items = value.values() if isinstance(value, dict) else value
        stack.extend((item, depth + 1) for item in items)


_LEAVE = object()


def _task(where: str, tname: Any, raw: Any, base: Path | None,
          chain: tuple[Path, ...]) -> dict[str, Any]:
    if not isinstance(tname, str) or not NAME_RE.match(tname) or tname == "inputs":
        raise DocumentError(f"{where}: bad task name {tname!r} (letters, digits, '_' and '-', "
                            "not starting with a digit; 'inputs' is reserved)")
    if not isinstance(raw, dict):
        raise DocumentError(f"{where}: task {tname!r} must be a mapping")
    unknown = sorted(set(raw) - TASK_KEYS, key=repr)
    if unknown:
        raise DocumentError(f"{where}: task {tname!r} has unknown key {unknown[0]!r}")
    kinds = [k for k in KINDS if k in raw]
    if len(kinds) != 1:
        got = " and ".join(kinds) if kinds else "none"
        raise DocumentError(f"{where}: task {tname!r} needs exactly one of run, shell or graph "
                            f"(has {got})")
    kind = kinds[0]
    task: dict[str, Any] = {"kind": {"run": "python"}.get(kind, kind)}
    if kind == "run":
        target = raw["run"]
        if not is_target(target):
            raise DocumentError(f"{where}: task {tname!r}: run must be 'module:function', "
                                f"not {target!r}")
        # whether a worker may run it is its allow-list's call, checked before any import
        task["run"] = canonical(target)
    elif kind == "shell":
        if not isinstance(raw["shell"], str) or not raw["shell"].strip():
            raise DocumentError(f"{where}: task {tname!r}: shell must be a non-empty string")
        task["shell"] = raw["shell"]
    else:
        task["graph"] = _nested(where, tname, raw, base, chain)
    args = raw.get("args") or {}
    if not isinstance(args, dict):
        raise DocumentError(f"{where}: task {tname!r}: args must be a mapping")
    task["args"] = args
    after = raw.get("after") or []
    if isinstance(after, str):
        after = [after]
    if not isinstance(after, list) or not all(isinstance(a, str) for a in after):
        raise DocumentError(f"{where}: task {tname!r}: after must be a list of task names")
    task["after"] = after
    task["retries"] = _number(where, tname, raw, "retries", int, 0, 0)
    task["retry_delay"] = _number(where, tname, raw, "retry_delay", float, 0.0, 0)
    task["timeout"] = _number(where, tname, raw, "timeout", float, None, 0)
    pool = raw.get("pool", "default")
    if not isinstance(pool, str) or not POOL_RE.match(pool):
        raise DocumentError(f"{where}: task {tname!r}: bad pool name {pool!r}")
    task["pool"] = pool
    return task


def _number(where: str, tname: str, raw: dict, key: str, kind: type, default: Any,
            minimum: float) -> Any:
    if key not in raw or raw[key] is None:
        return default
    value = raw[key]
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        ok = ok and float(value).is_integer()
    if not ok or value < minimum or (key == "timeout" and value <= 0):
        raise DocumentError(f"{where}: task {tname!r}: {key} must be a "
                            f"{'whole ' if kind is int else ''}number >= {minimum}, not {value!r}")
    return kind(value)


def _nested(where: str, tname: str, raw: dict, base: Path | None,
            chain: tuple[Path, ...]) -> dict[str, Any]:
    spec = raw["graph"]
    args = raw.get("args") or {}
    provided = set(args) if isinstance(args, dict) else set()
    if isinstance(spec, dict):
        return normalise(spec, f"{where} > {tname}", base, provided=provided, chain=chain + (
            Path(f"<inline {tname}>"),))
    if not isinstance(spec, str) or not spec.strip():
        raise DocumentError(f"{where}: task {tname!r}: graph must be a relative path or a mapping")
    if base is None:
        raise DocumentError(f"{where}: task {tname!r}: graph by path needs a document file")
    try:
        path = (base / spec).resolve()
    except (OSError, ValueError, RuntimeError) as exc:
        raise DocumentError(f"{where}: task {tname!r}: bad graph path {spec!r}: {exc}") from None
    if path in chain:
        raise DocumentError(f"{where}: task {tname!r}: graph {spec!r} includes itself")
    return normalise(read_file(path), f"{spec}", path.parent, provided=provided,
                     chain=chain + (path,))


def _deps(where: str, tname: str, task: dict, tasks: dict, inputs: set[str]) -> list[str]:
    deps: list[str] = []
    for target in task["after"]:
        if target not in tasks:
            raise DocumentError(f"{where}: task {tname!r}: after names unknown task {target!r}")
        if target not in deps:
            deps.append(target)
    for _, ref in task_refs(task):
        _check_ref(where, f"task {tname!r}", ref, tasks, inputs)
        if ref.head != "inputs" and ref.head not in deps:
            deps.append(ref.head)
    if tname in deps:
        raise DocumentError(f"{where}: task {tname!r} depends on itself")
    return deps


def _check_ref(where: str, owner: str, ref: Any, tasks: dict, inputs: set[str]) -> None:
    if not ref.head or not NAME_RE.match(ref.head) or any(not p for p in ref.path):
        raise DocumentError(f"{where}: {owner}: malformed reference {ref}")
    if ref.head == "inputs":
        if len(ref.path) < 1:
            raise DocumentError(f"{where}: {owner}: {ref} names no input (use ${{inputs.NAME}})")
        if ref.path[0] not in inputs:
            raise DocumentError(f"{where}: {owner}: reference {ref} to unknown input "
                                f"{ref.path[0]!r} (give it a default or --set "
                                f"{ref.path[0]}=VALUE)")
    elif ref.head not in tasks:
        raise DocumentError(f"{where}: {owner}: reference {ref} to unknown task {ref.head!r}")


def _check_cycles(where: str, tasks: dict[str, dict]) -> None:
    """A cycle is named by its tasks in dependency order (``a -> c -> b -> a``: a needs c)."""
    try:
        graphlib.TopologicalSorter({name: task["deps"] for name, task in tasks.items()}).prepare()
    except graphlib.CycleError as exc:
        cycle = list(reversed(exc.args[1]))      # graphlib names each task's dependent next
        raise DocumentError(f"{where}: cycle between tasks: {' -> '.join(cycle)}") from None
