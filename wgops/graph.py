"""Graphs built in Python: :class:`Graph` produces exactly the graph document a YAML file would
give (the document stays the contract), validated by the same code and with the same
messages as ``wgops graph validate``; :meth:`Graph.from_document` reads one back, so YAML and
Python round-trip.

::

    g = Graph("diamond", inputs={"n": 10})
    a = g.task("a", "mylab.tasks:split", {"n": g.inputs["n"]})
    b = g.task("b", mylab.tasks.mul, {"x": a["half"], "y": 3}, retries=1)
    c = g.shell("c", f"echo {a['rest']}")
    g.outputs(total=b)
    g.document()        # {"name": "diamond", "inputs": {"n": 10}, "tasks": {...}, ...}

A task is an entry of document keys: its kind (``run``, ``shell``, ``graph`` or ``build``),
``args``, then its options (:data:`OPTIONS`). Shapes decided at run time::

    parts = g.task("parts", "mylab.tasks:chunks", {"n": 5})
    sq = g.task("sq", mul, {"x": wgops.ITEM, "y": wgops.ITEM}, map=parts["xs"])
    big = g.task("big", add, {"x": 1, "y": 2}, when=check["big"])
    g.build("refine", "mylab.tasks:refine_graph", {"x": sq})   # returns a document
"""

from __future__ import annotations

import copy
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeAlias

from wgops.references import Inputs, Reference, TaskHandle
from wgops.store.document import NAME_RE, RESERVED, Reading, load_document, normalise
from wgops.store.errors import InvalidDocument
from wgops.store.parsing import DEFAULT_MAX_BYTES
from wgops.store.targets import TARGET_RE, is_target

#: What ``Client.submit`` and ``Graph.graph`` take: a Graph, a path of a YAML or JSON
#: document, or a document as a dict.
GraphSource: TypeAlias = "Graph | str | os.PathLike[str] | Mapping[str, Any]"
#: ``after=``: a task's handle or name, or several
After: TypeAlias = "TaskHandle | str | Sequence[TaskHandle | str] | None"

#: keyword of ``Graph.task`` / ``shell`` / ``graph`` -> key of the document's task entry
OPTIONS = {"after": "after", "retries": "retries", "retry_delay": "retry_delay",
           "timeout": "timeout", "pool": "pool", "map": "map", "when": "when"}
#: ``map=`` and ``when=``: a reference (``parts["xs"]``, ``g.inputs["go"]``)
Shape: TypeAlias = "Reference | str | None"


def target_of(graph: str, task: str, target: str | Callable[..., Any],
              kind: str = "run") -> str:
    """``"module:function"`` for a ``run`` task of ``graph``: the text as given, or the name
    a worker imports a function by. A function no worker could import by that name is
    refused, with why: a lambda, a function nested in another, one defined in ``__main__``."""
    if isinstance(target, str):
        if not is_target(target):          # the message of the document's validation
            raise InvalidDocument(f"{graph}: task {task!r}: {kind} must be 'module:function',"
                                  f" not {target!r}")
        return target
    if not callable(target):
        raise InvalidDocument(f"{graph}: task {task!r}: {kind} must be 'module:function' or a "
                              f"function, not {target!r}")
    module = getattr(target, "__module__", None)
    qualname = getattr(target, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str):
        why = "it has no module and name to import it by (pass a plain function)"
    elif qualname == "<lambda>" or qualname.endswith(".<lambda>"):
        why = "a lambda has no name to import it by; define it with def in a module"
    elif "<locals>" in qualname:
        why = "it is defined inside another function; define it at the top level of a module"
    elif module == "__main__":
        why = ("it is defined in __main__ (this script or notebook), which a worker does not "
               "import; move it into a module on the workers' path (WGOPS_TASK_PATH)")
    elif "." in qualname:
        why = f"{qualname} is not a top-level function of {module} (a method?)"
    elif not TARGET_RE.match(f"{module}:{qualname}"):
        why = "workers run only public functions (no leading underscore) of named modules"
    elif getattr(sys.modules.get(module), qualname, None) is not target:
        why = f"{module}.{qualname} is another object (was the function renamed or replaced?)"
    else:
        return f"{module}:{qualname}"
    what = f"{module}.{qualname}" if isinstance(module, str) and isinstance(qualname, str) \
        else repr(target)
    raise InvalidDocument(f"{graph}: task {task!r}: a worker could not import {what}: {why}")


