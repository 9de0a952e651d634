"""What a scheduler keeps per active graph: only what dependency resolution needs.

Pure logic, no I/O: the scheduler feeds it transitions and acts on what it returns. A task
completion touches only that task's dependents (cost proportional to the edges touched).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from wgops.store.loading import GraphRow
from wgops.store.models import TASK_TERMINAL
from wgops.store.refs import iter_refs

TERMINAL = frozenset(TASK_TERMINAL)


class Node:
    """One task: its place in the graph and its last known state."""

    __slots__ = ("id", "name", "kind", "spec", "pool", "state", "deps", "dependents",
                 "remaining", "attempt", "child")

    def __init__(self, id: int, name: str, kind: str, spec: str, pool: str, state: str,
                 attempt: int):
        self.id = id
        self.name = name
        self.kind = kind
        self.spec = spec                  # the document entry, JSON text (parsed on dispatch)
        self.pool = pool
        self.state = state
        self.deps: tuple[int, ...] = ()
        self.dependents: list[int] = []
        self.remaining = 0                # dependencies not yet finished
        self.attempt = attempt            # attempts when last dispatched
        self.child: int | None = None     # nested graph id (graph tasks)


class GraphRun:
    """An active graph owned by this scheduler."""

    __slots__ = ("id", "epoch", "state", "priority", "parent_task", "parent", "root", "depth",
                 "inputs", "outputs", "nodes", "by_name", "open", "bad", "last_activity",
                 "quiet_checks")

    def __init__(self, row: GraphRow, now: float):
        self.id = row.id
        self.epoch = row.epoch
        self.state = row.state
        self.priority = row.priority
        self.parent_task = row.parent_task
        self.parent: int | None = None     # parent graph id, set by the scheduler
        self.root = row.root
        self.depth = row.depth
        self.inputs = row.inputs
        self.outputs = row.document.get("outputs") or {}
        self.nodes: dict[int, Node] = {}
        self.by_name: dict[str, int] = {}
        self.last_activity = now
        self.quiet_checks = 0              # stall checks that found nothing new (back-off)
        for t in row.tasks:
            node = Node(t.id, t.name, t.kind, t.spec, t.pool, t.state, t.attempts)
            node.child = row.child_of.get(t.id)
            self.nodes[t.id] = node
            self.by_name[t.name] = t.id
        for t in row.tasks:
            node = self.nodes[t.id]
            node.deps = tuple(self.by_name[d] for d in t.deps)
            for dep in node.deps:
                self.nodes[dep].dependents.append(node.id)
            node.remaining = sum(1 for d in node.deps if self.nodes[d].state != "finished")
        self.open = sum(1 for n in self.nodes.values() if n.state not in TERMINAL)
        self.bad = sum(1 for n in self.nodes.values() if n.state in TERMINAL
                       and n.state != "finished")

    # -- questions ------------------------------------------------------------------------

    def ready(self) -> list[Node]:
        """Waiting tasks whose dependencies all finished."""
        return [n for n in self.nodes.values() if n.state == "waiting" and n.remaining == 0
                and not self._blocked(n)]

    def _blocked(self, node: Node) -> bool:
        return any(self.nodes[d].state in TERMINAL and self.nodes[d].state != "finished"
                   for d in node.deps)

    def doomed(self) -> list[Node]:
        """Waiting tasks that can never run (a dependency failed, was skipped or killed)."""
        return [n for n in self.nodes.values() if n.state == "waiting" and self._blocked(n)]

    def in_flight(self) -> list[Node]:
        return [n for n in self.nodes.values() if n.state in ("queued", "running")]

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
        return [n.name for n in self.nodes.values() if n.state in ("failed", "killed")]

    def output_refs(self) -> list[str]:
        """Names of the tasks whose results the graph's outputs use."""
        return sorted({r.head for r in iter_refs(self.outputs) if r.head != "inputs"})

    # -- transitions ----------------------------------------------------------------------

    def mark(self, node: Node, state: str, now: float) -> list[Node]:
        """Record a new state; return the dependents that became ready."""
        self.last_activity = now
        self.quiet_checks = 0
        was_terminal = node.state in TERMINAL
        node.state = state
        if state not in TERMINAL or was_terminal:
            return []
        self.open -= 1
        if state != "finished":
            self.bad += 1
            return []
        ready = []
        for dep_id in node.dependents:
            dep = self.nodes[dep_id]
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


def spec_of(node: Node) -> dict[str, Any]:
    return json.loads(node.spec)
