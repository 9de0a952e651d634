"""What a scheduler keeps per active graph: only what dependency resolution needs.

Pure logic, no I/O: the scheduler feeds it transitions and acts on what it returns. A task
completion touches only that task's dependents (cost proportional to the edges touched); a
copy of a mapped task touches only its mapped task's counters, never its siblings.

Shapes decided at run time:

* a **mapped** task (``map:``) is expanded into copies when it is ready; it is then
  ``running`` until every copy ended (``open_copies`` counts down), and closes finished
  when none failed;
* a task whose ``when`` is false is **condition-skipped**: that does not fail the graph; a
  task that uses its result (a data dependency) is condition-skipped too; one that names it
  only in ``after`` runs.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from wgops.daemon.interning import Interner
from wgops.store.loading import GraphRow, TaskRow
from wgops.store.models import TASK_TERMINAL
from wgops.store.refs import NOT_TASKS, iter_refs, upstream

TERMINAL = frozenset(TASK_TERMINAL)
NO_IDS: frozenset[int] = frozenset()     # shared: an empty frozenset is a new 216-byte object
NESTED = ("graph", "build")          # kinds whose task runs a nested graph


class Node:
    """One task: its place in the graph and its last known state. A plain task; one with a
    run-time shape is a :class:`Shaped` (the fields below the slots are its own)."""

    __slots__ = ("id", "name", "kind", "spec", "pool", "state", "deps", "dependents",
                 "remaining", "attempt", "condition_false")

    # a plain task reads these class values; a Shaped task holds its own (56 bytes a task)
    data_deps: frozenset[int] = NO_IDS    # deps whose results it uses
    child: int | None = None              # nested graph id (graph and build tasks)
    mapped = False                        # has map: (expanded once it runs)
    map_of: int | None = None             # a copy: the mapped task's id
    index: int | None = None              # a copy: its element's position
    open_copies = 0                       # a mapped task: copies not yet ended
    failed_copies = 0                     # a mapped task: copies that failed for good

    def __init__(self, id: int, name: str, kind: str, spec: str, pool: str, state: str,
                 attempt: int, condition_false: bool = False):
        self.id = id
        self.name = name
        self.kind = kind
        self.spec = spec                  # the document entry, JSON text (parsed on dispatch)
        self.pool = pool
        self.state = state
        self.deps: tuple[int, ...] = ()
        self.dependents: tuple[int, ...] = ()
        self.remaining = 0                # dependencies not yet satisfied
        self.attempt = attempt            # attempts when last dispatched
        self.condition_false = condition_false

    @staticmethod
    def shaped(t: TaskRow) -> bool:
        """Whether a task needs the fields of :class:`Shaped`: it uses results or maps (only
        an entry with a reference can), is a copy, or runs a nested graph."""
        return t.map_of is not None or t.kind in NESTED or "${" in t.spec

    @property
    def failed_like(self) -> bool:
        """Ended without a result, and not because a condition said so."""
        return self.state in ("failed", "killed") or (self.state == "skipped"
                                                      and not self.condition_false)

    @property
    def condition_skipped(self) -> bool:
        return self.state == "skipped" and self.condition_false


class Shaped(Node):
    """A task with a run-time shape (:meth:`Node.shaped`): a mapped task, a copy, a task
    that uses results, a nested graph's task."""

    __slots__ = ("data_deps", "child", "mapped", "map_of", "index", "open_copies",
                 "failed_copies")

    def __init__(self, id: int, name: str, kind: str, spec: str, pool: str, state: str,
                 attempt: int, condition_false: bool = False):
        super().__init__(id, name, kind, spec, pool, state, attempt, condition_false)
        self.data_deps = NO_IDS
        self.child = None
        self.mapped = False
        self.map_of = None
        self.index = None
        self.open_copies = 0
        self.failed_copies = 0


