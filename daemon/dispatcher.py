"""Dispatching ready tasks: their references resolved from committed results, conditions
decided, mapped tasks expanded into copies, leaf tasks queued (within pool caps) and published.

:class:`Dispatcher` is a part of :class:`~wgops.daemon.scheduler.SchedulerDaemon` (a mixin).
Which ready task goes next is :class:`~wgops.daemon.dispatch.DispatchQueue` (pure); a flush
takes batches from it; the scheduler never runs user code — a ``when`` or a ``map`` is decided
on committed JSON values.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from wgops.daemon.broker import event
from wgops.daemon.dispatch import Item
from wgops.daemon.graphrun import GraphRun, Node, is_truthy, spec_of
from wgops.daemon.protocol import RunTask
from wgops.store import loading, scheduling, shapes
from wgops.store.models import dumps
from wgops.store.refs import MissingValue, substitute, upstream
from wgops.store.shell import compile_command

if TYPE_CHECKING:
    from wgops.daemon.broker import Broker
    from wgops.daemon.dispatch import DispatchQueue
    from wgops.daemon.protocol import Names
    from wgops.store.config import Settings
    from wgops.store.db import AsyncStore

logger = logging.getLogger(__name__)

BATCH = 500                # ready tasks taken per dispatch round
QUICK_DISPATCH = 8         # a dispatch of at most this many tasks may run on the loop (SQLite)
JSON_TYPES = {dict: "mapping", str: "string", int: "number", float: "number", bool: "boolean",
              type(None): "null"}


class Dispatcher:
    id: str
    settings: Settings
    db: AsyncStore
    broker: Broker
    names: Names
    runs: dict[int, GraphRun]
    queue: DispatchQueue
    served: set[str]
    stopping: bool
    _flush_scheduled: bool
    _flush_lock: asyncio.Lock
    _declared: set[str]
    _wake_at: float | None
    clock: Callable[[], float]

    if TYPE_CHECKING:  # the graph's life (GraphLife) and the pools (the scheduler)
        async def _refresh_pools(self, now: float) -> None: ...

        async def _reload(self, graph_id: int, now: float) -> None: ...

        def _queue(self, run: GraphRun, node: Node) -> None: ...

        async def _settle(self, run: GraphRun, node: Node, state: str, now: float) -> None: ...

        async def _skip_condition(self, run: GraphRun, nodes: list[Node],
                                  now: float) -> None: ...

        async def _close_map(self, run: GraphRun, node: Node, now: float) -> None: ...

        async def _spawn(self, run: GraphRun, node: Node, spec: dict[str, Any],
                         inputs: dict[str, Any], now: float) -> None: ...

    # -- the flush ------------------------------------------------------------------------

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

    # -- one graph's batch ----------------------------------------------------------------

    async def _dispatch(self, run: GraphRun, items: list[tuple[Item, Node]]) -> None:
        now = self.clock()
        specs = _deciding_specs(run, [node for _, node in items])
        needed = sorted({name for spec in specs.values() for name in upstream(spec)})
        values: dict[str, Any] = {"inputs": run.inputs}
        if needed:
            values.update(await self.db.read(loading.results, run.id, needed))
        leaf: list[tuple[Item, Node, RunTask]] = []
        seen: set[int] = set()
        for item, node in items:
            if node.id in seen or node.state not in ("waiting", "queued") or (
                    node.mapped and node.state != "waiting"):
                continue                      # queued twice, or moved on while we awaited
            seen.add(node.id)
            spec = specs[node.id]
            try:
                if node.map_of is None and node.state == "waiting":
                    if "when" in spec and not is_truthy(substitute(spec["when"], values)):
                        await self._skip_condition(run, [node], now)
                        continue
                    if node.mapped:
                        await self._expand(run, node, spec, values, now)
                        continue
                local = values if node.map_of is None else {**values, **_element(node)}
                if node.kind == "graph":
                    await self._spawn(run, node, spec, substitute(spec.get("args") or {},
                                                                   local), now)
                    continue
                target, args = arguments(node.kind, spec, local)
            except MissingValue as exc:
                await self._fail_here(run, node, "ReferenceError", str(exc), now)
                continue
            except Exception as exc:  # noqa: BLE001 - the task fails, its graph goes on
                await self._fail_here(run, node, type(exc).__name__, str(exc), now)
                continue
            leaf.append((item, node, RunTask(
                task=node.id, graph=run.id, name=node.name, attempt=node.attempt,
                kind=node.kind, target=target, args=args, timeout=spec.get("timeout"),
                retries=spec.get("retries", 0), retry_delay=spec.get("retry_delay", 0.0),
                pool=node.pool, owner=self.id)))
        if leaf:
            await self._queue_and_publish(run, leaf, now)

    async def _queue_and_publish(self, run: GraphRun, leaf: list[tuple[Item, Node, RunTask]],
                                 now: float) -> None:
        fresh = [(n.id, n.pool, dumps(m.args)) for _, n, m in leaf if n.state == "waiting"]
        write = self.db.quick_write if len(fresh) <= QUICK_DISPATCH else self.db.write
        owned, queued_ids, capped = await write(scheduling.dispatch, run.id, self.id, run.epoch,
                                                fresh, now)
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

    async def _expand(self, run: GraphRun, node: Node, spec: dict[str, Any],
                      values: dict[str, Any], now: float) -> None:
        """A mapped task is ready: one copy per element of the list its ``map`` names."""
        items = substitute(spec["map"], values)
        if not isinstance(items, list):
            kind = JSON_TYPES.get(type(items), type(items).__name__)
            await self._fail_here(run, node, "TypeError", f"map: {spec['map']} is a {kind}, "
                                  "not a list", now)
            return
        if len(items) > self.settings.max_map:
            await self._fail_here(run, node, "MapTooLarge", f"map: {spec['map']} has "
                                  f"{len(items)} elements, over max_map "
                                  f"({self.settings.max_map})", now)
            return
        if not items:
            if await self.db.write(shapes.finish_in_scheduler, run.id, self.id, run.epoch,
                                   node.id, [], now):
                await self.broker.emit(event("task.finished", graph=run.id, task=node.id,
                                             name=node.name, state="finished"))
                await self._settle(run, node, "finished", now)
            return
        rows = await self.db.write(shapes.expand_map, run.id, self.id, run.epoch, node.id,
                                   node.name, node.kind, node.pool, spec, items, now)
        if rows is None:
            await self._reload(run.root, now)
            return
        ready = run.add_copies(node, rows)
        await self.broker.emit(event("task.running", graph=run.id, task=node.id,
                                     name=node.name, state="running",
                                     data={"copies": len(rows)}))
        for copy in ready:
            self._queue(run, copy)
        if node.open_copies == 0:           # every copy ended before (a retried graph)
            await self._close_map(run, node, now)


def _deciding_specs(run: GraphRun, nodes: list[Node]) -> dict[int, dict[str, Any]]:
    """Each task's document entry; a copy is run as its mapped task's says (parsed once per
    mapped task of the batch)."""
    out: dict[int, dict[str, Any]] = {}
    parents: dict[int, dict[str, Any]] = {}
    for node in nodes:
        if node.map_of is None:
            out[node.id] = spec_of(node)
        else:
            if node.map_of not in parents:
                parents[node.map_of] = spec_of(run.nodes[node.map_of])
            out[node.id] = parents[node.map_of]
    return out


def _element(copy: Node) -> dict[str, Any]:
    """What a copy's references ``${item}`` and ``${index}`` stand for."""
    spec = json.loads(copy.spec)
    return {"item": spec.get("item"), "index": spec.get("index", copy.index)}


def arguments(kind: str, spec: dict[str, Any], values: dict[str, Any]) -> tuple[str, dict]:
    """What a task is dispatched with, its references resolved: (target, arguments). A shell
    task's values travel as environment variables (:mod:`wgops.store.shell`), never in its
    command's text."""
    if kind == "shell":
        command = compile_command(spec["shell"])
        return command.template, {"env": command.environment(values)}
    target = spec.get("build" if kind == "build" else "run", "")
    return target, substitute(spec.get("args") or {}, values)
