"""A graph's life in its scheduler: loaded from the database and reconciled, its tasks settled
as they end, its failures and false conditions carried downstream, its nested and built
graphs spawned and followed, and its completion.

:class:`GraphLife` is a part of :class:`~wgops.daemon.scheduler.SchedulerDaemon` (a mixin):
what the scheduler holds is :class:`~wgops.daemon.graphrun.GraphRun` (pure), every write is a
fenced transition of :mod:`wgops.store.scheduling` or :mod:`wgops.store.shapes`. Whatever a
message said, what the database says decides (:meth:`GraphLife._apply_row`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from wgops.daemon.broker import event
from wgops.daemon.graphrun import TERMINAL, GraphRun, Node
from wgops.store import loading, scheduling, shapes
from wgops.store.document import Reading, normalise
from wgops.store.errors import DocumentError
from wgops.store.loading import GraphRow
from wgops.store.refs import MissingValue, substitute

if TYPE_CHECKING:
    from wgops.daemon.broker import Broker
    from wgops.daemon.dispatch import DispatchQueue
    from wgops.daemon.interning import Interner
    from wgops.store.config import Settings
    from wgops.store.db import AsyncStore

logger = logging.getLogger(__name__)


class GraphLife:
    id: str
    settings: Settings
    db: AsyncStore
    broker: Broker
    runs: dict[int, GraphRun]
    strings: Interner
    queue: DispatchQueue

    if TYPE_CHECKING:  # provided by the dispatcher
        def _schedule_flush(self) -> None: ...

        async def _fail_here(self, run: GraphRun, node: Node, kind: str, message: str,
                             now: float) -> None: ...

    # -- holding graphs -------------------------------------------------------------------

    async def _load(self, root_id: int, now: float) -> None:
        """Load (or reload) a tree of graphs from the database and reconcile it."""
        await self._install(await self.db.read(loading.load_tree, root_id, self.id), now)

    async def _install(self, rows: list[GraphRow], now: float) -> None:
        """Hold the graphs of a tree just read (parents first) and reconcile them."""
        graph_of_task: dict[int, int] = {}
        for row in rows:                      # parents come before their children
            run = GraphRun(row, now, self.strings)
            if run.parent_task is not None:
                run.parent = graph_of_task.get(run.parent_task)
            for node in run.nodes.values():
                if node.kind in ("graph", "build"):
                    graph_of_task[node.id] = run.id
            self.runs[row.id] = run
        for row in rows:
            run = self.runs.get(row.id)
            if run is not None:
                await self._reconcile(run, now)
        self._schedule_flush()

    async def _reload(self, graph_id: int, now: float) -> None:
        root = self.runs[graph_id].root if graph_id in self.runs else graph_id
        held = root in self.runs
        self._forget_tree(root)
        await self._load(root, now)
        if held and root not in self.runs:
            logger.warning("graph %s is no longer ours (epoch fence: another scheduler holds "
                           "it, or it ended): stopped driving it", root)

    def _forget_tree(self, graph_id: int) -> None:
        stack = [graph_id]
        while stack:
            run = self.runs.pop(stack.pop(), None)
            if run is not None:
                stack.extend(n.child for n in run.nodes.values() if n.child is not None)

    def _queue(self, run: GraphRun, node: Node) -> None:
        self.queue.push(run.priority, run.id, node.id)

    async def _reconcile(self, run: GraphRun, now: float) -> None:
        """Bring memory and the database together for one graph just loaded."""
        for node in list(run.nodes.values()):
            if node.state == "running" and node.kind in ("graph", "build") and (
                    node.child is None or node.child not in self.runs):
                await self._settle_from_child(run, node, now)
            elif node.mapped and node.state == "running" and node.open_copies == 0:
                await self._close_map(run, node, now)
            elif node.state == "queued" or (node.state == "waiting" and
                                            node.map_of is not None):
                self._queue(run, node)
        doomed = run.doomed()
        if doomed:
            await self._skip(run, doomed, now)
        unmet = run.unmet()
        if unmet:
            await self._skip_condition(run, unmet, now)
        if run.id not in self.runs:
            return
        if run.done:
            await self._complete(run, now)
            return
        for node in run.ready():
            self._queue(run, node)

    async def _settle_from_child(self, run: GraphRun, node: Node, now: float) -> None:
        """A graph or build task whose graph is not live here: finish it from the graph's
        row; a build task not yet spawned: spawn it once its builder committed a document."""
        if node.child is None:
            if node.kind == "build":
                await self._maybe_built(run, node, now)
            else:
                node.state = "waiting"      # crashed between spawning and recording: redo
            return
        state = await self.db.read(loading.child_state, node.child)
        if state is None or state[0] not in ("finished", "failed", "killed"):
            return
        await self._settle(run, node, "finished" if state[0] == "finished" else "failed", now)

    # -- what the database says ------------------------------------------------------------

    async def _apply_row(self, run: GraphRun, node: Node, state: str, attempts: int,
                         not_before: float | None, now: float) -> None:
        """A task's committed row, read after a wake-up (a worker's report, a stall check)."""
        if state in TERMINAL:
            await self._settle(run, node, state, now)
        elif state == "queued" and attempts > node.attempt:       # a retry is due
            node.attempt, node.state = attempts, "queued"
            self.queue.retry_at(not_before or now, run.id, node.id)
        elif state == "queued" and node.state == "running":
            node.state = "queued"
        elif state == "running":
            node.state = "running"
            if node.kind == "build" and node.child is None:
                await self._maybe_built(run, node, now)

    # -- tasks ending -----------------------------------------------------------------------

    async def _settle(self, run: GraphRun, node: Node, state: str, now: float) -> None:
        """A task reached a terminal state: wake its dependents, skip the doomed, close its
        mapped task when it was the last copy, finish the graph."""
        if state == "killed":
            await self._reload(run.root, now)
            return
        ready = run.mark(node, state, now)
        if node.map_of is not None:
            parent = run.nodes[node.map_of]
            if parent.open_copies == 0 and parent.state == "running":
                await self._close_map(run, parent, now)
            return
        if node.failed_like:
            doomed = run.skip_closure([node])
            if doomed:
                await self._skip(run, doomed, now)
        for dep in ready:
            self._queue(run, dep)
        if run.done and run.id in self.runs:
            await self._complete(run, now)

    async def _skip(self, run: GraphRun, nodes: list[Node], now: float) -> None:
        failed = ", ".join(sorted({run.nodes[d].name for n in nodes for d in n.deps
                                   if run.nodes[d].failed_like}))
        if not await self.db.write(scheduling.skip, run.id, self.id, run.epoch,
                                   [n.id for n in nodes], failed or "a dependency", now):
            self._forget_tree(run.root)
            return
        for node in nodes:
            run.mark(node, "skipped", now)
            await self.broker.emit(event("task.skipped", graph=run.id, task=node.id,
                                         name=node.name, state="skipped"))

    async def _skip_condition(self, run: GraphRun, nodes: list[Node], now: float) -> None:
        """Skip tasks whose condition is false, and those that use their results; the ones
        that only come after them become ready."""
        while nodes:
            if not await self.db.write(shapes.skip_condition, run.id, self.id, run.epoch,
                                       [n.id for n in nodes], now):
                self._forget_tree(run.root)
                return
            for node in nodes:
                for dep in run.mark(node, "skipped", now, condition_false=True):
                    self._queue(run, dep)
                await self.broker.emit(event("task.skipped", graph=run.id, task=node.id,
                                             name=node.name, state="skipped",
                                             data={"reason": "condition false"}))
            nodes = run.condition_closure(nodes)
        if run.done:
            await self._complete(run, now)

    async def _close_map(self, run: GraphRun, node: Node, now: float) -> None:
        state = await self.db.write(shapes.close_map, run.id, self.id, run.epoch, node.id, now)
        if state is None:               # not ours, or a copy is open after all
            await self._reload(run.root, now)
            return
        await self.broker.emit(event(f"task.{state}", graph=run.id, task=node.id,
                                     name=node.name, state=state))
        await self._settle(run, node, state, now)

    async def _complete(self, run: GraphRun, now: float) -> None:
        state = run.final_state()
        outputs = None
        error = None
        if state == "finished" and run.outputs:
            names = run.output_refs()
            values: dict[str, Any] = {"inputs": run.inputs}
            values.update(await self.db.read(loading.results, run.id, names))
            try:
                outputs = substitute(run.outputs, values, run.condition_skipped_names())
            except MissingValue as exc:
                state, error = "failed", {"type": "OutputError", "message": str(exc),
                                          "traceback": None}
        elif state == "finished":
            outputs = {}
        if state == "failed" and error is None:
            error = {"type": "GraphFailed", "message": "failed tasks: "
                     + (", ".join(run.failed_names()) or "none"), "traceback": None}
        ok = await self.db.write(scheduling.complete_graph, run.id, self.id, run.epoch, state,
                                 outputs, error, now)
        self.runs.pop(run.id, None)
        if not ok:
            # not ours any more, or the database says a task is still open (memory was
            # wrong): either way what the database holds decides
            logger.info("graph %s not completed (lost, or a task is open): reloading", run.id)
            await self._reload(run.root, now)
            return
        await self.broker.emit(event(f"graph.{state}", graph=run.id, state=state,
                                     data={"parent": run.parent}))
        parent = self.runs.get(run.parent) if run.parent is not None else None
        if parent is not None and run.parent_task in parent.nodes:
            pnode = parent.nodes[run.parent_task]
            ended = "finished" if state == "finished" else "failed"
            await self.broker.emit(event(f"task.{ended}", graph=parent.id, task=pnode.id,
                                         name=pnode.name))
            await self._settle(parent, pnode, ended, now)

    # -- nested and built graphs ------------------------------------------------------------

    async def _spawn(self, run: GraphRun, node: Node, spec: dict[str, Any],
                     inputs: dict[str, Any], now: float) -> None:
        """Start a nested graph, driven here; it holds no worker slot."""
        row = await self.db.write(scheduling.spawn_child, run.id, self.id, run.epoch, node.id,
                                  spec["graph"], inputs, run.priority, run.root, run.depth, now)
        await self._follow(run, node, row, now)

    async def _maybe_built(self, run: GraphRun, node: Node, now: float) -> None:
        """A build task whose builder committed its document: validate it (the scheduler's own
        code, never the user's) and spawn it as the task's nested graph."""
        doc = await self.db.read(shapes.built_document, node.id)
        if doc is None or node.child is not None:
            return                          # its builder is still running on a worker
        if run.depth + 1 > self.settings.max_depth:
            await self._fail_here(run, node, "DepthLimit", f"graphs built more than "
                                  f"max_depth ({self.settings.max_depth}) levels deep", now)
            return
        try:
            normal = await asyncio.to_thread(
                normalise, doc, f"the graph built by {node.name}", None, None, None, (),
                Reading(self.settings.max_document_bytes))
        except (DocumentError, ValueError) as exc:
            await self._fail_here(run, node, "InvalidDocument", str(exc), now)
            return
        row = await self.db.write(shapes.spawn_built, run.id, self.id, run.epoch, node.id,
                                  normal, run.priority, run.root, run.depth, now)
        await self._follow(run, node, row, now)

    async def _follow(self, run: GraphRun, node: Node, row: GraphRow | None, now: float) -> None:
        if row is None:
            await self._reload(run.root, now)
            return
        node.state = "running"
        node.child = row.id
        await self.broker.emit(event("task.running", graph=run.id, task=node.id,
                                     name=node.name, state="running",
                                     data={"child": row.id}))
        child = GraphRun(row, now, self.strings)
        child.parent = run.id
        self.runs[child.id] = child
        await self.broker.emit(event("graph.running", graph=child.id, state="running",
                                     data={"parent": run.id}))
        await self._reconcile(child, now)
