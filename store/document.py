"""Graph documents (YAML or JSON): read with bounds, validate everything, normalise.

Nothing is stored before :func:`load_document` (or :func:`normalise` of a mapping) has
accepted the whole document, nested graphs included. Every error names its culprit (the task,
the reference, the line). Validation is bounded whatever the input: the bytes read (the files
of nested graphs included, each time they are used), the values held (aliases expanded), the
tasks, the depth of nesting; every number is finite and in range, every value is JSON's.
"""

from __future__ import annotations

import graphlib
import math
import re
import unicodedata
from pathlib import Path
from typing import Any

from wgops.store.errors import DocumentError
from wgops.store.parsing import DEFAULT_MAX_BYTES, MAX_NODES, parse_scalar, parse_text, read_bounded
from wgops.store.refs import iter_refs, task_refs
from wgops.store.shell import ShellSyntaxError, compile_command
from wgops.store.targets import canonical, is_target

NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")          # matched whole (fullmatch)
POOL_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")
SEGMENT_RE = re.compile(r"[A-Za-z0-9_-]+")                # a key or index below a reference
KINDS = ("run", "shell", "graph")
TASK_KEYS = {"run", "shell", "graph", "args", "after", "retries", "retry_delay", "timeout", "pool"}
GRAPH_KEYS = {"name", "priority", "inputs", "tasks", "outputs", "description"}
MAX_DEPTH = 16                  # graphs nested in graphs
MAX_DATA_DEPTH = 64             # mappings and lists nested in values
MAX_TASKS = 100_000             # tasks of a document, nested graphs included
MAX_NAME = 200                  # characters of a graph's name
INT_LIMIT = 2 ** 63             # integers a 64-bit column and every message can carry
# (whole number?, minimum, maximum) of each number a task may set
NUMBERS = {"retries": (True, 0, 1000), "retry_delay": (False, 0, 86_400),
           "timeout": (False, 0, 31_536_000)}


