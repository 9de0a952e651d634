"""The scheduler daemon: claims graphs, resolves dependencies, dispatches ready tasks, drives
nested, mapped and built graphs, collects outputs. Never runs user code.

A loop object (``initialize`` / ``tick(now)`` / ``shutdown``) with an injectable clock; this
module holds its life cycle and its messages. Its parts, each a module: a graph's life
(:class:`~wgops.daemon.graphlife.GraphLife`), dispatching (:class:`~wgops.daemon.dispatcher.
Dispatcher`), the periodic liveness checks (:class:`~wgops.daemon.watchdog.Watchdog`); what it
holds per graph is :class:`~wgops.daemon.graphrun.GraphRun` and which ready task goes next is
:class:`~wgops.daemon.dispatch.DispatchQueue` (both pure). Every write is a fenced transition.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from typing import Any

from wgops.daemon import delivery
from wgops.daemon.broker import Broker, event, refuse
from wgops.daemon.collector import Collector
from wgops.daemon.delivery import Incoming
from wgops.daemon.dispatch import DispatchQueue
from wgops.daemon.dispatcher import Dispatcher
from wgops.daemon.graphlife import GraphLife
from wgops.daemon.graphrun import TERMINAL, GraphRun, Node
from wgops.daemon.interning import Interner
from wgops.daemon.protocol import (
    SCHEDULER_OPS,
    Control,
    Event,
    LaunchGraph,
    Reply,
    TaskDone,
    TasksDone,
    check_control,
)
from wgops.daemon.retention import Retention
from wgops.daemon.watchdog import Watchdog
from wgops.store import liveness, loading, scheduling
from wgops.store.config import Settings
from wgops.store.db import AsyncStore, Store
from wgops.store.errors import ProtocolError
from wgops.store.migrations import migrate

logger = logging.getLogger(__name__)

class SchedulerDaemon(Watchdog, Dispatcher, GraphLife):
    def __init__(self, settings: Settings, sid: str, clock: Callable[[], float] = time.time):
        self.settings = settings
        self.id = sid
        self.clock = clock
        self.store = Store(settings.db_url)
        self.db = AsyncStore(self.store)
        self.broker = Broker(settings, f"wgops-scheduler-{sid}")
        self.names = self.broker.names
        self.runs: dict[int, GraphRun] = {}
        self.strings = Interner()                            # one copy of equal row texts
        self.queue = DispatchQueue()
        self._wake_at: float | None = None                   # the retry timer set, if any
        self.caps: dict[str, int | None] = {}
        self.served: set[str] = set()
        self._flush_scheduled = False
        self._flush_lock = asyncio.Lock()
        self._declared: set[str] = set()
        self._consumers: list[tuple[Any, str]] = []
        self.stopping = False
        self.collector = Collector()                         # full collections: from tick
        self._start_watchdog()
        self.retention = None if settings.retention is None else Retention(
            self.store, sid, settings.retention, settings.heartbeat, clock)

    # -- lifecycle --------------------------------------------------------------------------

    async def initialize(self) -> None:
        self.collector.install()
        self.db.start()
        await self.db.write(lambda: None)
        await self.db.read(migrate, self.store)
        await self.broker.connect_retrying()
        for name in (self.names.graphs, self.names.dead):
            await self.broker.declare(name)
        # its inbox exists before it is listed (its heartbeat): what is sent to a listed
        # scheduler waits for it, never goes unrouted
        inbox_channel = await self.broker.new_channel(prefetch=1000)
        inbox = await self.broker.declare(self.names.scheduler(self.id), inbox_channel)
        now = self.clock()
        await self.db.write(liveness.heartbeat_scheduler, self.id, os.getpid(), 0)
        await self._refresh_pools(now)
        await inbox.bind(self.names.events, routing_key="pool.changed")
        await inbox.bind(self.names.events, routing_key="daemon.started")
        self._consumers.append((inbox, await delivery.consume(inbox, self._on_inbox)))
        graphs_channel = await self.broker.new_channel(prefetch=20)
        graphs = await self.broker.declare(self.names.graphs, graphs_channel)
        self._consumers.append((graphs, await delivery.consume(graphs, self._on_launch)))
        await self.broker.emit(event("daemon.started", data={"kind": "scheduler", "id": self.id,
                                                             "pid": os.getpid()}))
        if self.retention is not None:
            self.retention.start()

    async def shutdown(self) -> None:
        """Stop consuming, hand every graph back to the graphs queue, close."""
        self.stopping = True
        if self.retention is not None:
            await self.retention.stop()
        for queue, tag in self._consumers:
            try:
                await queue.cancel(tag)
            except Exception:  # noqa: BLE001 - the channel may already be gone
                logger.debug("cancel consumer", exc_info=True)
        async with self._flush_lock:
            roots = await self.db.write(liveness.release, self.id)
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
        await self.db.write(liveness.heartbeat_scheduler, self.id, os.getpid(), roots)
        await self.broker.emit(event("daemon.heartbeat", data={
            "kind": "scheduler", "id": self.id, "pid": os.getpid(), "graphs": len(self.runs)}))
        await self.watch(now)
        await self._refresh_pools(now)
        self._release_retries(now)
        self.queue.uncap()
        self.queue.resend()
        self._schedule_flush()
        self.collector.tick()

    async def _refresh_pools(self, now: float) -> None:
        before = self.served
        self.caps, self.served = await self.db.read(liveness.live_pools,
                                                    self.settings.stale_after)
        if self.served - before:
            await self.db.write(scheduling.clear_unserved, sorted(self.served - before))

    # -- messages -----------------------------------------------------------------------------

    async def _dead_letter(self, message: Incoming, queue: str,
                           reason: str) -> None:
        await refuse(self.broker, self.db, queue, reason, message.body, self.id, self.clock())

    async def _on_launch(self, message: Incoming) -> None:
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

    async def _on_inbox(self, message: Incoming) -> None:
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

    async def _on_control(self, msg: Control, message: Incoming) -> None:
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
                    await self.broker.publish(self.names.scheduler(owner), done,
                                              persistent=False, mandatory=False)
                continue
            node = run.nodes.get(done.task)
            if node is not None and node.state not in TERMINAL:
                mine.append((run, node))
        if not mine:
            return
        rows = await self.db.quick_read(loading.task_states, [node.id for _, node in mine])
        now = self.clock()
        for run, node in mine:
            if run.id not in self.runs or node.id not in rows or node.state in TERMINAL:
                continue                      # settled meanwhile (a reload, a kill)
            try:
                await self._apply_row(run, node, *rows[node.id], now)
            except Exception:  # noqa: BLE001 - the others go on; the stall check recovers
                logger.exception("handling the end of task %s", node.id)
        self._release_retries(now)
        self.queue.uncap()                    # tasks ended: their pools may have room
        self._schedule_flush()