class GraphRun:
    """An active graph owned by this scheduler."""

    __slots__ = ("id", "epoch", "state", "priority", "parent_task", "parent", "root", "depth",
                 "inputs", "outputs", "nodes", "open", "bad", "last_activity",
                 "quiet_checks", "strings")

    def __init__(self, row: GraphRow, now: float, strings: Interner | None = None):
        """``strings``: the scheduler's, shared by its graphs (the texts of equal rows are
        held once); none, this graph's own."""
        self.id = row.id
        self.strings = Interner() if strings is None else strings
        self.epoch = row.epoch
        self.state = self.strings(row.state)
        self.priority = row.priority
        self.parent_task = row.parent_task
        self.parent: int | None = None     # parent graph id, set by the scheduler
        self.root = row.root
        self.depth = row.depth
        self.inputs = row.inputs
        self.outputs = row.document.get("outputs") or {}
        self.nodes: dict[int, Node] = {}
        self.last_activity = now
        self.quiet_checks = 0              # stall checks that found nothing new (back-off)
        self.open = 0
        self.bad = 0
        copies: list[TaskRow] = []
        for t in row.tasks:
            self._node(t, row.child_of.get(t.id))
            if t.map_of is not None:
                copies.append(t)
        ids = {t.name: t.id for t in row.tasks}
        dependents: dict[int, list[int]] = {}
        same: dict[tuple[int, ...], tuple[int, ...]] = {}   # one tuple per distinct deps
        for t in row.tasks:
            if t.map_of is not None:
                continue
            node = self.nodes[t.id]
            deps = tuple(ids[d] for d in t.deps)
            node.deps = same.setdefault(deps, deps)
            if "${" in t.spec:                 # only then can it map or use results
                spec = json.loads(t.spec)
                node.mapped = "map" in spec
                used = set(upstream(spec))
                node.data_deps = frozenset(ids[d] for d in t.deps if d in used) \
                    or NO_IDS
            for dep in node.deps:
                dependents.setdefault(dep, []).append(node.id)
            node.remaining = sum(1 for d in node.deps if not self._satisfies(d, node))
        for dep, later in dependents.items():
            self.nodes[dep].dependents = tuple(later)
        for t in copies:
            self._count_copy(self.nodes[t.id])

    def _node(self, t: TaskRow, child: int | None = None) -> Node:
        s = self.strings
        if t.map_of is None:
            name, spec = s(t.name), s(t.spec)
        else:                             # a copy's name and entry are its own
            name, spec = t.name, t.spec
        args = (t.id, name, s(t.kind), spec, s(t.pool), s(t.state), t.attempts,
                t.condition_false)
        if Node.shaped(t):
            node: Node = Shaped(*args)
            node.map_of, node.index, node.child = t.map_of, t.map_index, child
        else:
            node = Node(*args)
        self.nodes[t.id] = node
        if t.state not in TERMINAL:
            self.open += 1
        elif t.state != "finished" and not node.condition_skipped:
            self.bad += 1
        return node

    def _count_copy(self, copy: Node) -> None:
        parent = self.nodes[copy.map_of]          # type: ignore[index]
        if copy.state not in TERMINAL:
            parent.open_copies += 1
        elif copy.state != "finished":
            parent.failed_copies += 1

    def add_copies(self, parent: Node, rows: list[TaskRow]) -> list[Node]:
        """The copies of an expanded mapped task (now ``running``); returns those to queue."""
        parent.state = "running"
        out = []
        for t in rows:
            if t.id in self.nodes:
                continue
            copy = self._node(t)
            self._count_copy(copy)
            if copy.state in ("waiting", "queued"):
                out.append(copy)
        return out

    def _satisfies(self, dep_id: int, node: Node) -> bool:
        """Whether dependency ``dep_id`` lets ``node`` run: it finished, or it was skipped by
        its condition and ``node`` only comes after it."""
        dep = self.nodes[dep_id]
        return dep.state == "finished" or (dep.condition_skipped and dep_id not in
                                           node.data_deps)

    # -- questions ------------------------------------------------------------------------

    def named(self, name: str) -> Node:
        """The task called ``name`` (a walk over the tasks: for tests and tools, not for the
        scheduler's paths, which go by id)."""
        return next(n for n in self.nodes.values() if n.name == name)

    def ready(self) -> list[Node]:
        """Waiting tasks whose dependencies are all satisfied."""
        return [n for n in self.nodes.values() if n.state == "waiting" and n.remaining == 0
                and n.map_of is None and not self._blocked(n)]

    def _blocked(self, node: Node) -> bool:
        return any(self.nodes[d].failed_like or (self.nodes[d].condition_skipped
                                                 and d in node.data_deps) for d in node.deps)

    def doomed(self) -> list[Node]:
        """Waiting tasks that can never run: a dependency failed, was skipped or killed."""
        return [n for n in self.nodes.values() if n.state == "waiting" and n.map_of is None
                and any(self.nodes[d].failed_like for d in n.deps)]

    def unmet(self) -> list[Node]:
        """Waiting tasks that use the result of a task its condition skipped."""
        return [n for n in self.nodes.values() if n.state == "waiting" and n.map_of is None
                and not any(self.nodes[d].failed_like for d in n.deps)
                and any(self.nodes[d].condition_skipped for d in n.data_deps)]

    def in_flight(self) -> list[Node]:
        """Tasks a worker holds or may be about to (a mapped task's own row waits for its
        copies, and a nested graph's task for its graph: neither is in flight)."""
        return [n for n in self.nodes.values() if n.state in ("queued", "running")
                and not (n.mapped and n.state == "running") and n.child is None]

    def stall_due(self, now: float, after: float) -> bool:
        """Time to ask the database about this graph's in-flight tasks? Backs off (x2, up to
        x16) while the checks find nothing, so long tasks cost next to nothing."""
        return now - self.last_activity >= after * (1 << min(self.quiet_checks, 4))

    @property
    def done(self) -> bool:
        return self.open == 0

    def final_state(self) -> str:
        return "finished" if self.bad == 0 else "failed"

    def failed_names(self) -> list[str]:
        return [n.name for n in self.nodes.values() if n.state in ("failed", "killed")
                and n.map_of is None]

    def output_refs(self) -> list[str]:
        """Names of the tasks whose results the graph's outputs use."""
        return sorted({r.head for r in iter_refs(self.outputs) if r.head not in NOT_TASKS})

    def condition_skipped_names(self) -> set[str]:
        return {n.name for n in self.nodes.values() if n.condition_skipped}

    # -- transitions ----------------------------------------------------------------------

    def mark(self, node: Node, state: str, now: float, condition_false: bool = False) \
            -> list[Node]:
        """Record a new state; return the dependents that became ready. A copy's end counts
        down its mapped task (the scheduler closes that one when ``open_copies`` is 0)."""
        self.last_activity = now
        self.quiet_checks = 0
        was_terminal = node.state in TERMINAL
        node.state = state
        node.condition_false = condition_false
        if state not in TERMINAL or was_terminal:
            return []
        self.open -= 1
        if node.map_of is not None:
            parent = self.nodes[node.map_of]
            parent.open_copies -= 1
            if state != "finished":
                parent.failed_copies += 1
                self.bad += 1
            return []
        if node.failed_like:
            self.bad += 1
            return []
        ready = []
        for dep_id in node.dependents:
            dep = self.nodes[dep_id]
            if not self._satisfies(node.id, dep):
                continue                     # it uses a result that will never come
            dep.remaining -= 1
            if dep.remaining == 0 and dep.state == "waiting" and not self._blocked(dep):
                ready.append(dep)
        return ready

    def skip_closure(self, start: Iterable[Node]) -> list[Node]:
        """Every waiting task downstream of ``start`` (which failed): to be skipped."""
        out: list[Node] = []
        seen: set[int] = set()
        stack = [d for n in start for d in n.dependents]
        while stack:
            nid = stack.pop()
            if nid in seen:
                continue
            seen.add(nid)
            node = self.nodes[nid]
            if node.state == "waiting":
                out.append(node)
                stack.extend(node.dependents)
        return out

    def condition_closure(self, start: Iterable[Node]) -> list[Node]:
        """The waiting tasks that use a result of ``start`` (condition-skipped), and those that
        use theirs: skipped the same way (the ones that only come ``after`` are not)."""
        out: list[Node] = []
        seen: set[int] = set()
        stack = [(n.id, d) for n in start for d in n.dependents]
        while stack:
            source, nid = stack.pop()
            node = self.nodes[nid]
            if nid in seen or source not in node.data_deps or node.state != "waiting":
                continue
            seen.add(nid)
            out.append(node)
            stack.extend((nid, d) for d in node.dependents)
        return out


def spec_of(node: Node) -> dict[str, Any]:
    return json.loads(node.spec)


def is_truthy(value: Any) -> bool:
    """JSON truthiness: ``false``, ``null``, ``0``, ``""``, ``[]``, ``{}`` are false."""
    return bool(value)