class Reading:
    """What one validation may still read: bytes (each use of a nested file counts) and
    tasks; files are read once."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES):
        self.max_bytes = max_bytes
        self.bytes_left = max_bytes
        self.tasks_left = MAX_TASKS
        self._files: dict[Path, tuple[Any, int]] = {}

    def file(self, path: Path) -> Any:
        if path not in self._files:
            text = read_bounded(path, self.max_bytes)
            self._files[path] = (parse_text(text, str(path), self.max_bytes), len(text))
        data, size = self._files[path]
        self.bytes_left -= size
        if self.bytes_left < 0:
            raise DocumentError(f"{path}: the document and its nested graphs read more than "
                                f"{self.max_bytes} bytes (max_document_bytes)")
        return data

    def tasks(self, where: str, count: int) -> None:
        self.tasks_left -= count
        if self.tasks_left < 0:
            raise DocumentError(f"{where}: more than {MAX_TASKS} tasks, nested graphs included")


def read_file(path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> Any:
    """The data of a YAML or JSON file (bounded, JSON's values only)."""
    return Reading(max_bytes).file(path)


def load_document(path: str | Path, overrides: dict[str, Any] | None = None,
                  max_bytes: int = DEFAULT_MAX_BYTES) -> dict[str, Any]:
    """Read, validate and normalise the graph document at ``path``."""
    path = Path(path)
    reading = Reading(max_bytes)
    return normalise(reading.file(path), str(path), path.parent.resolve(), overrides,
                     chain=(path.resolve(),), reading=reading)


def parse_overrides(pairs: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """``["K=V", ...]`` -> ``{K: V}`` with V read as a YAML scalar."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not NAME_RE.fullmatch(key):
            raise DocumentError(f"--set {pair!r}: expected NAME=VALUE")
        out[key] = parse_scalar(raw)
    return out


def normalise(doc: Any, source: str, base: Path | None = None,
              overrides: dict[str, Any] | None = None, provided: set[str] | None = None,
              chain: tuple[Path, ...] = (), reading: Reading | None = None) -> dict[str, Any]:
    """Validate ``doc`` and return its normal form.

    ``provided``: input names a parent graph passes (nested graphs). ``chain``: files being
    loaded, to refuse a graph that includes itself. ``reading``: the bounds of this
    validation (a fresh one by default).
    """
    reading = reading or Reading()
    where = source
    check_values(where, doc)
    if overrides:
        check_values(f"{where}: --set", overrides)
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
    if len(name) > MAX_NAME or any(unicodedata.category(c) in ("Cc", "Cf") for c in name):
        raise DocumentError(f"{where}: 'name' must be at most {MAX_NAME} printable characters, "
                            f"not {name[:40]!r}")
    where = f"{source} ({name})" if source != name else source
    priority = doc.get("priority", 0)
    if isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= 9:
        raise DocumentError(f"{where}: 'priority' must be an integer from 0 to 9, not {priority!r}")
    inputs = doc.get("inputs") or {}
    if not isinstance(inputs, dict):
        raise DocumentError(f"{where}: 'inputs' must be a mapping")
    for key in inputs:
        if not isinstance(key, str) or not NAME_RE.fullmatch(key):
            raise DocumentError(f"{where}: bad input name {key!r}")
    inputs = {**inputs, **(overrides or {})}
    if "tasks" not in doc:
        raise DocumentError(f"{where}: missing 'tasks'")
    raw_tasks = doc["tasks"]
    if not isinstance(raw_tasks, dict) or not raw_tasks:
        raise DocumentError(f"{where}: 'tasks' must be a non-empty mapping of name to task")
    known_inputs = set(inputs) | (provided or set())
    reading.tasks(where, len(raw_tasks))
    tasks: dict[str, dict[str, Any]] = {}
    for tname, raw in raw_tasks.items():
        tasks[str(tname)] = _task(where, tname, raw, base, chain, reading)
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


def check_values(where: str, value: Any) -> None:
    """Refuse what is not a JSON value: keys that are not strings, numbers that are not finite
    or out of a 64-bit range, other types; data nested too deep, containing itself, or holding
    more than ``MAX_NODES`` values (a mapping given in Python may share its parts: each use
    counts). The error names the value's place (``tasks.a.args.x``)."""
    stack: list[tuple[Any, int, str]] = [(value, 0, "")]
    open_ids: list[int] = []
    seen = 0
    while stack:
        item, depth, place = stack.pop()
        if item is _LEAVE:
            open_ids.pop()
            continue
        seen += 1
        if seen > MAX_NODES:
            raise DocumentError(f"{where}: more than {MAX_NODES} values")
        at = f" at {place}" if place else ""
        if isinstance(item, bool) or item is None or isinstance(item, str):
            continue
        if isinstance(item, int):
            if not -INT_LIMIT <= item < INT_LIMIT:
                raise DocumentError(f"{where}: the number{at} is out of range (64 bits)")
            continue
        if isinstance(item, float):
            if not math.isfinite(item):
                raise DocumentError(f"{where}: the number{at} is not finite ({item})")
            continue
        if not isinstance(item, (dict, list)):
            raise DocumentError(f"{where}: the {type(item).__name__}{at} is not a JSON value")
        if id(item) in open_ids:
            raise DocumentError(f"{where}: a YAML alias refers to itself{at} (recursive data)")
        if depth > MAX_DATA_DEPTH:
            raise DocumentError(f"{where}: data nested more than {MAX_DATA_DEPTH} deep{at}")
        open_ids.append(id(item))
        stack.append((_LEAVE, depth, place))
        prefix = f"{place}." if place else ""
        if isinstance(item, dict):
            for key, child in item.items():
                if not isinstance(key, str):
                    raise DocumentError(f"{where}: the key {key!r}{at} is not a string")
                stack.append((child, depth + 1, prefix + key))
        else:
            stack.extend((child, depth + 1, f"{prefix}{i}") for i, child in enumerate(item))


_LEAVE = object()


def _task(where: str, tname: Any, raw: Any, base: Path | None,
          chain: tuple[Path, ...], reading: Reading) -> dict[str, Any]:
    if not isinstance(tname, str) or not NAME_RE.fullmatch(tname) or tname == "inputs":
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
        try:
            compile_command(raw["shell"])
        except ShellSyntaxError as exc:
            raise DocumentError(f"{where}: task {tname!r}: shell: {exc}") from None
        task["shell"] = raw["shell"]
    else:
        task["graph"] = _nested(where, tname, raw, base, chain, reading)
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
    task["retries"] = _number(where, tname, raw, "retries", 0)
    task["retry_delay"] = _number(where, tname, raw, "retry_delay", 0.0)
    task["timeout"] = _number(where, tname, raw, "timeout", None)
    pool = raw.get("pool", "default")
    if not isinstance(pool, str) or not POOL_RE.fullmatch(pool):
        raise DocumentError(f"{where}: task {tname!r}: bad pool name {pool!r}")
    task["pool"] = pool
    return task


def _number(where: str, tname: str, raw: dict, key: str, default: Any) -> Any:
    if key not in raw or raw[key] is None:
        return default
    whole, minimum, maximum = NUMBERS[key]
    value = raw[key]
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and \
        math.isfinite(value) and minimum <= value <= maximum
    if whole:
        ok = ok and float(value).is_integer()
    if key == "timeout":
        ok = ok and value > 0
    if not ok:
        kind = "whole number" if whole else "number of seconds"
        low = f"more than {minimum}" if key == "timeout" else f"from {minimum}"
        raise DocumentError(f"{where}: task {tname!r}: {key} must be a {kind} {low} to "
                            f"{maximum}, not {value!r}")
    return int(value) if whole else float(value)


def _nested(where: str, tname: str, raw: dict, base: Path | None,
            chain: tuple[Path, ...], reading: Reading) -> dict[str, Any]:
    spec = raw["graph"]
    args = raw.get("args") or {}
    provided = set(args) if isinstance(args, dict) else set()
    if isinstance(spec, dict):
        return normalise(spec, f"{where} > {tname}", base, provided=provided, chain=chain + (
            Path(f"<inline {tname}>"),), reading=reading)
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
    if len(chain) >= MAX_DEPTH:
        raise DocumentError(f"{where}: graphs nested more than {MAX_DEPTH} deep")
    return normalise(reading.file(path), f"{spec}", path.parent, provided=provided,
                     chain=chain + (path,), reading=reading)


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
    if not NAME_RE.fullmatch(ref.head) or not all(SEGMENT_RE.fullmatch(p) for p in ref.path):
        raise DocumentError(f"{where}: {owner}: malformed reference {ref} (names, keys and "
                            "list positions: ASCII letters, digits, '_' and '-')")
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
