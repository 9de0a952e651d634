"""The scheduler daemon: claims graphs, resolves dependencies, dispatches ready tasks, drives
nested graphs, collects outputs. Never runs user code.

A loop object (``initialize`` / ``tick(now)`` / ``shutdown``) with an injectable clock. What
it holds per graph is :class:`~wgops.daemon.graphrun.GraphRun` (pure dependency logic); which
ready task goes out next is :class:`~wgops.daemon.dispatch.DispatchQueue` (pure); the periodic
liveness checks (adoption, lost messages, orphans) are :class:`~wgops.daemon.watchdog.Watchdog`.
Every write goes through the fenced transitions of :mod:`wgops.store.scheduling`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from typing import Any

from aio_pika.abc import AbstractIncomingMessage

from wgops.daemon.broker import Broker, event, refuse
from wgops.daemon.dispatch import DispatchQueue, Item
from wgops.daemon.graphrun import TERMINAL, GraphRun, Node, spec_of
from wgops.daemon.protocol import (
    SCHEDULER_OPS,
    Control,
    Event,
    LaunchGraph,
    Reply,
    RunTask,
    TaskDone,
    TasksDone,
    check_control,
)
from wgops.daemon.watchdog import Watchdog
from wgops.store import liveness, loading, scheduling
from wgops.store.config import Settings
from wgops.store.db import AsyncStore, Store
from wgops.store.errors import ProtocolError
from wgops.store.migrations import migrate
from wgops.store.models import dumps
from wgops.store.refs import MissingValue, substitute, upstream
from wgops.store.shell import compile_command

logger = logging.getLogger(__name__)

BATCH = 500                # ready tasks taken per dispatch round


class SchedulerDaemon(Watchdog):
    def __init__(self, settings: Settings, sid: str, clock: Callable[[], float] = time.time):
        self.settings = settings
        self.id = sid
        self.clock = clock
        self.store = Store(settings.db_url)
        self.db = AsyncStore(self.store)
        self.broker = Broker(settings, f"wgops-scheduler-{sid}")
        self.names = self.broker.names
        self.runs: dict[int, GraphRun] = {}
        self.queue = DispatchQueue()
        self._wake_at: float | None = None                   # the retry timer set, if any
        self.caps: dict[str, int | None] = {}
        self.served: set[str] = set()
        self._flush_scheduled = False
        self._flush_lock = asyncio.Lock()
        self._declared: set[str] = set()
        self._consumers: list[tuple[Any, str]] = []
        self.stopping = False
        self._start_watchdog()

    # -- lifecycle --------------------------------------------------------------------------

    async def initialize(self) -> None:
        self.db.start()
        await self.db.write(lambda: None)
        await self.db.read(migrate, self.store)
        await self.broker.connect_retrying()
        for name in (self.names.graphs, self.names.dead):
            await self.broker.declare(name)
        now = self.clock()
        await self.db.write(liveness.heartbeat_scheduler, self.id, os.getpid(), 0, now)
        await self._refresh_pools(now)
        inbox_channel = await self.broker.new_channel(prefetch=1000)
        inbox = await self.broker.declare(self.names.scheduler(self.id), inbox_channel)
        await inbox.bind(self.names.events, routing_key="pool.changed")
        await inbox.bind(self.names.events, routing_key="daemon.started")
        self._consumers.append((inbox, await inbox.consume(self._on_inbox)))
        graphs_channel = await self.broker.new_channel(prefetch=20)
        graphs = await self.broker.declare(self.names.graphs, graphs_channel)
        self._consumers.append((graphs, await graphs.consume(self._on_launch)))
        await self.broker.emit(event("daemon.started", data={"kind": "scheduler", "id": self.id,
                                                             "pid": os.getpid()}))

    async def shutdown(self) -> None:
        """Stop consuming, hand every graph back to the graphs queue, close."""
        self.stopping = True
        for queue, tag in self._consumers:
            try:
                await queue.cancel(tag)
            except Exception:  # noqa: BLE001 - the channel may already be gone
                logger.debug("cancel consumer", exc_info=True)
        async with self._flush_lock:
            roots = await self.db.write(liveness.release, self.id, self.clock())
        for gid, priority in roots:
            try:
                await self.broker.publish(self.names.graphs, LaunchGraph(graph=gid),
                                          priority=priority)
            except Exception:  # noqa: BLE001 - an orphan sweep of another scheduler finds it
                logger.warning("could not relaunch graph %s", gid, exc_info=True)
        self.runs.clear()
        await self.broker.emit(event("daemon.stopped", data={"kind": "scheduler",
                                                             "id": self.id}))
        await self.broker.close()
        await self.db.stop()
        logger.info("scheduler %s handed back %d graphs", self.id, len(roots))

    async def tick(self, now: float | None = None) -> None:
        """Periodic work; called every ``settings.heartbeat`` seconds."""
        now = self.clock() if now is None else now
        roots = sum(1 for r in self.runs.values() if r.parent_task is None)
        await self.db.write(liveness.heartbeat_scheduler, self.id, os.getpid(), roots, now)
        await self.broker.emit(event("daemon.heartbeat", data={
            "kind": "scheduler", "id": self.id, "pid": os.getpid(), "graphs": len(self.runs)}))
        await self.watch(now)
        await self._refresh_pools(now)
        self._release_retries(now)
        self.queue.uncap()
        self.queue.resend()
        self._schedule_flush()

    async def _refresh_pools(self, now: float) -> None:
        before = self.served
        self.caps, self.served = await self.db.read(liveness.live_pools, now,
                                                    self.settings.stale_after)
        if self.served - before:
            await self.db.write(scheduling.clear_unserved, sorted(self.served - before))

    # -- messages -----------------------------------------------------------------------------

    async def _dead_letter(self, message: AbstractIncomingMessage, queue: str,
                           reason: str) -> None:
        await refuse(self.broker, self.db, queue, reason, message.body, self.id, self.clock())

    async def _on_launch(self, message: AbstractIncomingMessage) -> None:
        try:
            msg = self.broker.decode(message, (LaunchGraph,))
        except ProtocolError as exc:
            await self._dead_letter(message, self.names.graphs, str(exc))
            await message.ack()
            return
        if self.stopping:
            await message.nack(requeue=True)
            return
        try:
            assert isinstance(msg, LaunchGraph)
            await self._claim(msg.graph)
        except Exception:  # noqa: BLE001 - loop boundary: the graph stays unclaimed
            logger.exception("claiming graph from launch message")
            await message.nack(requeue=True)
            return
        await message.ack()

    async def _claim(self, graph_id: int) -> None:
        """Take an unowned graph (compare-and-set) and start driving it."""
        now = self.clock()
        rows = await self.db.write(loading.claim_and_load, graph_id, self.id, now)
        if rows is not None:
            await self._install(rows, now)

    async def _on_inbox(self, message: AbstractIncomingMessage) -> None:
        queue = self.names.scheduler(self.id)
        try:
            msg = self.broker.decode(message, (TaskDone, TasksDone, Control, Event, LaunchGraph))
            if isinstance(msg, Control):
                check_control(msg, SCHEDULER_OPS)
        except ProtocolError as exc:
            await self._dead_letter(message, queue, str(exc))
            await message.ack()
            return
        try:
            if isinstance(msg, TaskDone):
                await self._on_ends([msg])
            elif isinstance(msg, TasksDone):
                await self._on_ends(list(msg.done))   # type: ignore[attr-defined]
            elif isinstance(msg, Control):
                await self._on_control(msg, message)
            elif isinstance(msg, LaunchGraph) and self.stopping:
                await self.broker.publish(self.names.graphs, msg)   # to the others
            elif isinstance(msg, LaunchGraph):     # submitted to this scheduler by name
                await self._claim(msg.graph)       # (if this fails: the orphan sweep)
            elif isinstance(msg, Event) and msg.topic == "pool.changed":
                await self._refresh_pools(self.clock())
                self.queue.uncap()
                self._schedule_flush()
            elif isinstance(msg, Event) and msg.topic == "daemon.started":
                await self._refresh_pools(self.clock())   # a new worker may serve a new pool
        except Exception:  # noqa: BLE001 - loop boundary; the stall check recovers
            logger.exception("handling %s", type(msg).__name__)
        await message.ack()

    async def _on_control(self, msg: Control, message: AbstractIncomingMessage) -> None:
        now = self.clock()
        if msg.op in ("refresh", "adopt") and msg.graph is not None:
            await self._reload(msg.graph, now)
        elif msg.op == "drop" and msg.graph is not None:
            self._forget_tree(msg.graph)
        elif msg.op == "ping" and message.reply_to:
            await self.broker.publish(message.reply_to, Reply(ok=True, data={
                "id": self.id, "graphs": len(self.runs)}), persistent=False, mandatory=False)

    async def _on_ends(self, ends: list[TaskDone]) -> None:
        """Workers say tasks ended. A message is only a wake-up: what happened is read from
        the tasks' committed rows (a forged or stale message can change nothing)."""
        mine: list[tuple[GraphRun, Node]] = []
        for done in ends:
            run = self.runs.get(done.graph)
            if run is None:
                owner = await self.db.read(loading.current_owner, done.graph)
                if owner and owner != self.id:
                    await self.broker.publish(self.names.scheduler(owner), done, mandatory=False)
                continue
            node = run.nodes.get(done.task)
            if node is not None and node.state not in TERMINAL:
                mine.append((run, node))
        if not mine:
            return
        rows = await self.db.read(loading.task_states, [node.id for _, node in mine])
        now = self.clock()
        for run, node in mine:
            if run.id not in self.runs or node.id not in rows or node.state in TERMINAL:
                continue                      # settled meanwhile (a reload, a kill)
            state, attempts, not_before = rows[node.id]
            try:
                if state in TERMINAL:
                    await self._settle(run, node, state, now)
                elif state == "queued" and attempts > node.attempt:   # a retry is due
                    node.attempt, node.state = attempts, "queued"
                    self.queue.retry_at(not_before or now, run.id, node.id)
                elif state == "running":
                    node.state = "running"
            except Exception:  # noqa: BLE001 - the others go on; the stall check recovers
                logger.exception("handling the end of task %s", node.id)
        self._release_retries(now)
        self.queue.uncap()                    # tasks ended: their pools may have room
        self._schedule_flush()

    # -- graph life ---------------------------------------------------------------------------

    async def _load(self, root_id: int, now: float) -> None:
        """Load (or reload) a tree of graphs from the database and reconcile it."""
        await self._install(await self.db.read(loading.load_tree, root_id, self.id), now)

    async def _install(self, rows: list[Any], now: float) -> None:
        """Hold the graphs of a tree just read (parents first) and reconcile them."""
        graph_of_task: dict[int, int] = {}
        for row in rows:                      # parents come before their children
            run = GraphRun(row, now)
            if run.parent_task is not None:
                run.parent = graph_of_task.get(run.parent_task)
            for node in run.nodes.values():
                if node.kind == "graph":
                    graph_of_task[node.id] = run.id
            self.runs[row.id] = run
        for row in rows:
            run = self.runs.get(row.id)
            if run is not None:
                await self._reconcile(run, now)
        self._schedule_flush()

    async def _reload(self, graph_id: int, now: float) -> None:
        root = self.runs[graph_id].root if graph_id in self.runs else graph_id
        self._forget_tree(root)
        await self._load(root, now)

    def _forget_tree(self, graph_id: int) -> None:
        stack = [graph_id]
        while stack:
            run = self.runs.pop(stack.pop(), None)
            if run is not None:
                stack.extend(n.child for n in run.nodes.values() if n.child is not None)

    async def _reconcile(self, run: GraphRun, now: float) -> None:
        """Bring memory and the database together for one graph just loaded."""
        for node in list(run.nodes.values()):
            if node.kind == "graph" and node.state == "running":
                if node.child is None or node.child not in self.runs:
                    await self._settle_from_child(run, node, now)
            elif node.state == "queued":
                self._queue(run, node)
        doomed = run.doomed()
        if doomed:
            await self._skip(run, doomed, now)
        if run.done:
            await self._complete(run, now)
            return
        for node in run.ready():
            self._queue(run, node)

    async def _settle_from_child(self, run: GraphRun, node: Node, now: float) -> None:
        """A graph task whose child is not live here: finish it from the child's row."""
        if node.child is None:
            node.state = "waiting"          # crashed between spawning and recording: redo
            return
        state = await self.db.read(loading.child_state, node.child)
        if state is None or state[0] not in ("finished", "failed", "killed"):
            return
        await self._settle(run, node, "finished" if state[0] == "finished" else "failed", now)

    def _queue(self, run: GraphRun, node: Node) -> None:
        self.queue.push(run.priority, run.id, node.id)

    async def _settle(self, run: GraphRun, node: Node, state: str, now: float) -> None:
        """A task reached a terminal state: wake its dependents, skip the doomed, finish."""
        if state == "killed":
            await self._reload(run.root, now)
            return
        ready = run.mark(node, state, now)
        if state != "finished":
            doomed = run.skip_closure([node])
            if doomed:
                await self._skip(run, doomed, now)
        for dep in ready:
            self._queue(run, dep)
        if run.done:
            await self._complete(run, now)

    async def _skip(self, run: GraphRun, nodes: list[Node], now: float) -> None:
        failed = ", ".join(sorted({self.runs[run.id].nodes[d].name for n in nodes
                                   for d in n.deps if run.nodes[d].state != "finished"}))
        if not await self.db.write(scheduling.skip, run.id, self.id, run.epoch,
                                   [n.id for n in nodes], failed or "a dependency", now):
            self._forget_tree(run.root)
            return
        for node in nodes:
            run.mark(node, "skipped", now)
            await self.broker.emit(event("task.skipped", graph=run.id, task=node.id,
                                         name=node.name, state="skipped"))

    async def _complete(self, run: GraphRun, now: float) -> None:
        state = run.final_state()
        outputs = None
        error = None
        if state == "finished" and run.outputs:
            names = run.output_refs()
            values: dict[str, Any] = {"inputs": run.inputs}
            values.update(await self.db.read(loading.results, run.id, names))
            try:
                outputs = substitute(run.outputs, values)
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
            await self.broker.emit(event(f"task.{'finished' if state == 'finished' else 'failed'}",
                                         graph=parent.id, task=pnode.id, name=pnode.name))
            await self._settle(parent, pnode, "finished" if state == "finished" else "failed", now)

    # -- dispatch -----------------------------------------------------------------------------

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled and self.queue.has_ready:
            self._flush_scheduled = True
            asyncio.get_running_loop().create_task(self._flush())

    def _release_retries(self, now: float) -> None:
        """Queue the retries that are due; set a timer for the next one."""
        for gid, tid in self.queue.due(now):
            run = self.runs.get(gid)
            if run is not None and tid in run.nodes:
                self._queue(run, run.nodes[tid])
        when = self.queue.next_retry
        if when is not None and (self._wake_at is None or when < self._wake_at):
            self._wake_at = when
            asyncio.get_running_loop().call_later(max(0.0, when - now), self._retry_wake)
        self._schedule_flush()

    def _retry_wake(self) -> None:
        self._wake_at = None
        self._release_retries(self.clock())

    def _dispatchable(self, item: Item) -> bool:
        """Whether a queued item still names a task to dispatch: its graph is held here and
        not paused (a paused graph's ready tasks are found again when it plays: reload)."""
        run = self.runs.get(item[2])
        node = run.nodes.get(item[3]) if run else None
        return node is not None and node.state in ("waiting", "queued") and \
            run is not None and run.state != "paused"

    async def _flush(self) -> None:
        try:
            async with self._flush_lock:
                while self.queue.has_ready and not self.stopping:
                    batch: dict[int, list[tuple[Item, Node]]] = {}
                    for item in self.queue.take(BATCH, self._dispatchable):
                        batch.setdefault(item[2], []).append(
                            (item, self.runs[item[2]].nodes[item[3]]))
                    if any(node.pool not in self.served for items in batch.values()
                           for _, node in items):
                        # once per batch: a worker may have come up since the last tick
                        await self._refresh_pools(self.clock())
                    await asyncio.gather(*(self._dispatch(self.runs[gid], items)
                                           for gid, items in batch.items() if gid in self.runs))
        except Exception:  # noqa: BLE001 - loop boundary; the next tick flushes again
            logger.exception("dispatching ready tasks")
        finally:
            self._flush_scheduled = False
        if self.queue.has_ready and not self.stopping:
            self._schedule_flush()

    async def _dispatch(self, run: GraphRun, items: list[tuple[Item, Node]]) -> None:
        now = self.clock()
        specs = {node.id: spec_of(node) for _, node in items}
        needed = sorted({name for _, node in items for name in upstream(specs[node.id])})
        values: dict[str, Any] = {"inputs": run.inputs}
        if needed:
            values.update(await self.db.read(loading.results, run.id, needed))
        leaf: list[tuple[Item, Node, RunTask]] = []
        for item, node in items:
            spec = specs[node.id]
            try:
                target, args = arguments(node.kind, spec, values)
            except MissingValue as exc:
                await self._fail_here(run, node, "ReferenceError", str(exc), now)
                continue
            except Exception as exc:  # noqa: BLE001 - the task fails, its graph goes on
                await self._fail_here(run, node, type(exc).__name__, str(exc), now)
                continue
            if node.kind == "graph":
                await self._spawn(run, node, spec, args, now)
                continue
            leaf.append((item, node, RunTask(
                task=node.id, graph=run.id, name=node.name, attempt=node.attempt,
                kind=node.kind, target=target, args=args, timeout=spec.get("timeout"),
                retries=spec.get("retries", 0), retry_delay=spec.get("retry_delay", 0.0),
                pool=node.pool, owner=self.id)))
        if not leaf:
            return
        fresh = [(n.id, n.pool, dumps(m.args)) for _, n, m in leaf if n.state == "waiting"]
        owned, queued_ids, capped = await self.db.write(scheduling.dispatch, run.id, self.id,
                                                        run.epoch, fresh, now)
        if not owned:
            await self._reload(run.root, now)
            return
        queued = set(queued_ids)
        publish = []
        unserved: list[int] = []
        for item, node, msg in leaf:
            if node.id in capped:
                self.queue.cap(node.pool, item)
                continue
            if node.state == "waiting" and node.id not in queued:
                continue
            node.state = "queued"
            queue = self.names.tasks(node.pool)
            if queue not in self._declared:
                await self.broker.declare(queue)
                self._declared.add(queue)
            if node.pool not in self.served:
                unserved.append(node.id)
            publish.append((queue, msg, run.priority, None))
        if unserved:
            pools = sorted({run.nodes[t].pool for t in unserved})
            await self.db.write(scheduling.note_reason, unserved,
                                scheduling.UNSERVED + ", ".join(pools))
        try:
            await self.broker.publish_many(publish)
        except Exception:  # noqa: BLE001 - broker down: the rows say queued, publish again
            logger.warning("could not publish %d tasks of graph %s (broker unavailable?); "
                           "retrying on the next tick", len(publish), run.id, exc_info=True)
            self.queue.unsent(item for item, node, _ in leaf if node.id not in capped
                              and node.state == "queued")
            return
        run.last_activity = now
        for _, msg, _, _ in publish:
            await self.broker.emit(event("task.queued", graph=run.id, task=msg.task,
                                         name=msg.name, state="queued",
                                         data={"pool": msg.pool}))

    async def _fail_here(self, run: GraphRun, node: Node, kind: str, message: str,
                         now: float) -> None:
        error = {"type": kind, "message": message, "traceback": None}
        if await self.db.write(scheduling.fail_in_scheduler, run.id, self.id, run.epoch, node.id,
                               error, now):
            await self._settle(run, node, "failed", now)

    async def _spawn(self, run: GraphRun, node: Node, spec: dict[str, Any],
                     inputs: dict[str, Any], now: float) -> None:
        """Start a nested graph, driven here; it holds no worker slot."""
        row = await self.db.write(scheduling.spawn_child, run.id, self.id, run.epoch, node.id,
                                  spec["graph"], inputs, run.priority, run.root, run.depth, now)
        if row is None:
            await self._reload(run.root, now)
            return
        node.state = "running"
        node.child = row.id
        await self.broker.emit(event("task.running", graph=run.id, task=node.id,
                                     name=node.name, state="running",
                                     data={"child": row.id}))
        child = GraphRun(row, now)
        child.parent = run.id
        self.runs[child.id] = child
        await self.broker.emit(event("graph.running", graph=child.id, state="running",
                                     data={"parent": run.id}))
        await self._reconcile(child, now)


def arguments(kind: str, spec: dict[str, Any], values: dict[str, Any]) -> tuple[str, dict]:
    """What a task is dispatched with, its references resolved: (target, arguments). A shell
    task's values travel as environment variables (:mod:`wgops.store.shell`), never in its
    command's text."""
    if kind == "shell":
        command = compile_command(spec["shell"])
        return command.template, {"env": command.environment(values)}
    return spec.get("run", ""), substitute(spec.get("args") or {}, values)