def _plain(value: Any, where: str) -> Any:
    """A copy of ``value`` as JSON data; references become their ``${...}`` text."""
    if isinstance(value, Reference):
        return str(value)
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidDocument(f"{where}: key {key!r} is not a string")
            out[key] = _plain(item, f"{where}[{key!r}]")
        return out
    if isinstance(value, (list, tuple)):
        return [_plain(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, Graph):
        raise InvalidDocument(f"{where}: a Graph is not a value (nest it with Graph.graph)")
    raise InvalidDocument(f"{where}: a {type(value).__name__} is not a JSON value")


class Graph:
    """A graph document, built task by task.

    ``name``: the graph's name. ``inputs``: the inputs' defaults (a submit's ``inputs=``
    overrides them). ``priority``: 0..9, 9 runs first. ``description``: free text.
    ``base``: the directory that nested graphs given by relative path are read from
    (default: the current directory).
    """

    def __init__(self, name: str, *, inputs: Mapping[str, Any] | None = None,
                 priority: int | None = None, description: str | None = None,
                 base: str | os.PathLike[str] | None = None):
        if not isinstance(name, str) or not name.strip():
            raise InvalidDocument(f"a graph's name must be a non-empty string, not {name!r}")
        self.name = name
        self.base = Path(base).resolve() if base is not None else Path.cwd()
        self.inputs = Inputs(self)
        self._head: dict[str, Any] = {}      # the document's other keys, as they will be
        self._tasks: dict[str, dict[str, Any]] = {}
        self._source: str | None = None      # the file it was read from
        if description is not None:
            self._head["description"] = description
        if priority is not None:
            self._head["priority"] = priority
        if inputs is not None:
            self._head["inputs"] = _plain(inputs, "inputs")

    # -- building ---------------------------------------------------------------------------

    def task(self, name: str, target: str | Callable[..., Any],
             args: Mapping[str, Any] | None = None, *, after: After = None,
             retries: int | None = None, retry_delay: float | None = None,
             timeout: float | None = None, pool: str | None = None, map: Shape = None,
             when: Shape = None) -> TaskHandle:
        """Add a Python task: ``target`` is ``"module:function"`` or an importable function
        (its module and name are what the worker imports). ``args``: keyword arguments,
        references included. ``after``: tasks that must finish first (handles or names).
        ``retries`` (default 0), ``retry_delay`` and ``timeout`` (seconds), ``pool``
        (default ``default``). ``map``: a reference to a list known only at run time — one
        copy per element, ``ITEM`` and ``INDEX`` in ``args``; its result is the list of the
        copies' results. ``when``: a reference; the task runs only if it is truthy, else it
        is skipped (which does not fail the graph). Returns the task's handle (a reference
        to its result)."""
        return self._add(name, "run", target_of(self.name, name, target), args, after=after,
                         retries=retries, retry_delay=retry_delay, timeout=timeout, pool=pool,
                         map=map, when=when)

    def build(self, name: str, builder: str | Callable[..., Any],
              args: Mapping[str, Any] | None = None, *, after: After = None,
              retries: int | None = None, retry_delay: float | None = None,
              timeout: float | None = None, pool: str | None = None, map: Shape = None,
              when: Shape = None) -> TaskHandle:
        """Add a build task: ``builder`` (``"module:function"`` or an importable function,
        allow-listed like a task) runs on a worker with ``args`` and returns a graph document
        (a dict, or a :class:`Graph`); the scheduler validates it and runs it as this task's
        nested graph, whose outputs are the task's result. A builder may return a graph with
        another build task: loops and recursion (at most ``max_depth`` levels)."""
        return self._add(name, "build", target_of(self.name, name, builder, "build"), args,
                         after=after, retries=retries, retry_delay=retry_delay,
                         timeout=timeout, pool=pool, map=map, when=when)

    def shell(self, name: str, command: str, args: Mapping[str, Any] | None = None, *,
              after: After = None, retries: int | None = None,
              retry_delay: float | None = None, timeout: float | None = None,
              pool: str | None = None, map: Shape = None, when: Shape = None) -> TaskHandle:
        """Add a shell task. References in ``command`` (f-strings of handles) reach it as
        environment variables, never as command text; its result is ``{stdout, stderr,
        returncode}``. Options as for :meth:`task`."""
        if isinstance(command, Reference):
            command = str(command)
        return self._add(name, "shell", command, args, after=after, retries=retries,
                         retry_delay=retry_delay, timeout=timeout, pool=pool, map=map,
                         when=when)

    def graph(self, name: str, child: GraphSource, args: Mapping[str, Any] | None = None, *,
              after: After = None, retries: int | None = None,
              retry_delay: float | None = None, timeout: float | None = None,
              pool: str | None = None, map: Shape = None, when: Shape = None) -> TaskHandle:
        """Add a nested graph, driven by the scheduler (it holds no worker slot): ``child`` is
        a Graph (inlined), a path (relative to ``base``) or a document dict. ``args`` become
        the child's inputs; the task's result is the child's outputs."""
        if isinstance(child, Graph):
            spec: Any = child
        elif isinstance(child, (str, os.PathLike)):
            spec = os.fspath(child)
        elif isinstance(child, Mapping):
            spec = _plain(child, f"task {name!r}: graph")
        else:
            raise InvalidDocument(f"task {name!r}: graph must be a Graph, a path or a "
                                  f"document dict, not {type(child).__name__}")
        return self._add(name, "graph", spec, args, after=after, retries=retries,
                         retry_delay=retry_delay, timeout=timeout, pool=pool, map=map,
                         when=when)

    def outputs(self, **values: Any) -> Graph:
        """Set graph outputs (added to those set before): ``g.outputs(total=d["sum"])``."""
        current = self._head.get("outputs")
        outputs = dict(current) if isinstance(current, dict) else {}
        self._check_owner(values, "outputs")
        outputs.update(_plain(values, "outputs"))
        self._head["outputs"] = outputs
        return self

    def _add(self, name: str, kind: str, spec: Any, args: Mapping[str, Any] | None,
             **options: Any) -> TaskHandle:
        if not isinstance(name, str) or not NAME_RE.fullmatch(name) or name in RESERVED:
            raise InvalidDocument(f"{self.name}: bad task name {name!r} (letters, digits, '_' "
                                  "and '-', not starting with a digit; 'inputs', 'item' and "
                                  "'index' are reserved)")
        if name in self._tasks:
            raise InvalidDocument(f"{self.name}: task {name!r} is already defined")
        entry: dict[str, Any] = {kind: spec}
        if args is not None:
            if not isinstance(args, Mapping):
                raise InvalidDocument(f"{self.name}: task {name!r}: args must be a mapping")
            self._check_owner(args, f"task {name!r}")
            entry["args"] = _plain(args, f"task {name!r}: args")
        for keyword, key in OPTIONS.items():
            value = options.get(keyword)
            if value is None:
                continue
            if keyword in ("map", "when"):
                self._check_owner(value, f"task {name!r}")
            entry[key] = self._after(name, value) if keyword == "after" \
                else _plain(value, f"task {name!r}: {keyword}")
        self._tasks[name] = entry
        return TaskHandle(name, self)

    def _after(self, task: str, after: After) -> list[str]:
        items = [after] if isinstance(after, (str, Reference)) else list(after or ())
        names = []
        for item in items:
            if isinstance(item, TaskHandle):
                self._check_owner(item, f"task {task!r}")
                names.append(item.name)
            elif isinstance(item, str):
                names.append(item)
            else:
                raise InvalidDocument(f"{self.name}: task {task!r}: after takes task handles "
                                      f"or names, not {item!r}")
        return names

    def _check_owner(self, value: Any, where: str) -> None:
        """Refuse a reference to another graph's task or input (it would name the wrong one)."""
        if isinstance(value, Reference):
            if value.graph is not None and value.graph is not self:
                raise InvalidDocument(f"{self.name}: {where}: {value} belongs to graph "
                                      f"{value.graph.name!r}")
        elif isinstance(value, Mapping):
            for item in value.values():
                self._check_owner(item, where)
        elif isinstance(value, (list, tuple)):
            for item in value:
                self._check_owner(item, where)

    # -- reading ------------------------------------------------------------------------------

    def __getitem__(self, name: str) -> TaskHandle:
        """The handle of a task already added (or read by :meth:`from_document`)."""
        if name not in self._tasks:
            raise KeyError(f"no task {name!r} in graph {self.name!r}")
        return TaskHandle(name, self)

    def __contains__(self, name: object) -> bool:
        return name in self._tasks

    @property
    def tasks(self) -> tuple[str, ...]:
        """The names of the graph's tasks, in order."""
        return tuple(self._tasks)

    def __repr__(self) -> str:
        return f"<Graph {self.name!r}: {len(self._tasks)} tasks>"

    # -- the document -------------------------------------------------------------------------

    def document(self) -> dict[str, Any]:
        """The graph document as a dict, exactly what ``yaml.safe_load`` of the same graph
        written in YAML gives; validated first (``InvalidDocument`` with the message
        ``wgops graph validate`` prints)."""
        doc = self._raw(self.base, ())
        self._normalise(doc)
        return doc

    def _normalise(self, doc: dict[str, Any], inputs: Mapping[str, Any] | None = None,
                   max_bytes: int = DEFAULT_MAX_BYTES) -> dict[str, Any]:
        chain = (Path(self._source).resolve(),) if self._source else ()
        return normalise(copy.deepcopy(doc), self._source or self.name, self.base,
                         _overrides(inputs), chain=chain, reading=Reading(max_bytes))

    def _raw(self, base: Path, chain: tuple[Graph, ...]) -> dict[str, Any]:
        """The document, nested Graphs inlined; paths relative to ``base``."""
        if self in chain:
            raise InvalidDocument(f"{chain[0].name}: graph {self.name!r} includes itself")
        tasks: dict[str, dict[str, Any]] = {}
        for name, entry in self._tasks.items():
            out: dict[str, Any] = {}
            for key, value in entry.items():
                if key == "graph" and isinstance(value, Graph):
                    out[key] = value._raw(base, (*chain, self))
                elif key == "graph" and isinstance(value, str) and self.base != base:
                    out[key] = str(self.base / value)
                else:
                    out[key] = copy.deepcopy(value)
            tasks[name] = out
        head = copy.deepcopy(self._head)
        outputs = {"outputs": head.pop("outputs")} if "outputs" in head else {}
        return {"name": self.name, **head, "tasks": tasks, **outputs}

    @classmethod
    def from_document(cls, source: Mapping[str, Any] | str | os.PathLike[str], *,
                      max_bytes: int = DEFAULT_MAX_BYTES) -> Graph:
        """The Graph of a document: a dict, or the path of a YAML or JSON file (nested graphs
        by path are then read relative to it; ``max_bytes`` bounds what is read, as the
        ``max_document_bytes`` setting does). Validated first (``InvalidDocument``);
        ``document()`` gives the same dict back."""
        reading = Reading(max_bytes)
        if isinstance(source, Mapping):
            doc, path = dict(source), None
        elif isinstance(source, (str, os.PathLike)):
            path = Path(source)
            doc = reading.file(path)
        else:
            raise InvalidDocument(f"a document is a dict or a path, not {type(source).__name__}")
        base = path.parent.resolve() if path is not None else Path.cwd()
        normalise(copy.deepcopy(doc), str(path) if path else _label(doc), base,
                  chain=(path.resolve(),) if path else (), reading=reading)
        graph = cls._build(doc, base)
        graph._source = str(path) if path is not None else None
        return graph

    @classmethod
    def _build(cls, doc: dict[str, Any], base: Path) -> Graph:
        graph = cls(doc["name"], base=base)
        graph._head = {k: copy.deepcopy(v) for k, v in doc.items() if k not in ("name", "tasks")}
        for name, entry in doc["tasks"].items():
            entry = copy.deepcopy(entry)
            if isinstance(entry.get("graph"), dict):
                entry["graph"] = cls._build(entry["graph"], base)
            graph._tasks[name] = entry
        return graph


def _label(doc: Any) -> str:
    """What error messages call a document given as a dict."""
    name = doc.get("name") if isinstance(doc, dict) else None
    return name if isinstance(name, str) and name.strip() else "<document>"


def _overrides(inputs: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if inputs is None:
        return None
    if not isinstance(inputs, Mapping):
        raise InvalidDocument(f"inputs must be a mapping of name to value, not {inputs!r}")
    for key in inputs:
        if not isinstance(key, str) or not NAME_RE.fullmatch(key):
            raise InvalidDocument(f"inputs: bad input name {key!r}")
    return _plain(inputs, "inputs")


def normalised(source: GraphSource, inputs: Mapping[str, Any] | None = None,
               max_bytes: int = DEFAULT_MAX_BYTES) -> dict[str, Any]:
    """The validated, normal form of a graph from any source (what the store keeps), with
    ``inputs`` overriding the defaults (as ``--set`` does); files read are bounded by
    ``max_bytes`` (the ``max_document_bytes`` setting)."""
    if isinstance(source, Graph):
        return source._normalise(source._raw(source.base, ()), inputs, max_bytes)
    if isinstance(source, Mapping):
        doc = _plain(source, "document")
        return normalise(doc, _label(doc), Path.cwd(), _overrides(inputs),
                         reading=Reading(max_bytes))
    if isinstance(source, (str, os.PathLike)):
        return load_document(Path(source), _overrides(inputs), max_bytes)
    raise InvalidDocument("a graph is a wgops.Graph, the path of a document or a document "
                          f"dict, not {type(source).__name__}")


def validate(source: GraphSource, inputs: Mapping[str, Any] | None = None,
             max_bytes: int = DEFAULT_MAX_BYTES) -> dict[str, Any]:
    """Check a graph without storing it: ``{"name", "valid": True, "tasks": N}`` (the
    document of ``wgops graph validate --json``), or ``InvalidDocument``."""
    doc = normalised(source, inputs, max_bytes)
    return {"name": doc["name"], "valid": True, "tasks": len(doc["tasks"])}
